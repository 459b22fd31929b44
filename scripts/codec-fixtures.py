#!/usr/bin/env python3
"""Write tests/fixtures/codecs/: small files in the layouts real photos and
scans arrive in (every TIFF photometric, bit depth, compression and layout
libvips reads, PNG/GIF/BMP/WebP/JPEG variants), with a MANIFEST.tsv in the
shared corpus's columns. tests/engine/codecs.rs runs every row.

    target/venv-fixtures/bin/python scripts/codec-fixtures.py
    (pip install pillow==12.0.0 tifffile numpy)

The picture is the same everywhere: 64x48, four flat quadrants (red, green,
blue, white) over a horizontal gradient band, so a decoder that gets the
layout wrong shows in the pixels, not just in an error.
"""
import io
import pathlib
import struct
import zlib

import numpy as np
import tifffile
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "codecs"
W, H = 64, 48
rows = []


def picture():
    a = np.zeros((H, W, 3), np.uint8)
    a[: H // 2, : W // 2] = (255, 0, 0)
    a[: H // 2, W // 2:] = (0, 255, 0)
    a[H // 2:, : W // 2] = (0, 0, 255)
    a[H // 2:, W // 2:] = (255, 255, 255)
    a[20:28, :] = np.linspace(0, 255, W, dtype=np.uint8)[None, :, None]
    return a


def grey():
    return np.asarray(Image.fromarray(picture()).convert("L"))


def add(name, data, what, expected="accept", category="generated", size=(W, H)):
    (OUT / name).write_bytes(data)
    facts = f"oriented={size[0]}x{size[1]}; " if expected == "accept" else ""
    rows.append((name, "generated", "scripts/codec-fixtures.py", "generated", category, expected, facts + what))


def pil(img, fmt, **options):
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def tiff(data, **options):
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **options)
    return buf.getvalue()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(picture())
    pal = rgb.quantize(16)

    # TIFF: photometrics, depths, compressions, layouts.
    add("tiff-rgb-lzw-predictor.tif", tiff(picture(), compression="lzw", predictor=True), "TIFF RGB, LZW + horizontal predictor")
    add("tiff-rgb-deflate.tif", tiff(picture(), compression="zlib"), "TIFF RGB, deflate")
    add("tiff-rgb-packbits.tif", pil(rgb, "TIFF", compression="packbits"), "TIFF RGB, PackBits")
    add("tiff-rgb16.tif", tiff(picture().astype(np.uint16) * 257), "TIFF RGB, 16-bit")
    add("tiff-rgba.tif", pil(rgb.convert("RGBA"), "TIFF"), "TIFF RGBA, unassociated alpha")
    add("tiff-float32-grey.tif", tiff(grey().astype(np.float32) / 255), "TIFF grey, 32-bit float")
    add("tiff-palette-8bit.tif", pil(pal, "TIFF"), "TIFF palette, 8-bit indices")
    add("tiff-grey-1bit.tif", pil(rgb.convert("1"), "TIFF"), "TIFF bilevel, uncompressed")
    add("tiff-grey-1bit-g3.tif", pil(rgb.convert("1"), "TIFF", compression="group3"), "TIFF bilevel, CCITT G3")
    add("tiff-grey-1bit-g4.tif", pil(rgb.convert("1"), "TIFF", compression="group4"), "TIFF bilevel, CCITT G4")
    for bits in (2, 4):
        add(f"tiff-grey-{bits}bit.tif", tiff(grey() >> (8 - bits), photometric="minisblack", bitspersample=bits),
            f"TIFF grey, {bits}-bit")
    add("tiff-grey-miniswhite.tif", tiff(255 - grey(), photometric="miniswhite"), "TIFF grey, 0 is white")
    add("tiff-int8-signed.tif", tiff((grey().astype(np.int16) - 128).astype(np.int8)), "TIFF grey, signed 8-bit")
    add("tiff-int16-signed.tif", tiff((grey().astype(np.int32) * 257 - 32768).astype(np.int16)), "TIFF grey, signed 16-bit")
    add("tiff-ycbcr-jpeg.tif", pil(rgb, "TIFF", compression="jpeg"), "TIFF YCbCr, JPEG-compressed (new-style)")
    add("tiff-tiled.tif", tiff(picture(), tile=(16, 16)), "TIFF RGB, 16x16 tiles")
    add("tiff-tiled-planar.tif", tiff(picture().transpose(2, 0, 1), tile=(16, 16), planarconfig="separate", photometric="rgb"), "TIFF RGB, tiles, one plane per channel")
    add("tiff-strips-planar.tif", tiff(picture().transpose(2, 0, 1), planarconfig="separate", photometric="rgb", rowsperstrip=8), "TIFF RGB, strips, one plane per channel")
    add("tiff-cmyk.tif", pil(rgb.convert("CMYK"), "TIFF"), "TIFF CMYK, no profile")
    add("tiff-bigendian.tif", tiff(picture(), byteorder=">"), "TIFF RGB, big-endian (MM)")
    add("tiff-bigtiff.tif", tiff(picture(), bigtiff=True), "BigTIFF RGB")

    # PNG.
    add("png-grey-1bit.png", pil(rgb.convert("1"), "PNG"), "PNG grey, 1-bit")
    add("png-palette-trns.png", pil(pal, "PNG", transparency=0), "PNG palette with tRNS")
    add("png-rgba16.png", png16_rgba(), "PNG RGBA, 16-bit")
    add("png-interlaced.png", png_interlaced(rgb), "PNG RGB, Adam7 interlaced")
    add("png-grey-alpha.png", pil(rgb.convert("LA"), "PNG"), "PNG grey + alpha")

    # GIF, BMP, WebP.
    add("gif-transparent.gif", pil(pal, "GIF", transparency=0), "GIF with a transparent index")
    add("gif-interlaced.gif", pil(pal, "GIF", interlace=True), "GIF interlaced")
    add("bmp-1bit.bmp", pil(rgb.convert("1"), "BMP"), "BMP 1-bit palette")
    add("bmp-8bit-palette.bmp", pil(rgb.convert("P"), "BMP"), "BMP 8-bit palette")
    add("bmp-32bit.bmp", pil(rgb.convert("RGBA"), "BMP"), "BMP 32-bit")
    add("bmp-top-down.bmp", bmp_top_down(picture()), "BMP 24-bit, top-down rows (negative height)")
    add("webp-lossless-alpha.webp", pil(rgb.convert("RGBA"), "WEBP", lossless=True), "WebP lossless with alpha")
    add("webp-lossy-alpha.webp", pil(rgb.convert("RGBA"), "WEBP", quality=80), "WebP lossy with alpha")

    # JPEG as cameras, scanners and editors write it.
    base = pil(rgb, "JPEG", quality=90)
    add("jpeg-420.jpg", pil(rgb, "JPEG", quality=90, subsampling="4:2:0"), "JPEG 4:2:0")
    add("jpeg-422.jpg", pil(rgb, "JPEG", quality=90, subsampling="4:2:2"), "JPEG 4:2:2")
    add("jpeg-444.jpg", pil(rgb, "JPEG", quality=90, subsampling="4:4:4"), "JPEG 4:4:4")
    add("jpeg-progressive.jpg", pil(rgb, "JPEG", quality=90, progressive=True), "JPEG progressive")
    add("jpeg-restart.jpg", pil(rgb, "JPEG", quality=90, restart_marker_blocks=1), "JPEG with restart markers")
    add("jpeg-grey.jpg", pil(rgb.convert("L"), "JPEG"), "JPEG greyscale")
    add("jpeg-cmyk.jpg", pil(rgb.convert("CMYK"), "JPEG"), "JPEG CMYK (Adobe)")
    add("jpeg-junk-before-marker.jpg", insert_after_first_segment(base, b"\x00\x00junk"),
        "JPEG with stray bytes between two segments (libjpeg warns and goes on)")
    add("jpeg-bad-exif.jpg", insert_after_first_segment(base, app1(b"Exif\x00\x00MM\x00\x2a\x00\x00\xff\xff\xff\xf0junk")),
        "JPEG whose EXIF block points outside itself")
    add("jpeg-exif-orientation-6.jpg", with_orientation(rgb, 6), "JPEG, EXIF orientation 6", size=(H, W))
    add("jpeg-arithmetic.jpg", with_frame_marker(base, 0xC9), "JPEG whose frame says arithmetic coding (SOF9)",
        expected="reject", category="unsupported")
    add("jpeg-lossless.jpg", with_frame_marker(base, 0xC3), "JPEG whose frame says lossless coding (SOF3)",
        expected="reject", category="unsupported")
    add("jpeg-truncated.jpg", base[: len(base) * 2 // 3], "JPEG cut off in the scan", expected="reject", category="truncated")

    # AVIF as some encoders write it: the rotation listed before the size
    # (mp4parse refuses it unless permissive; libavif reads it).
    exif = Image.Exif()
    exif[0x0112] = 6
    avif = pil(rgb, "AVIF", quality=95, subsampling="4:4:4", exif=exif)
    add("avif-irot-before-ispe.avif", move_property_first(avif, b"irot"),
        "AVIF whose item lists irot before ispe", size=(H, W))

    with open(OUT / "MANIFEST.tsv", "w") as f:
        f.write("file\tsource_repo\tsource_path\tlicense\tcategory\texpected\twhat_it_exercises\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    total = sum((OUT / r[0]).stat().st_size for r in rows)
    print(f"{len(rows)} files, {total:,} bytes, in {OUT}")


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png16_rgba():
    """Pillow writes no 16-bit RGBA PNG: the chunks by hand."""
    a = np.dstack([picture(), np.full((H, W), 200, np.uint8)]).astype(np.uint16) * 257
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(H))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_interlaced(img):
    """Pillow writes no Adam7 PNG: the seven passes by hand."""
    a = np.asarray(img)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp_top_down(a):
    row = ((W * 3 + 3) // 4) * 4
    pixels = b"".join(a[y, :, ::-1].tobytes().ljust(row, b"\x00") for y in range(H))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, W, -H, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def boxes(data, start, end):
    """(type, offset, header length, size) of each box in data[start:end]."""
    out, off = [], start
    while off < end:
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        out.append((kind, off, 8, size))
        off += size
    return out


def move_property_first(avif, kind):
    """The AVIF with property `kind` moved to the front of the primary
    item's association list in ipma (same bytes otherwise)."""
    data = bytearray(avif)
    meta = next(b for b in boxes(data, 0, len(data)) if b[0] == b"meta")
    inner = boxes(data, meta[1] + 12, meta[1] + meta[3])
    iprp = next(b for b in inner if b[0] == b"iprp")
    ipco, ipma = (next(b for b in boxes(data, iprp[1] + 8, iprp[1] + iprp[3]) if b[0] == k) for k in (b"ipco", b"ipma"))
    kinds = [b[0] for b in boxes(data, ipco[1] + 8, ipco[1] + ipco[3])]
    version, flags = data[ipma[1] + 8], int.from_bytes(data[ipma[1] + 9:ipma[1] + 12], "big")
    assert version == 0 and flags & 1 == 0, "only the small ipma layout is handled"
    at = ipma[1] + 16 + 2  # after entry_count and the first item_ID
    count = data[at]
    assoc = list(data[at + 1:at + 1 + count])
    moved = next(a for a in assoc if kinds[(a & 0x7F) - 1] == kind)
    assoc.remove(moved)
    data[at + 1:at + 1 + count] = bytes([moved] + assoc)
    return bytes(data)


def app1(body):
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def insert_after_first_segment(jpeg, extra):
    # SOI, then the first segment (APP0 from Pillow): insert after it.
    assert jpeg[:2] == b"\xff\xd8" and jpeg[2] == 0xFF
    length = struct.unpack(">H", jpeg[4:6])[0]
    at = 4 + length
    return jpeg[:at] + extra + jpeg[at:]


def with_frame_marker(jpeg, marker):
    """The JPEG with its SOF0 marker replaced: the header of another coding
    (no encoder at hand writes arithmetic or lossless JPEG)."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[:at + 1] + bytes([marker]) + jpeg[at + 2:]


def with_orientation(img, n):
    exif = Image.Exif()
    exif[0x0112] = n
    return pil(img, "JPEG", quality=90, exif=exif.tobytes())


if __name__ == "__main__":
    main()
