#!/usr/bin/env python3
"""SSIM of each lossy output against the pixels that were encoded.

    ssim.py DUMP_DIR          (a --dump folder of imgpipe bench or a peer)

For each image folder: jpeg85, jpeg60 and webp85 against ref.png, thumb300
against thumbref.png; png must equal ref.png exactly (max abs diff). Gaussian
SSIM as in Wang et al.: skimage structural_similarity on RGB, sigma 1.5,
data_range 255, population covariance. One JSON line per image.
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

Image.MAX_IMAGE_PIXELS = None


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def ssim(a, b):
    if a.shape != b.shape:
        return None
    return round(float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                                             sigma=1.5, use_sample_covariance=False)), 5)


def main():
    root = sys.argv[1]
    for image in sorted(os.listdir(root)):
        d = os.path.join(root, image)
        ref = pixels(os.path.join(d, "ref.png"))
        row = {"image": image, "ssim": {}}
        for name, ext in (("jpeg85", "jpg"), ("jpeg60", "jpg"), ("webp85", "webp")):
            row["ssim"][name] = ssim(pixels(os.path.join(d, f"{name}.{ext}")), ref)
        row["ssim"]["thumb300"] = ssim(pixels(os.path.join(d, "thumb300.jpg")), pixels(os.path.join(d, "thumbref.png")))
        png = pixels(os.path.join(d, "png.png"))
        row["png_max_abs_diff"] = int(np.abs(png.astype(int) - ref.astype(int)).max()) if png.shape == ref.shape else None
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
