"""Signs test URLs with the `imgproxy` PyPI client (klen/imgproxy), which
signs the path with its leading slash, as imgproxy does. One per line.

    python3 tests/clients/sign_python.py <endpoint> <key hex> <salt hex> <source url>

The cases match `PYTHON_CASES` in tests/support/clients.rs, in order.
"""
import sys

from imgproxy import ImgProxy

endpoint, key, salt, source = sys.argv[1:5]
signer = ImgProxy.factory(proxy_host=endpoint, key=key, salt=salt)
print(signer(source, resizing_type="fit", width=200))
print(signer(source, "q:80", resizing_type="fill", width=120, height=80, extension="webp"))
print(signer(source, resizing_type="fit", width=90, extension="png"))
print(signer(source, resizing_type="fill", width=100, height=100, gravity="sm"))
