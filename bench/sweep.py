#!/usr/bin/env python3
"""The quality sweep: for each photo, output format and target width (from 64 px up to the photo's own width
in steps of about 7 %), the SSIM of sizer's output and of sharp's against one full-precision reference (the
same as bench/ssim.py: float luma, Lanczos straight from full resolution), the gap sizer - sharp, and the
byte ratio sizer / sharp.

usage: sweep.py IMAGES_DIR SIZER_BIN [--images a.jpg,b.jpg | --corpus bench/corpus.tsv [--half tune|check]]
        [--formats jpeg,webp,avif] [--quality 80] [--step 1.07] [--min 64] [--max WIDTH]
        [--avif-step 1.15] [--avif-max-pixels 4194304] [--jobs 2] [--tsv FILE] [--fail-below -0.005]

- JPEG and WebP are compared at the same quality (`--quality`, sharp's `quality`); AVIF at each engine's
  default (sizer's q80 is mapped onto sharp's default AVIF quality, see src/pipeline/avif.rs), on coarser
  steps and only up to the output size sizer serves as AVIF (`limits.max_avif_pixels`).
- Widths at which the two engines' outputs differ in size (a height rounded the other way) are not scored:
  the floor is defined at equal output dimensions. Their count is reported.
- Prints a markdown table per photo and format (worst gap, where, widths below the floor, mean gap, bytes
  geomean), a summary per format, and one machine-readable line for bench/compare.sh:
      SWEEP worst=<gap> photo=<name> format=<fmt> width=<w> below=<n> scored=<n> bytes_jpeg=<geomean> ...
- `--fail-below G`: exit 1 when any scored width is more than G below sharp (the test suite's short run).

The floor (issues 8 and 22): at every width, sizer's SSIM is never more than 0.005 below sharp's, and the
bytes are at most 1.0x sharp's on the geometric mean at the same quality. The corpus is bench/corpus.tsv
(bench/corpus.sh fetches it); its `half` column splits it into the photos any rule was tuned on and the
photos that only check it.
Dependencies as bench/ssim.py (its venv); sharp from SHARP_DIR (default /tmp/peers/sharp): required.
"""
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssim import References, luma_float, open_oriented  # noqa: E402  (bootstraps the venv)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

Image.MAX_IMAGE_PIXELS = None

DEFAULT_IMAGES = "kleiber-6028x3391.jpg,picos-3264x2448.jpg,dragonfly-4224x3168.jpg,path-2560x1600.jpg"
EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
SHARP_SCRIPT = r"""
const fs = require('fs'), path = require('path');
const sharp = require(path.join(process.env.SHARP_DIR, 'node_modules/sharp'));
sharp.cache(false);
const [input, outDir, format, quality, ...widths] = process.argv.slice(1);
const ext = { jpeg: 'jpg', webp: 'webp', avif: 'avif' }[format];
// AVIF at sharp's own default quality; JPEG and WebP at the sweep's.
const options = format === 'avif' ? {} : { quality: +quality };
(async () => {
  const src = fs.readFileSync(input);
  for (const w of widths) {
    await sharp(src).resize({ width: +w }).toFormat(format, options).toFile(path.join(outDir, `sharp-${w}.${ext}`));
  }
})().catch(e => { console.error(e); process.exit(1); });
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


def corpus_names(tsv, half):
    names = []
    with open(tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        col_name, col_half = header.index("name"), header.index("half")
        for line in f:
            row = line.rstrip("\n").split("\t")
            if len(row) > col_half and (half in (None, "all") or row[col_half] == half):
                names.append(row[col_name])
    return names


def score(path, refs, name):
    img = open_oriented(path)
    got = np.clip(luma_float(img), 0.0, 255.0)
    ref = refs.get(name, img.size)
    return structural_similarity(ref, got, data_range=255), img.size


def sweep_photo(job):
    """Every format and width of one photo: [(name, fmt, width, sizer, sharp, gap, bytes ratio, note)]."""
    images_dir, name, sizer, sharp_dir, formats, quality, step, start, limit, avif_step, avif_pixels = job
    src = os.path.join(images_dir, name)
    if not os.path.exists(src):
        return name, [], f"missing: {src}"
    full_w, full_h = Image.open(src).size
    refs = References(images_dir)
    rows = []
    for fmt in formats:
        if fmt == "avif":
            # The largest width whose output sizer would serve as AVIF.
            cap = int(math.sqrt(avif_pixels * full_w / full_h))
            widths = widths_for(full_w, start, avif_step, min(limit, cap))
        else:
            widths = widths_for(full_w, start, step, limit)
        ext = EXT[fmt]
        with tempfile.TemporaryDirectory() as out:
            for w in widths:
                subprocess.run([sizer, "resize", src, os.path.join(out, f"sizer-{w}.{ext}"), "--width", str(w),
                                "--quality", str(quality), "--format", fmt], check=True)
            subprocess.run(["node", "-e", SHARP_SCRIPT, src, out, fmt, str(quality), *map(str, widths)],
                           check=True, env=dict(os.environ, SHARP_DIR=sharp_dir))
            for w in widths:
                a_path, b_path = os.path.join(out, f"sizer-{w}.{ext}"), os.path.join(out, f"sharp-{w}.{ext}")
                a, a_size = score(a_path, refs, name)
                b, b_size = score(b_path, refs, name)
                ratio = os.path.getsize(a_path) / os.path.getsize(b_path)
                if a_size != b_size:
                    rows.append((name, fmt, w, a, b, None, ratio, f"sizes differ {a_size} {b_size}"))
                else:
                    rows.append((name, fmt, w, a, b, a - b, ratio, ""))
    return name, rows, None


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


FLOOR = -0.005


def stats(rows):
    """Of sweep rows: the scored ones, the worst of them (None if none), how many are below the floor, the
    mean gap and the bytes geomean (over every row, scored or not)."""
    scored = [r for r in rows if r[5] is not None]
    worst = min(scored, key=lambda r: r[5]) if scored else None
    below = sum(1 for r in scored if r[5] < FLOOR)
    mean = sum(r[5] for r in scored) / len(scored) if scored else None
    return scored, worst, below, mean, geomean([r[6] for r in rows])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    images_dir, sizer = argv[0], os.path.abspath(argv[1])
    rest = argv[2:]
    sharp_dir = option(rest, "--sharp-dir", os.environ.get("SHARP_DIR", "/tmp/peers/sharp"))
    if "--corpus" in rest:
        names = corpus_names(option(rest, "--corpus", None), option(rest, "--half", None))
    else:
        names = option(rest, "--images", DEFAULT_IMAGES).split(",")
    formats = option(rest, "--formats", "jpeg").split(",")
    quality = int(option(rest, "--quality", "80"))
    step, start = float(option(rest, "--step", "1.07")), int(option(rest, "--min", "64"))
    limit = int(option(rest, "--max", "100000"))
    avif_step = float(option(rest, "--avif-step", "1.15"))
    avif_pixels = int(option(rest, "--avif-max-pixels", "4194304"))
    jobs = int(option(rest, "--jobs", "2"))
    tsv = option(rest, "--tsv", None)
    fail_below = option(rest, "--fail-below", None)
    if not os.path.isdir(os.path.join(sharp_dir, "node_modules", "sharp")):
        print(f"sweep.py: no sharp in {sharp_dir} (bench/setup.sh installs it)", file=sys.stderr)
        return 2
    work = [(images_dir, n, sizer, sharp_dir, formats, quality, step, start, limit, avif_step, avif_pixels)
            for n in names]
    rows = []
    print("| photo | format | widths scored | worst SSIM sizer − sharp | at width | below −0.005 | mean gap | bytes sizer/sharp (geomean) |")
    print("|---|---|---|---|---|---|---|---|")
    with multiprocessing.Pool(max(1, jobs)) as pool:
        for name, photo_rows, error in pool.imap(sweep_photo, work):
            if error:
                print(f"| {name} | {error} | | | | | | |", flush=True)
                continue
            rows.extend(photo_rows)
            for fmt in formats:
                mine = [r for r in photo_rows if r[1] == fmt]
                scored, low, below, mean, g = stats(mine)
                if not scored:
                    print(f"| {name} | {fmt} | 0 of {len(mine)} | n/a | | | | |", flush=True)
                    continue
                print(f"| {name} | {fmt} | {len(scored)} of {len(mine)} ({mine[0][2]}–{mine[-1][2]}) | {low[5]:+.4f} | "
                      f"{low[2]} | {below} | {mean:+.4f} | {g:.3f} |", flush=True)
    print()
    summary = []
    print("| format | widths scored | not scored (sizes differ) | worst gap | where | below −0.005 | bytes geomean |")
    print("|---|---|---|---|---|---|---|")
    for fmt in formats:
        mine = [r for r in rows if r[1] == fmt]
        scored, low, below, _, g = stats(mine)
        if not scored:
            continue
        print(f"| {fmt} | {len(scored)} | {len(mine) - len(scored)} | {low[5]:+.4f} | {low[0]} at {low[2]} px | "
              f"{below} | {g:.3f} |")
        summary.append(f"bytes_{fmt}={g:.3f}")
    print()
    scored_all, worst, below, _, _ = stats(rows)
    if worst:
        print(f"**Worst SSIM gap to sharp: {worst[5]:+.4f} ({worst[0]}, {worst[1]}, {worst[2]} px wide)**; "
              f"the floor is −0.005.")
        print(f"SWEEP worst={worst[5]:+.4f} photo={worst[0]} format={worst[1]} width={worst[2]} below={below} "
              f"scored={len(scored_all)} " + " ".join(summary))
    if tsv:
        with open(tsv, "w") as f:
            f.write("photo\tformat\twidth\tsizer\tsharp\tgap\tbytes_ratio\tnote\n")
            for r in rows:
                f.write("\t".join("n/a" if v is None else (f"{v:.5f}" if isinstance(v, float) else str(v))
                                  for v in r) + "\n")
    if fail_below is not None and worst is not None and worst[5] < float(fail_below):
        print(f"sweep.py: the floor does not hold: {worst[5]:+.4f} < {fail_below}", file=sys.stderr)
        return 1
    if fail_below is not None and worst is None:
        print("sweep.py: nothing was scored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
