"""Upload one image to a running imgpipe and wait until it is processed.

Usage: seed_image.py BASE_URL [IMAGE_FILE CONTENT_TYPE]   (prints the id)
Without a file it uploads a generated 640x480 RGBA PNG. Standard library
only, so it runs before any package is installed.
"""
import json
import struct
import sys
import time
import urllib.request
import zlib


def generated_png(width=640, height=480):
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            row += bytes((x * 255 // width, y * 255 // height, (x ^ y) & 255, 255 if x > 40 else 0))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))


def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status, res.read()


def main():
    base = sys.argv[1]
    if len(sys.argv) > 3:
        data, content_type = open(sys.argv[2], "rb").read(), sys.argv[3]
    else:
        data, content_type = generated_png(), "image/png"
    _, body = call("POST", f"{base}/uploads",
                   json.dumps({"content_type": content_type, "content_length": len(data)}).encode(),
                   {"content-type": "application/json"})
    created = json.loads(body)
    call("PUT", created["upload"]["url"], data, created["upload"]["headers"])
    for _ in range(600):
        _, body = call("GET", created["meta_url"])
        status = json.loads(body)["status"]
        if status != "pending":
            if status != "ready":
                sys.exit(f"seed image ended {status}")
            print(created["id"])
            return
        time.sleep(0.1)
    sys.exit("seed image still pending after 60 s")


if __name__ == "__main__":
    main()
