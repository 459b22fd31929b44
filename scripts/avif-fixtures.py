#!/usr/bin/env python3
"""Write the small AVIF files under tests/fixtures/avif/ that the engine's
tests decode (the crate has no AVIF encoder of its own). Needs Pillow >= 11.3
built with libavif (the PyPI wheels are).

    python3 scripts/avif-fixtures.py      # from the repository root

The pictures are simple on purpose, so the tests can state what every pixel
should be: four flat quadrants, red | green over blue | white.
"""
import io
import pathlib

from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "avif"
W, H = 64, 48
QUADRANTS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]


def quadrants(mode="RGB"):
    img = Image.new(mode, (W, H))
    for i, colour in enumerate(QUADRANTS):
        x, y = (i % 2) * W // 2, (i // 2) * H // 2
        fill = colour if mode == "RGB" else colour + (255,)
        img.paste(fill, (x, y, x + W // 2, y + H // 2))
    return img


def save(img, name, **options):
    buf = io.BytesIO()
    img.save(buf, "AVIF", quality=95, speed=6, **options)
    (OUT / name).write_bytes(buf.getvalue())
    print(f"{name}: {len(buf.getvalue())} bytes")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    save(quadrants(), "quadrants-444.avif", subsampling="4:4:4")
    save(quadrants(), "quadrants-420.avif", subsampling="4:2:0")
    # Alpha: left half opaque, right half fully transparent.
    rgba = quadrants("RGBA")
    alpha = Image.new("L", (W, H), 255)
    alpha.paste(0, (W // 2, 0, W, H))
    rgba.putalpha(alpha)
    save(rgba, "alpha.avif", subsampling="4:4:4")
    # Animated, with alpha: three frames, the first one the still image
    # (and its alpha item) that the engine reads.
    later = [rgba.transpose(Image.Transpose.FLIP_LEFT_RIGHT), quadrants("RGBA")]
    save(rgba, "animated-alpha.avif", subsampling="4:4:4", save_all=True, append_images=later, duration=100)
    # EXIF orientation 6 becomes irot (and, for other values, imir) in AVIF.
    exif = Image.Exif()
    exif[0x0112] = 6
    save(quadrants(), "orientation-6.avif", subsampling="4:4:4", exif=exif)


if __name__ == "__main__":
    main()
