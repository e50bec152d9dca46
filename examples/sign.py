"""Sign an edgethumb (imgproxy-format) URL with only the standard library.

    python3 examples/sign.py
"""
import base64
import hashlib
import hmac

# The published imgproxy documentation test key/salt. TEST ONLY: never deploy these.
KEY = bytes.fromhex("736563726574")
SALT = bytes.fromhex("68656C6C6F")


def signed_path(options: str, source_url: str, ext: str = "") -> str:
    encoded = base64.urlsafe_b64encode(source_url.encode()).rstrip(b"=").decode()
    path = f"/{options}/{encoded}" + (f".{ext}" if ext else "")
    digest = hmac.new(KEY, SALT + path.encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"/{signature}{path}"


if __name__ == "__main__":
    print(signed_path("rs:fill:300:400:0/g:sm", "http://example.com/images/curiosity.jpg", "png"))
