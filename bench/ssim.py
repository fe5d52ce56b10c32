#!/usr/bin/env python3
"""SSIM of each engine's output against a full-precision reference, per workload.

usage:
    ssim.py WORKLOADS_JSON IMAGES_DIR ENGINE=TEMPLATE [ENGINE=TEMPLATE ...] [--tsv]

    TEMPLATE is an output path in which {id} (W1..) and {ext} (jpg, webp, png, avif) are replaced, e.g.
        ssim.py bench/workloads.json testdata/images \\
            sizer=/tmp/out/out-sizer-{id}.{ext} sharp=/tmp/peers/out-sharp-{id}.{ext}
    A missing output file is reported as "n/a" rather than an error.

    Prints a markdown table (or TSV with --tsv) of: id, engine, ssim, bytes, size (WxH).

    Dependencies: pillow (11.3 or later, whose wheels read AVIF through libavif), numpy, scikit-image and
    pillow-jxl-plugin (JPEG XL originals). If they are not importable, or Pillow cannot read AVIF, the
    script re-executes itself inside the venv $SSIM_VENV (default /tmp/peers/ssim-venv), creating it and
    pip-installing the four packages only if they are missing or too old.

What it measures, and why:
    Byte sizes and CPU times of different engines only compare fairly at equal visual quality, so each
    output is scored against one engine-independent reference:
      1. decode the original at full resolution with Pillow and apply its EXIF orientation;
      2. convert to float (no rounding from here on); an image with alpha is composited over mid-grey
         (128) in float, which equals resizing with premultiplied alpha and compositing afterwards;
      3. take luma, Y = 0.299 R + 0.587 G + 0.114 B (BT.601, the Y of Pillow's YCbCr);
      4. resize that float luma plane straight from full resolution to the output's exact dimensions
         with Lanczos (Image.resize(..., LANCZOS, reducing_gap=None): no shrink-on-load shortcuts).
    The engine output is decoded with Pillow (EXIF orientation applied, as a viewer would), composited
    over the same grey if it has alpha (so a lost or wrong alpha channel lowers the score), reduced to
    luma the same way, and compared with skimage.metrics.structural_similarity(data_range=255) using its
    defaults (7x7 uniform window). 1.0 means identical to the reference; the resize filters, the
    shrink-on-load decode and the encoder's quantisation all lower it.
"""
import json
import os
import subprocess
import sys

VENV = os.environ.get("SSIM_VENV", "/tmp/peers/ssim-venv")
PACKAGES = ["pillow>=11.3", "numpy", "scikit-image", "pillow-jxl-plugin"]
# What "importable" means: all four, and a Pillow that reads AVIF (W7, W8); pillow_jxl reads JPEG XL (W16).
PROBE = "import numpy, skimage, pillow_jxl; from PIL import features; assert features.check('avif')"
GREY = 128.0


def ensure_deps():
    """Import the dependencies, or re-run this script inside a venv that has them."""
    try:
        exec(PROBE, {})
        return
    except (ImportError, AssertionError):
        pass
    if os.environ.get("SSIM_VENV_READY"):
        return  # installed and re-run once already: go on, and let what is still missing fail loudly
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        print(f"ssim.py: creating venv {VENV}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV], stdout=sys.stderr)
    probe = subprocess.run([py, "-c", PROBE], capture_output=True)
    if probe.returncode != 0:
        print(f"ssim.py: pip install {' '.join(PACKAGES)} into {VENV}", file=sys.stderr)
        subprocess.check_call([py, "-m", "pip", "install", "-q", "-U", *PACKAGES], stdout=sys.stderr)
    # A fresh process: modules this one imported in the probe may be the old versions.
    os.environ["SSIM_VENV_READY"] = "1"
    # The script that was run (this one, or one importing it, such as sweep.py), again in the venv.
    os.execv(py, [py, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


ensure_deps()
if sys.argv[1:] == ["--setup"]:
    sys.exit(0)  # `ssim.py --setup`: make the venv (scripts/test does, before the suite) and stop

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
import pillow_jxl  # noqa: E402, F401  (registers JPEG XL with Pillow: W16's original)
from skimage.metrics import structural_similarity  # noqa: E402

Image.MAX_IMAGE_PIXELS = None  # the test images are trusted and large


def luma_float(img):
    """Float32 luma plane of a Pillow image; alpha (if any) composited over mid-grey first."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        y = np.zeros(alpha.shape, np.float32)
        for c, k in enumerate((0.299, 0.587, 0.114)):
            y += k * rgba[..., c].astype(np.float32)
        return y * alpha + GREY * (1.0 - alpha)
    if img.mode in ("L", "I", "I;16", "F"):
        return np.asarray(img.convert("F"), dtype=np.float32)
    rgb = np.asarray(img.convert("RGB"))
    y = np.zeros(rgb.shape[:2], np.float32)
    for c, k in enumerate((0.299, 0.587, 0.114)):
        y += k * rgb[..., c].astype(np.float32)
    return y


def open_oriented(path):
    img = Image.open(path)
    img.load()
    return ImageOps.exif_transpose(img)


class References:
    """Full-resolution float luma per input, and resized references per (input, size), both cached."""

    def __init__(self, images_dir):
        self.images_dir = images_dir
        self.full = {}
        self.sized = {}

    def get(self, name, size, fit=None):
        """The reference at `size`; with fit "cover", of the centred region of the output's shape (the
        crop every engine makes for a centre-gravity cover)."""
        if (name, size, fit) not in self.sized:
            if name not in self.full:
                self.full[name] = Image.fromarray(luma_float(open_oriented(os.path.join(self.images_dir, name))), "F")
            full = self.full[name]
            box = None
            if fit == "cover":
                scale = max(size[0] / full.width, size[1] / full.height)
                cw, ch = size[0] / scale, size[1] / scale
                x0, y0 = (full.width - cw) / 2, (full.height - ch) / 2
                box = (x0, y0, x0 + cw, y0 + ch)
            ref = full.resize(size, Image.LANCZOS, box=box, reducing_gap=None)
            self.sized[(name, size, fit)] = np.clip(np.asarray(ref, dtype=np.float32), 0.0, 255.0)
        return self.sized[(name, size, fit)]


def main(argv):
    tsv = "--tsv" in argv
    args = [a for a in argv if a != "--tsv"]
    if len(args) < 3 or any("=" not in a for a in args[2:]):
        print(__doc__, file=sys.stderr)
        return 2
    workloads = json.load(open(args[0]))
    refs = References(args[1])
    engines = [a.split("=", 1) for a in args[2:]]

    rows = []
    for w in workloads:
        ext = {"jpeg": "jpg"}.get(w["format"], w["format"])
        for engine, template in engines:
            path = template.replace("{id}", w["id"]).replace("{ext}", ext)
            if not os.path.isfile(path):
                rows.append((w["id"], engine, "n/a", "n/a", "n/a"))
                continue
            if w.get("position", "centre") not in ("centre", "center"):
                # Engines pick different windows by design: there is no one reference to score against.
                rows.append((w["id"], engine, "n/a", str(os.path.getsize(path)), "n/a"))
                continue
            try:
                out = open_oriented(path)
                y_out = luma_float(out)
                y_ref = refs.get(w["in"], out.size, w.get("fit"))
                score = structural_similarity(y_ref, y_out, data_range=255)
                rows.append((w["id"], engine, f"{score:.4f}", str(os.path.getsize(path)), f"{out.size[0]}x{out.size[1]}"))
            except Exception as e:  # a broken output is a result, not a crash
                print(f"ssim.py: {path}: {e}", file=sys.stderr)
                rows.append((w["id"], engine, "error", str(os.path.getsize(path)), "n/a"))

    head = ("id", "engine", "ssim", "bytes", "size")
    if tsv:
        print("\t".join(head))
        for r in rows:
            print("\t".join(r))
    else:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
