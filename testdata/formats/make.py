#!/usr/bin/env python3
"""Makes the input-format fixtures of testdata/formats from the repository's own photographs (see
SOURCES.md here). Needs Pillow, numpy and tifffile (bench/sweep.py's venv has them):

    ~/.cache/sizer-test-tools/ssim-venv/bin/python testdata/formats/make.py

The outputs are committed; the tests never run this."""
import io
import os

import numpy as np
import tifffile
from PIL import Image, TiffImagePlugin

here = os.path.dirname(os.path.abspath(__file__))
images = os.path.join(here, "..", "images")


def write_bmp32(image, name):
    """A 32-bit BGRA BMP with a BITMAPV4HEADER and its alpha mask (Pillow writes RGBA as 24-bit)."""
    import struct
    w, h = image.size
    rows = np.asarray(image.convert("RGBA"))[::-1, :, [2, 1, 0, 3]].tobytes()  # bottom-up BGRA
    v4 = struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(rows), 2835, 2835, 0, 0)
    v4 += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    v4 += b"sRGB"[::-1] + bytes(36) + bytes(12)
    header = b"BM" + struct.pack("<IHHI", 14 + len(v4) + len(rows), 0, 0, 14 + len(v4))
    with open(name, "wb") as f:
        f.write(header + v4 + rows)


def out(name):
    return os.path.join(here, name)


path = Image.open(os.path.join(images, "path-2560x1600.jpg")).convert("RGB").resize((320, 200), Image.LANCZOS)
path.info.pop("icc_profile", None)
p3_src = Image.open(os.path.join(images, "path-p3-2560x1600.jpg"))
p3_profile = p3_src.info["icc_profile"]
p3 = p3_src.convert("RGB").resize((320, 200), Image.LANCZOS)

# Plain RGB, LZW strips; the same JPEG-compressed; and with a Display P3 profile (P3 pixel values).
path.save(out("path-lzw.tif"), compression="tiff_lzw")
path.save(out("path-jpeg.tif"), compression="jpeg", quality=90)
p3.save(out("path-p3.tif"), compression="tiff_deflate", icc_profile=p3_profile)

# Orientation 6 ("rotate 90 CW to display"): stored 320x200 with a pure red 16x16 block in the stored
# top-left corner, which the display puts at the top right.
marked = path.copy()
marked.paste((255, 0, 0), (0, 0, 16, 16))
info = TiffImagePlugin.ImageFileDirectory_v2()
info[274] = 6
marked.save(out("path-orient6.tif"), compression="tiff_lzw", tiffinfo=info)

# 16-bit RGBA: a horizontal ramp, its left half fully transparent.
h, w = 48, 64
ramp = np.zeros((h, w, 4), dtype=np.uint16)
ramp[..., 0] = np.linspace(0, 65535, w, dtype=np.uint16)[None, :]
ramp[..., 1] = 30000
ramp[..., 2] = np.linspace(65535, 0, h, dtype=np.uint16)[:, None]
ramp[..., 3] = 65535
ramp[:, : w // 2, 3] = 0
tifffile.imwrite(out("ramp-rgba16.tif"), ramp, photometric="rgb", extrasamples=["unassalpha"])

# Two pages: the first 100x60, the second 300x300 (only the first is read).
with tifffile.TiffWriter(out("two-pages.tif")) as tif:
    tif.write(np.asarray(path.resize((100, 60), Image.LANCZOS)), photometric="rgb")
    tif.write(np.full((300, 300, 3), 200, dtype=np.uint8), photometric="rgb")

# BMP: 24-bit, and 32-bit with alpha (the camera icon).
path.save(out("path-24.bmp"))
camera = Image.open(os.path.join(images, "camera-alpha-512.png")).convert("RGBA")
write_bmp32(camera.resize((96, 96), Image.LANCZOS), out("camera-32.bmp"))

# ICO: 16, 32 and 48 px images of the camera icon (PNG inside); the largest is read.
camera.save(out("camera.ico"), sizes=[(16, 16), (32, 32), (48, 48)])

for name in sorted(os.listdir(here)):
    if not name.endswith(".py") and not name.endswith(".md"):
        print(name, os.path.getsize(out(name)))

# JPEG XL (pillow-jxl-plugin, libjxl): lossy RGB, lossless RGBA, grey, and Display P3 with its profile.
try:
    import pillow_jxl  # noqa: F401  (registers the JXL plugin)
except ImportError:
    print("pillow-jxl-plugin missing: the .jxl fixtures are left as they are")
else:
    path.save(out("path.jxl"), quality=90)
    camera.resize((96, 96), Image.LANCZOS).save(out("camera-alpha.jxl"), lossless=True)
    path.convert("L").save(out("path-grey.jxl"), quality=90)
    p3.save(out("path-p3.jxl"), quality=90, icc_profile=p3_profile)
    for name in ["path.jxl", "camera-alpha.jxl", "path-grey.jxl", "path-p3.jxl"]:
        back = Image.open(out(name))
        print(name, os.path.getsize(out(name)), back.mode, back.size, "icc" if back.info.get("icc_profile") else "")
