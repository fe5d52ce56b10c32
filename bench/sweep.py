#!/usr/bin/env python3
"""The quality sweep: for each photo and every target width from 64 up to the photo's own width in steps
of about 7%, the SSIM of sizer's JPEG and of sharp's JPEG against one full-precision reference (the same
as bench/ssim.py: float luma, Lanczos straight from full resolution), and the gap sizer - sharp.

usage: sweep.py IMAGES_DIR SIZER_BIN [--sharp-dir DIR] [--images a.jpg,b.jpg] [--step 1.07] [--min 64]
        [--max WIDTH] [--tsv FILE]

Prints a markdown table per photo (worst gap, where, how many widths fall more than 0.005 below sharp)
and the overall worst. Issue 8's floor: sizer never more than 0.005 below sharp at any width.
Dependencies as bench/ssim.py (its venv); sharp from SHARP_DIR (default /tmp/peers/sharp): "n/a" without.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssim import References, luma_float, open_oriented  # noqa: E402  (bootstraps the venv)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

DEFAULT_IMAGES = "kleiber-6028x3391.jpg,picos-3264x2448.jpg,dragonfly-4224x3168.jpg,path-2560x1600.jpg"
SHARP_SCRIPT = r"""
const fs = require('fs'), path = require('path');
const sharp = require(path.join(process.env.SHARP_DIR, 'node_modules/sharp'));
sharp.cache(false);
const [input, outDir, ...widths] = process.argv.slice(1);
(async () => {
  const src = fs.readFileSync(input);
  for (const w of widths) {
    await sharp(src).resize({ width: +w }).jpeg({ quality: 80 }).toFile(path.join(outDir, `sharp-${w}.jpg`));
  }
})();
"""


def option(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def widths_for(full, start, step, limit):
    out, w = [], float(start)
    while round(w) < min(full, limit):
        if not out or round(w) != out[-1]:
            out.append(round(w))
        w *= step
    return out


def score(path, refs, name):
    img = open_oriented(path)
    got = np.clip(luma_float(img), 0.0, 255.0)
    ref = refs.get(name, img.size)
    return structural_similarity(ref, got, data_range=255)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    images_dir, sizer = argv[0], argv[1]
    rest = argv[2:]
    sharp_dir = option(rest, "--sharp-dir", os.environ.get("SHARP_DIR", "/tmp/peers/sharp"))
    names = option(rest, "--images", DEFAULT_IMAGES).split(",")
    step, start = float(option(rest, "--step", "1.07")), int(option(rest, "--min", "64"))
    limit = int(option(rest, "--max", "100000"))
    tsv = option(rest, "--tsv", None)
    have_sharp = os.path.isdir(os.path.join(sharp_dir, "node_modules", "sharp"))
    rows, worst = [], None
    print("| photo | widths | worst SSIM sizer − sharp | at width | widths below −0.005 | mean gap |")
    print("|---|---|---|---|---|---|")
    for name in names:
        src = os.path.join(images_dir, name)
        if not os.path.exists(src):
            print(f"| {name} | missing | n/a | n/a | n/a | n/a |")
            continue
        full_w = Image.open(src).size[0]
        widths = widths_for(full_w, start, step, limit)
        refs = References(images_dir)
        with tempfile.TemporaryDirectory() as out:
            for w in widths:
                subprocess.run([sizer, "resize", src, os.path.join(out, f"sizer-{w}.jpg"), "--width", str(w),
                                "--quality", "80"], check=True)
            if have_sharp:
                subprocess.run(["node", "-e", SHARP_SCRIPT, src, out, *map(str, widths)], check=True,
                               env=dict(os.environ, SHARP_DIR=sharp_dir))
            gaps = []
            for w in widths:
                a = score(os.path.join(out, f"sizer-{w}.jpg"), refs, name)
                b = score(os.path.join(out, f"sharp-{w}.jpg"), refs, name) if have_sharp else None
                gap = None if b is None else a - b
                rows.append((name, w, a, b, gap))
                if gap is not None:
                    gaps.append((gap, w))
        if not gaps:
            print(f"| {name} | {len(widths)} | n/a | n/a | n/a | n/a |")
            continue
        low = min(gaps)
        below = sum(1 for g, _ in gaps if g < -0.005)
        mean = sum(g for g, _ in gaps) / len(gaps)
        print(f"| {name} | {len(widths)} ({widths[0]}–{widths[-1]}) | {low[0]:+.4f} | {low[1]} | {below} | {mean:+.4f} |")
        if worst is None or low[0] < worst[0]:
            worst = (low[0], name, low[1])
    print()
    if worst:
        print(f"**Worst SSIM gap to sharp: {worst[0]:+.4f} ({worst[1]} at {worst[2]} px wide)**; "
              f"the floor is −0.005.")
    if tsv:
        with open(tsv, "w") as f:
            f.write("photo\twidth\tsizer\tsharp\tgap\n")
            for r in rows:
                f.write("\t".join("n/a" if v is None else (f"{v:.5f}" if isinstance(v, float) else str(v)) for v in r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
