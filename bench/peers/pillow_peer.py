#!/usr/bin/env python3
"""The original Lambda pipeline's recipe in Pillow, timed step by step.

Recipe: decode from memory; EXIF orientation applied; RGBA/LA/P composited on
white, other modes converted to RGB; resized with LANCZOS only when a side
exceeds --max-dim; JPEG q85 and q60 (optimize), WebP q85 (method 4), PNG
(optimize, zlib level 9); a copy thumbnailed into 300x300 with LANCZOS and
saved as JPEG q80 (optimize).

Output: one JSON line per image (median and minimum ms per step, bytes per
variant), the same shape as `imgpipe bench`. --dump DIR keeps the last
repetition's outputs plus ref.png / thumbref.png (the pixels that were encoded).
"""
import argparse
import io
import json
import os
import statistics
import time

import PIL
from PIL import Image, ImageOps

Image.MAX_IMAGE_PIXELS = None
STEPS = ("decode", "resize", "jpeg85", "jpeg60", "webp85", "png", "thumb300", "total")
ENCODES = (
    ("jpeg85", "JPEG", {"quality": 85, "optimize": True}),
    ("jpeg60", "JPEG", {"quality": 60, "optimize": True}),
    ("webp85", "WEBP", {"quality": 85, "method": 4}),
    ("png", "PNG", {"optimize": True}),
)
EXT = {"jpeg85": "jpg", "jpeg60": "jpg", "webp85": "webp", "png": "png", "thumb300": "jpg"}


def to_rgb(img):
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img, mask=img.getchannel("A"))
        return flat
    return img if img.mode == "RGB" else img.convert("RGB")


def once(data, max_dim):
    ms, out = {}, {}
    start = time.perf_counter()
    img = Image.open(io.BytesIO(data))
    img.load()
    img = to_rgb(ImageOps.exif_transpose(img))
    mark = time.perf_counter()
    ms["decode"] = (mark - start) * 1e3
    if max(img.size) > max_dim:
        scale = min(max_dim / img.width, max_dim / img.height)
        img = img.resize((int(img.width * scale), int(img.height * scale)), Image.Resampling.LANCZOS)
    ms["resize"] = (time.perf_counter() - mark) * 1e3
    for name, fmt, opts in ENCODES:
        mark = time.perf_counter()
        buf = io.BytesIO()
        img.save(buf, format=fmt, **opts)
        out[name] = buf.getvalue()
        ms[name] = (time.perf_counter() - mark) * 1e3
    mark = time.perf_counter()
    thumb = img.copy()
    thumb.thumbnail((300, 300), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=80, optimize=True)
    out["thumb300"] = buf.getvalue()
    ms["thumb300"] = (time.perf_counter() - mark) * 1e3
    ms["total"] = (time.perf_counter() - start) * 1e3
    return ms, out, img, thumb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--max-dim", type=int, default=4096)
    ap.add_argument("--dump")
    args = ap.parse_args()
    for path in args.images:
        data = open(path, "rb").read()
        for _ in range(args.warmup):
            once(data, args.max_dim)
        samples = {k: [] for k in STEPS}
        for _ in range(args.reps):
            ms, out, img, thumb = once(data, args.max_dim)
            for k in STEPS:
                samples[k].append(ms[k])
        if args.dump:
            d = os.path.join(args.dump, os.path.splitext(os.path.basename(path))[0])
            os.makedirs(d, exist_ok=True)
            for k, v in out.items():
                open(os.path.join(d, f"{k}.{EXT[k]}"), "wb").write(v)
            img.save(os.path.join(d, "ref.png"), compress_level=1)
            thumb.save(os.path.join(d, "thumbref.png"), compress_level=1)
        print(json.dumps({
            "peer": f"pillow-{PIL.__version__}",
            "image": os.path.basename(path),
            "out_size": list(img.size),
            "thumb_size": list(thumb.size),
            "reps": args.reps,
            "median_ms": {k: round(statistics.median(v), 1) for k, v in samples.items()},
            "min_ms": {k: round(min(v), 1) for k, v in samples.items()},
            "bytes": {k: len(v) for k, v in out.items()},
        }), flush=True)


if __name__ == "__main__":
    main()
