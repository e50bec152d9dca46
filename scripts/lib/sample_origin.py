"""A local sample origin for `scripts/dev`: writes a generated picture
(standard library only) and serves it on 127.0.0.1, printing its base URL.

    python3 scripts/lib/sample_origin.py DIR [PORT]

PORT defaults to a free one.
"""
import http.server
import math
import os
import struct
import sys
import zlib


def sample_png(w: int = 1600, h: int = 1000) -> bytes:
    """A sky-to-ground gradient with a sun and hills: enough structure to
    see crops and gravity."""
    rows = []
    for y in range(h):
        row = bytearray(b"\x00")
        for x in range(w):
            t = y / h
            r, g, b = int(90 + 120 * t), int(150 + 60 * t), int(230 - 120 * t)
            if (x - 0.72 * w) ** 2 + (y - 0.3 * h) ** 2 < (0.09 * h) ** 2:
                r, g, b = 250, 210, 80
            if y > h * (0.65 + 0.08 * math.sin(x / w * 7)):
                r, g, b = 40, int(110 + 40 * t), 50
            row += bytes((r, g, b))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))


def main() -> None:
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "photo.png")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(sample_png())
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=folder, **k)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
