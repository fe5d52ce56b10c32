#!/usr/bin/env bash
# sizer against its peers, side by side in one run, as ONE markdown report on stdout.
#
# usage:  bench/compare.sh                 (from anywhere; full run: the build, then about 4 minutes on 2 cores)
#         QUICK=1 bench/compare.sh         (smoke test: ITER=3, SECS=3, under a minute after the build)
# env:    ITER   engine iterations per workload, and runs per whole-process timing (default 15; QUICK: 3)
#         SECS   seconds per HTTP load test (default 20; QUICK: 3)
#         ROUNDS alternating rounds of the engine and hot-path comparisons (default 3; QUICK: 1)
#         SHARP_DIR, THUMBOR_VENV   peers (default /tmp/peers/sharp, /tmp/peers/thumbor-venv);
#                setup.sh is run if a peer or tool is missing, and anything still missing prints "n/a"
#         SHARED   the team's shared tree with the peer set-up and HTTP load scripts (default: ../shared beside
#                the repo; nothing else is guessed). Without it the engine table still runs on the repository's
#                own workloads (bench/workloads.json, testdata/images) with whatever peers are installed, and
#                the report says which sections were skipped and why.
#         SECTIONS which sections to run, of: engine sweep pregen floor cold hot memory (default: all)
#         REPORT   where a copy of the report is kept (default /tmp/peers/compare-report.md). Progress: stderr.
#
# What it measures, and why:
#   1. Engine: the workloads of bench/workloads.json through sizer's pipeline in process
#      (examples/engine_table.rs) and through sharp/libvips (bench/sharp-engine.js), one thread each,
#      in ROUNDS rounds that alternate the two engines (so a slow spell of this shared machine hits both),
#      the median over rounds of each round's median CPU ms, and output bytes, plus SSIM of both outputs against one full-precision reference
#      (bench/ssim.py), so that speed and size are read at a known quality. Geometric mean of the CPU
#      ratios over the workloads (W7, W8: AVIF at each engine's default quality).
#   2. Decode floor: whole-process `djpeg -scale 1/8` on the W1 input (the least any JPEG shrink-on-load
#      resizer can do), against whole-process `sizer resize --width 600` and `vipsthumbnail -s 600x`,
#      median wall time with hyperfine (a bash loop if hyperfine is missing).
#   3. HTTP cold: shared/bench/run-http.sh (every request a never-asked variant) for sizer, the sharp
#      server and thumbor at concurrency 2 and 8, on two workloads of bench/numbered-urls.lua: "srcset" (4
#      originals, many widths) and "distinct" (every request a different original). run-http.sh is called
#      once per concurrency, so every server starts fresh and sizer starts with an empty variant store: the
#      URL script restarts its sequence in each wrk run, so a second concurrency in the same sizer process would hit sizer's
#      caches while the peers (which cache nothing) recompute. Sizer's peak RSS (VmHWM) is sampled meanwhile.
#   4. HTTP hot: nginx serving the W1 600w JPEG statically (shared/bench/nginx-hot.sh) against sizer
#      serving the same variant from its memory tier, same wrk flags (-t 2 -c 32 --latency), alternating in
#      ROUNDS rounds; the medians over rounds are compared (wrk shares the 2 cores, so one p99 is noisy).
# Ratios are the numbers to quote (sizer / peer, same run, same machine); absolute times move with load.
# Everything listens on 127.0.0.1 only, and every server started here is stopped on exit (trap).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
BENCH=$SHARED/bench   # peer set-up (setup.sh) and HTTP load scripts (run-http.sh, nginx-hot.sh, cold-urls.lua)
if [ ! -d "$BENCH" ]; then
  echo "[compare] no shared tree at $SHARED (set SHARED): peer set-up and the HTTP cold/hot sections are skipped;" \
       "the engine table runs with the peers already installed" >&2
  BENCH=
fi
IMAGES=$repo/testdata/images
WORKLOADS=$repo/bench/workloads.json
PEERS=${PEERS:-/tmp/peers}
if [ "${QUICK:-0}" = 1 ]; then ITER=${ITER:-3}; SECS=${SECS:-3}; ROUNDS=${ROUNDS:-1}; fi
ITER=${ITER:-15}; SECS=${SECS:-20}; ROUNDS=${ROUNDS:-3}
SHARP_DIR=${SHARP_DIR:-$PEERS/sharp}
THUMBOR_VENV=${THUMBOR_VENV:-$PEERS/thumbor-venv}
REPORT=${REPORT:-$PEERS/compare-report.md}
# Same keys as run-http.sh's default; passed explicitly so sizer's root and the URLs agree.
KEYS=kleiber-6028x3391.jpg,dragonfly-4224x3168.jpg,picos-3264x2448.jpg,path-2560x1600.jpg
W1_IN=$IMAGES/kleiber-6028x3391.jpg

log() { echo "[compare] $*" >&2; }
# SECTIONS: which sections run (default all: engine sweep pregen floor cold hot memory), e.g. SECTIONS="cold hot".
want() { [[ " ${SECTIONS:-engine sweep pregen floor cold hot memory} " == *" $1 "* ]]; }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.2; done; return 1; }

mkdir -p "$PEERS"
work=$(mktemp -d /tmp/sizer-compare.XXXXXX)
mkdir -p "$work/out"
bg_pids=()   # everything started in the background here; killed (with its children) on exit

# Kill a process and all its descendants, by pid only.
kill_tree() {
  local p=$1 c
  kill "$p" 2>/dev/null || true
  for c in $(pgrep -P "$p" 2>/dev/null); do kill_tree "$c"; done
}
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill_tree "$p"; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- peers and build -------------------------------------------------------------------------------
missing=()
[ -d "$SHARP_DIR/node_modules/sharp" ] || missing+=(sharp)
[ -x "$THUMBOR_VENV/bin/thumbor" ] || missing+=(thumbor)
for t in vipsthumbnail djpeg wrk nginx node; do have "$t" || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ] && [ -n "$BENCH" ]; then
  log "missing: ${missing[*]}; running $BENCH/setup.sh"
  PEERS=$PEERS "$BENCH/setup.sh" >&2 || log "setup.sh failed; going on with what is there"
elif [ ${#missing[@]} -gt 0 ]; then
  log "missing: ${missing[*]}; no setup.sh without the shared tree: their rows print n/a"
fi
sharp_ok=0; thumbor_ok=0
have node && node -e "require('$SHARP_DIR/node_modules/sharp')" >/dev/null 2>&1 && sharp_ok=1
"$THUMBOR_VENV/bin/python" -c 'import thumbor' >/dev/null 2>&1 && thumbor_ok=1

# The `nasm` feature (rav1e's assembly: AVIF about three times faster) is what the Dockerfile and CI build;
# without nasm on this machine sizer is built without it, and the report says so.
features=(); sizer_features="none (no nasm here: AVIF without rav1e's assembly)"
if have nasm; then features=(--features nasm); sizer_features=nasm; fi
# libaom (the `aom` feature, what the Dockerfile ships) needs cmake and nasm.
if have nasm && have cmake; then features=(--features nasm,aom); sizer_features="nasm,aom (AVIF with libaom)"; fi
log "building sizer (cargo build --release ${features[*]} --example engine_table --example pregenerate_table --example make_animation --bin sizer)"
(cd "$repo" && cargo build --release "${features[@]}" --example engine_table --example pregenerate_table --example make_animation --bin sizer) >&2
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
SIZER=$target/release/sizer
ENGINE_TABLE=$target/release/examples/engine_table
PREGENERATE_TABLE=$target/release/examples/pregenerate_table

# The images: the repository's, plus the animated-GIF workload (W13, W14) made here from one of them
# (examples/make_animation.rs: a 100-frame pan, 480x270), so the repository need not carry 7 MB of GIF.
mkdir -p "$work/images"
ln -s "$IMAGES"/* "$work/images/"
IMAGES=$work/images
"$target/release/examples/make_animation" "$IMAGES/path-2560x1600.jpg" "$IMAGES/pan-480x270x100.gif" 100 2>&1 | sed 's/^/[compare] /' >&2
# W15, W16: the W3 photo as an LZW TIFF and as a JPEG XL (q90), made with Pillow and pillow-jxl-plugin in
# bench/ssim.py's venv (which reads them back for the SSIM reference); without it, the rows are n/a.
SSIM_VENV=${SSIM_VENV:-$PEERS/ssim-venv}
if python3 "$here/ssim.py" --setup >&2 && "$SSIM_VENV/bin/python" - "$IMAGES/picos-3264x2448.jpg" "$IMAGES" <<'PY' >&2
import sys, pillow_jxl  # noqa: F401  (registers JPEG XL)
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src)
im.save(f"{out}/picos-3264x2448.tif", compression="tiff_lzw")
im.save(f"{out}/picos-3264x2448.jxl", quality=90)
PY
then log "W15, W16 inputs: picos as TIFF (LZW) and JPEG XL (q90)"; else log "no TIFF/JPEG XL inputs: W15, W16 are n/a"; fi

# --- header ------------------------------------------------------------------------------------------
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ] && commit="$commit (+ uncommitted changes in the working tree)"
ver() { "$@" 2>&1 | head -1 || true; }
v_sharp=n/a; [ $sharp_ok = 1 ] && v_sharp=$(node -e "const s=require('$SHARP_DIR/node_modules/sharp'); console.log('sharp ' + s.versions.sharp + ' / libvips ' + s.versions.vips)")
v_thumbor=n/a; [ $thumbor_ok = 1 ] && v_thumbor="thumbor $("$THUMBOR_VENV/bin/python" -c 'import thumbor; print(thumbor.__version__)')"
v_vips=n/a; have vipsthumbnail && v_vips="vipsthumbnail ($(ver vipsthumbnail --vips-version))"
v_djpeg=n/a; have djpeg && v_djpeg="djpeg ($(ver djpeg -version))"
v_nginx=n/a; have nginx && v_nginx=$(ver /usr/sbin/nginx -v | sed 's/^nginx version: //')
v_wrk=n/a; have wrk && v_wrk=$(ver wrk -v | awk '{print $1, $2}')
v_hf=n/a; have hyperfine && v_hf=$(ver hyperfine --version)

R=$work/report.md
{
  echo "# sizer vs peers — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "- sizer: $("$SIZER" --version 2>/dev/null || echo sizer), commit $commit, $(rustc --version 2>/dev/null || echo rustc ?), features: $sizer_features"
  echo "- peers: $v_sharp (node $(node --version 2>/dev/null || echo n/a)); $v_thumbor; $v_vips; $v_djpeg; $v_nginx"
  echo "- tools: $v_wrk; $v_hf"
  echo "- settings: ITER=$ITER (engine iterations and whole-process runs), SECS=$SECS (per HTTP test), ROUNDS=$ROUNDS (engine and hot path)$([ "${QUICK:-0}" = 1 ] && echo ', QUICK=1 smoke test: numbers are noisy')"
  echo
} >"$R"

# --- 1. engine table ---------------------------------------------------------------------------------
if want engine; then
rm -f "$PEERS"/out-sharp-W*.*   # so that a stale output can never be scored
for r in $(seq "$ROUNDS"); do
  log "engine round $r/$ROUNDS: sizer, ITER=$ITER"
  "$ENGINE_TABLE" "$WORKLOADS" "$IMAGES" "$ITER" "$work/out" >"$work/engine-sizer-$r.md"
  : >"$work/engine-sharp-$r.md"
  if [ $sharp_ok = 1 ]; then
    log "engine round $r/$ROUNDS: sharp, ITER=$ITER"
    if SHARP_DIR=$SHARP_DIR WORKLOADS=$WORKLOADS node "$here/sharp-engine.js" "$IMAGES" "$ITER" >"$work/engine-sharp-$r.md" 2>"$work/engine-sharp.err"; then
      cp "$PEERS"/out-sharp-W*.* "$work/out/" 2>/dev/null || true
    else
      log "sharp-engine.js failed: $(tail -1 "$work/engine-sharp.err")"
    fi
  fi
done
log "engine: W4 in sizer's default lossless PNG mode, for the record"
mkdir -p "$work/out-lossless"
ONLY=W4 PNG=lossless "$ENGINE_TABLE" "$WORKLOADS" "$IMAGES" "$ITER" "$work/out-lossless" >"$work/engine-lossless.md"
log "SSIM"
python3 "$here/ssim.py" "$WORKLOADS" "$IMAGES" "sizer=$work/out/out-sizer-{id}.{ext}" \
  "sharp=$work/out/out-sharp-{id}.{ext}" "sizer-lossless=$work/out-lossless/out-sizer-{id}.{ext}" \
  --tsv >"$work/ssim.tsv" || log "ssim.py failed"

python3 - "$WORKLOADS" "$work" "$work/ssim.tsv" "$ITER" "$ROUNDS" >>"$R" <<'PY'
import glob, json, math, statistics, sys
work = json.load(open(sys.argv[1]))
def table(pattern):
    """Rows of every round's table; cpu is the median over rounds of each round's median."""
    rounds = {}
    for path in sorted(glob.glob(pattern)):
        for line in open(path):
            f = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(f) == 5 and f[0].startswith("W"):
                rounds.setdefault(f[0], []).append({"engine": f[1], "cpu": float(f[3]), "bytes": int(f[4])})
    return {i: {"engine": r[-1]["engine"], "bytes": r[-1]["bytes"], "cpu": statistics.median(x["cpu"] for x in r),
                "rounds": [x["cpu"] for x in r]} for i, r in rounds.items()}
sizer, sharp = table(sys.argv[2] + "/engine-sizer-*.md"), table(sys.argv[2] + "/engine-sharp-*.md")
ssim = {}
try:
    for line in open(sys.argv[3]).read().splitlines()[1:]:
        i, eng, s, *_ = line.split("\t")
        ssim[(i, eng)] = float(s) if s not in ("n/a", "error") else None
except OSError:
    pass
na = "n/a"
fmt = lambda v, f: na if v is None else format(v, f)
ratio = lambda a, b: None if a is None or b in (None, 0) else a / b
print(f"## Engine: {work[0]['id']}–{work[-1]['id']}, one thread, in process ({sys.argv[5]} alternating rounds of {sys.argv[4]} runs after 2 warm-ups; median over rounds of each round's median)")
print()
print("| id | workload | sizer cpu ms | sharp cpu ms | cpu sizer/sharp | sizer bytes | sharp bytes | bytes sizer/sharp | sizer SSIM | sharp SSIM | SSIM sizer−sharp |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
logs = []
for w in work:
    i = w["id"]; a = sizer.get(i, {}); b = sharp.get(i, {})
    cr = ratio(a.get("cpu"), b.get("cpu")); br = ratio(a.get("bytes"), b.get("bytes"))
    sa, sb = ssim.get((i, "sizer")), ssim.get((i, "sharp"))
    if cr: logs.append(math.log(cr))
    shape = f"{w['width']}x{w['height']} {w.get('fit', 'inside')}" + (f" {w['position']}" if w.get('position') else "") if w.get('height') else f"{w['width']}w"
    print(f"| {i} | {w['in']} → {shape} {w['format']} | {fmt(a.get('cpu'), '.1f')} | {fmt(b.get('cpu'), '.1f')} | {fmt(cr, '.2f')} "
          f"| {fmt(a.get('bytes'), 'd')} | {fmt(b.get('bytes'), 'd')} | {fmt(br, '.2f')} "
          f"| {fmt(sa, '.4f')} | {fmt(sb, '.4f')} | {fmt(None if sa is None or sb is None else sa - sb, '+.4f')} |")
print()
gm = fmt(math.exp(sum(logs) / len(logs)) if logs else None, ".2f")
print(f"**Geometric mean of cpu sizer/sharp over {len(logs)} of {len(work)} workloads: {gm}** (below 1: sizer uses less CPU).")
core = [math.log(ratio(sizer[w['id']]['cpu'], sharp[w['id']]['cpu'])) for w in work[:6]
        if w['id'] in sizer and w['id'] in sharp and sharp[w['id']]['cpu']]
if len(core) == 6:
    print()
    print(f"**W1–W6 (the original six) geometric mean: {math.exp(sum(core) / 6):.2f}**.")
if all(i in t for t in (sizer, sharp) for i in ("W11", "W12")):
    print()
    print(f"**Colour conversion:** W12 (a Display P3 photo with its ICC profile, converted to sRGB) costs "
          f"{sizer['W12']['cpu'] / sizer['W11']['cpu']:.2f}x the CPU of W11 (the same photo untagged) in sizer, "
          f"{sharp['W12']['cpu'] / sharp['W11']['cpu']:.2f}x in sharp (which converts to sRGB by default too). "
          "W12's SSIM reference is the P3 numbers' luma, so its SSIM is not comparable with the other rows'.")
if all(i in t for t in (sizer, sharp) for i in ("W13", "W14")):
    print()
    print(f"**Animation:** W13 (a 100-frame 480x270 GIF to 240w, every frame kept) costs "
          f"{sizer['W13']['cpu'] / sharp['W13']['cpu']:.2f}x sharp's CPU (`animated: true`) at "
          f"{sizer['W13']['bytes'] / sharp['W13']['bytes']:.2f}x its bytes as GIF; as animated WebP (W14), "
          f"{sizer['W14']['cpu'] / sharp['W14']['cpu']:.2f}x the CPU at {sizer['W14']['bytes'] / sharp['W14']['bytes']:.2f}x the bytes. "
          "Their SSIM is the first frame's.")
print()
print("Per-round cpu sizer/sharp: " + "; ".join(
    f"{w['id']} " + " ".join(f"{a / b:.2f}" for a, b in zip(sizer.get(w["id"], {}).get("rounds", []), sharp.get(w["id"], {}).get("rounds", [])) if b)
    for w in work))
eng = lambda t: next(iter(t.values()))["engine"] if t else na
print()
print(f"Engines: {eng(sizer)}; {eng(sharp)}. SSIM: luma, against a float Lanczos resize of the full-resolution original "
      "(alpha composited over mid-grey), bench/ssim.py. W4: the input's alpha is fully opaque, so W4 does not exercise alpha; "
      "and sharp-engine.js passes quality 80 to PNG, which makes sharp quantise to a palette (lossy), so sizer runs W4 in its palette mode "
      "(output.png = \"palette\"); sizer's default lossless PNG is in the line below.")
print()
lossless = table(sys.argv[2] + "/engine-lossless.md").get("W4")
if lossless:
    s4, b4 = ssim.get(("W4", "sizer-lossless")), sharp.get("W4", {})
    print(f"W4 in sizer's default lossless PNG mode: cpu {lossless['cpu']:.1f} ms ({fmt(ratio(lossless['cpu'], b4.get('cpu')), '.2f')}× sharp), "
          f"{lossless['bytes']} bytes ({fmt(ratio(lossless['bytes'], b4.get('bytes')), '.2f')}× sharp's palette PNG), SSIM {fmt(s4, '.4f')}.")
    print()
PY
fi

# --- 1a. quality sweep ------------------------------------------------------------------------------------
# Issue 22's floor on the whole corpus (bench/CORPUS.md: 79 files fetched by bench/corpus.sh from pinned
# Debian packages into SIZER_CORPUS, ~300 MB once): every width from 64 px to each photo's own (SWEEP_MAX
# caps it) in ~7 % steps for JPEG and WebP at q80, ~15 % steps for AVIF (each engine's default quality) up
# to the 4 MP sizer serves as AVIF; sizer and sharp against one full-precision reference (bench/sweep.py):
# the worst SSIM gap to sharp and where, and the bytes ratio. SWEEP_FORMATS (default jpeg,webp,avif) and
# SWEEP_HALF (tune, check or all, the default) narrow it; without the corpus (no network) it falls back to
# the repository's photos. About 2 hours on 2 cores for everything; QUICK=1 sweeps JPEG on the check half.
if want sweep; then
log "quality sweep (bench/sweep.py)"
corpus=${SIZER_CORPUS:-$HOME/.cache/sizer-corpus}
sweep_args=(--formats "${SWEEP_FORMATS:-jpeg,webp,avif}" --jobs "$(nproc)")
[ "${QUICK:-0}" = 1 ] && sweep_args=(--formats jpeg --step 1.25 --jobs "$(nproc)") && SWEEP_HALF=${SWEEP_HALF:-check}
[ -n "${SWEEP_MAX:-}" ] && sweep_args+=(--max "$SWEEP_MAX")
if SHARP_DIR=$SHARP_DIR bash "$here/corpus.sh" "$corpus" >"$work/corpus.log" 2>&1; then
  sweep_dir=$corpus
  sweep_args+=(--corpus "$here/corpus.tsv" --half "${SWEEP_HALF:-all}")
  sweep_what="the corpus (bench/CORPUS.md, half: ${SWEEP_HALF:-all})"
else
  sweep_dir=$IMAGES
  sweep_what="the repository's photos only (bench/corpus.sh failed: $(tail -1 "$work/corpus.log"))"
fi
{
  echo "## Quality sweep: SSIM of sizer's and sharp's outputs at every width, 64 px to full size, on $sweep_what"
  echo
  if SHARP_DIR=$SHARP_DIR python3 "$here/sweep.py" "$sweep_dir" "$SIZER" "${sweep_args[@]}" --tsv "$work/sweep.tsv" >"$work/sweep.md" 2>"$work/sweep.err"; then
    cat "$work/sweep.md"
  else
    echo "n/a: bench/sweep.py failed ($(tail -1 "$work/sweep.err"))"
  fi
  echo
} >>"$R"
fi

# --- 1b. pre-generation: several widths of one upload ---------------------------------------------------
# What an upload event costs: every width of bench/pregenerate.json from ONE decode (process_many), against
# the largest width alone (goal: at most 1.3x), against sharp's clone() pipelines making the same widths,
# and against the seed's way (ImageMagick `convert`, one process and one full decode per width; Debian's
# imagemagick package, installed by hand or by setup; n/a when /usr/bin/convert is missing).
if want pregen; then
PREGEN_ROWS=$repo/bench/pregenerate.json
log "pre-generation: sizer, ITER=$ITER"
"$PREGENERATE_TABLE" "$PREGEN_ROWS" "$IMAGES" "$ITER" >"$work/pregen-sizer.md"
: >"$work/pregen-sharp.md"; : >"$work/pregen-im.md"
if [ $sharp_ok = 1 ]; then
  log "pre-generation: sharp clone() pipelines"
  SHARP_DIR=$SHARP_DIR node "$here/sharp-pregenerate.js" "$PREGEN_ROWS" "$IMAGES" "$ITER" >"$work/pregen-sharp.md" 2>"$work/pregen-sharp.err" \
    || log "sharp-pregenerate.js failed: $(tail -1 "$work/pregen-sharp.err")"
fi
if [ -x /usr/bin/convert ] && /usr/bin/convert -version 2>/dev/null | grep -q ImageMagick; then
  log "pre-generation: ImageMagick as the seed ran it"
  python3 "$here/imagemagick-pregenerate.py" "$PREGEN_ROWS" "$IMAGES" "$ITER" >"$work/pregen-im.md" 2>"$work/pregen-im.err" \
    || log "imagemagick-pregenerate.py failed: $(tail -1 "$work/pregen-im.err")"
else
  log "no ImageMagick at /usr/bin/convert (apt-get install imagemagick): its column prints n/a"
fi
python3 - "$PREGEN_ROWS" "$work" >>"$R" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
def table(name):
    out = {}
    try:
        for line in open(f"{sys.argv[2]}/pregen-{name}.md"):
            f = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(f) == 5 and f[0].startswith("P"):
                out[f[0]] = {"engine": f[1], "alone": float(f[2]), "all": float(f[3]), "bytes": int(f[4])}
    except OSError:
        pass
    return out
sizer, sharp, im = table("sizer"), table("sharp"), table("im")
na = "n/a"
fmt = lambda v, f: na if v is None else format(v, f)
ratio = lambda a, b: None if a is None or not b else a / b
get = lambda t, i, k: t.get(i, {}).get(k)
print("## Pre-generation: every width of one upload (one thread, in process; ImageMagick: whole processes)")
print()
print("| id | upload → widths | sizer largest alone ms | sizer all ms | **all / alone** | sharp all ms (clone) | sharp all / alone | **sizer / sharp** | ImageMagick all ms (seed) | sizer / ImageMagick | bytes sizer/sharp |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    i = r["id"]
    print(f"| {i} | {r['in']} → {', '.join(map(str, r['widths']))} {r['format']} "
          f"| {fmt(get(sizer, i, 'alone'), '.1f')} | {fmt(get(sizer, i, 'all'), '.1f')} "
          f"| **{fmt(ratio(get(sizer, i, 'all'), get(sizer, i, 'alone')), '.2f')}** "
          f"| {fmt(get(sharp, i, 'all'), '.1f')} | {fmt(ratio(get(sharp, i, 'all'), get(sharp, i, 'alone')), '.2f')} "
          f"| **{fmt(ratio(get(sizer, i, 'all'), get(sharp, i, 'all')), '.2f')}** "
          f"| {fmt(get(im, i, 'all'), '.1f')} | {fmt(ratio(get(sizer, i, 'all'), get(im, i, 'all')), '.2f')} "
          f"| {fmt(ratio(get(sizer, i, 'bytes'), get(sharp, i, 'bytes')), '.2f')} |")
print()
eng = lambda t: next(iter(t.values()))["engine"] if t else na
print(f"Engines: {eng(sizer)}; {eng(sharp)}; {eng(im)}. Goal: all / alone ≤ 1.3 (issue 9).")
print()
PY
fi

# --- 2. decode floor ---------------------------------------------------------------------------------
# The W1 variant as `sizer resize` writes it: timed here, served by nginx in the hot section.
W1_OUT=$work/w1-600.jpg
"$SIZER" resize "$W1_IN" "$W1_OUT" --width 600
if want floor; then
log "decode floor: whole-process timings, $ITER runs each"
names=(); cmds=()
if have djpeg; then names+=("djpeg -scale 1/8"); cmds+=("djpeg -scale 1/8 -outfile /dev/null $W1_IN"); fi
names+=("sizer resize --width 600"); cmds+=("$SIZER resize $W1_IN $work/w1-timed.jpg --width 600")
if have vipsthumbnail; then names+=("vipsthumbnail -s 600x [Q=80]"); cmds+=("vipsthumbnail $W1_IN -s 600x -o $work/w1-vips.jpg[Q=80]"); fi
: >"$work/floor.tsv"   # name \t median wall ms \t mean user+sys ms
if have hyperfine; then
  hargs=(); for c in "${cmds[@]}"; do hargs+=("$c"); done
  if hyperfine -N --warmup 1 --runs "$ITER" --style none --export-json "$work/floor.json" "${hargs[@]}" >/dev/null 2>"$work/floor.err"; then
    python3 - "$work/floor.json" "${names[@]}" >"$work/floor.tsv" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
for name, r in zip(sys.argv[2:], res):
    print(f"{name}\t{r['median'] * 1000:.1f}\t{(r['user'] + r['system']) * 1000:.1f}")
PY
  else
    log "hyperfine failed: $(tail -1 "$work/floor.err")"
  fi
  timer="hyperfine -N, 1 warm-up, $ITER runs; wall median, user+sys mean"
else
  for k in "${!cmds[@]}"; do
    ts=()
    for _ in $(seq "$ITER"); do
      t0=$(date +%s%N); ${cmds[$k]} >/dev/null 2>&1 || true; t1=$(date +%s%N); ts+=($(( (t1 - t0) / 1000 )))
    done
    med=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}')
    printf '%s\t%s\tn/a\n' "${names[$k]}" "$med" >>"$work/floor.tsv"
  done
  timer="bash loop, $ITER runs; wall median"
fi
{
  echo "## Decode floor: W1 input ($(basename "$W1_IN")), whole process ($timer)"
  echo
  echo "| command | wall ms (median) | cpu ms (user+sys) | wall / djpeg |"
  echo "|---|---|---|---|"
  awk -F'\t' '{n[NR]=$1; w[NR]=$2; c[NR]=$3} $1 ~ /^djpeg/ {d=$2}
    END {for (i=1;i<=NR;i++) printf "| %s | %s | %s | %s |\n", n[i], w[i], c[i], (d>0 ? sprintf("%.2f", w[i]/d) : "n/a")}' "$work/floor.tsv"
  grep -q . "$work/floor.tsv" || echo "| (no timings) | n/a | n/a | n/a |"
  awk -F'\t' '$1 ~ /^sizer/ {s=$2} $1 ~ /^vips/ {v=$2} END {if (s && v) printf "\nsizer resize / vipsthumbnail (wall): %.2f\n", s/v}' "$work/floor.tsv"
  echo
} >>"$R"
fi

# --- 3. HTTP cold --------------------------------------------------------------------------------------
# Two cold workloads, each at concurrency 2 and 8, each server started fresh per run (run-http.sh):
#   "srcset": bench/numbered-urls.lua, 4 originals and many widths (what a page's srcset asks of a new
#             image), no variant asked twice: sizer's shared originals (src/originals.rs) can help here;
#   "distinct": bench/numbered-urls.lua, every request a different original (2400 names hard-linked to the
#             same 4 files, which no server can tell apart): nothing to share, the cost of trying.
if want cold; then
SIZER_PORT=$(free_port)

# Print the peak RSS (max of VmHWM and sampled VmRSS, in kB) of the pid in $1's file, until it exits.
sample_rss() {
  local pidfile=$1 out=$2 pid peak=0 v
  for _ in $(seq 600); do [ -s "$pidfile" ] && break; sleep 0.1; done
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  while [ -r "/proc/$pid/status" ]; do
    v=$(awk '/^VmHWM|^VmRSS/ {if ($2 > m) m = $2} END {print m + 0}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$peak" ] && peak=$v && echo "$peak" >"$out"
    sleep 0.2
  done
}

# http_cold NAME ROOT KEYS URLS: run-http.sh over ROOT at concurrency 2 and 8, with bench/numbered-urls.lua
# in URLS mode (srcset, distinct); rows to $work/NAME.md, sizer's peak RSS to $work/NAME-rss-C.
http_cold() {
  local name=$1 root=$2 keys=$3 urls=$4 dir=$work/http-bench c rpid spid
  # run-http.sh starts "$SIZER_BIN" with no arguments; this wrapper records sizer's pid for the RSS sampler
  # and starts every run with an empty variant store. (SIZER_BIN and SIZER_PORT are not sizer settings:
  # sizer reads only SIZER_<SECTION>__<KEY> variables.)
  printf '#!/bin/sh\nrm -rf "%s/copy"\necho $$ >"%s"\nexec "%s"\n' \
    "$root" "$work/sizer-$name.pid" "$SIZER" >"$work/sizer-wrap-$name.sh"
  chmod +x "$work/sizer-wrap-$name.sh"
  local peer_env=()
  if [ $sharp_ok = 1 ] && ! port_busy 8091; then peer_env+=("SHARP_DIR=$SHARP_DIR"); fi
  if [ $thumbor_ok = 1 ] && ! port_busy 8092; then peer_env+=("THUMBOR_VENV=$THUMBOR_VENV"); fi
  : >"$work/$name.md"
  for c in 2 8; do
    log "HTTP cold ($name): concurrency $c, ${SECS}s per server"
    rm -f "$work/sizer-$name.pid" "$work/$name-rss-$c"
    env -u SHARP_DIR -u THUMBOR_VENV "${peer_env[@]}" IMAGES="$root" KEYS="$keys" URLS="$urls" \
      SIZER_BIN="$work/sizer-wrap-$name.sh" SIZER_PORT="$SIZER_PORT" SIZER_STORE__ROOT="$root" \
      SIZER_SERVER__LISTEN="127.0.0.1:$SIZER_PORT" RUST_LOG=warn \
      "$dir/run-http.sh" "$SECS" "$c" >"$work/$name-$c.md" 2>"$work/$name-$c.err" &
    rpid=$!; bg_pids+=("$rpid")
    sample_rss "$work/sizer-$name.pid" "$work/$name-rss-$c" &
    spid=$!; bg_pids+=("$spid")
    if wait "$rpid"; then
      grep -E '^\| [a-z]+ \| [0-9]' "$work/$name-$c.md" >>"$work/$name.md" || true
    else
      log "run-http.sh ($name) at concurrency $c failed: $(tail -1 "$work/$name-$c.err")"
    fi
    wait "$spid" 2>/dev/null || true
  done
}

# cold_report NAME TITLE NOTE
cold_report() {
  local name=$1 c
  echo "## HTTP cold, $2 (${SECS}s per server and concurrency)"
  echo
  echo "| server | conc | req/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---|---|---|---|---|"
  if [ -s "$work/$name.md" ]; then cat "$work/$name.md"; else echo "| n/a | n/a | n/a | n/a | n/a | n/a |"; fi
  echo
  echo "| conc | req/s sizer/sharp | req/s sizer/thumbor | sizer peak RSS |"
  echo "|---|---|---|---|"
  for c in 2 8; do
    awk -F'|' -v c="$c" -v rss="$(cat "$work/$name-rss-$c" 2>/dev/null || echo)" '
      { gsub(/ /, ""); } $3 == c { r[$2] = $4 + 0 }
      function q(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
      END { printf "| %s | %s | %s | %s |\n", c, q(r["sizer"], r["sharp"]), q(r["sizer"], r["thumbor"]),
            (rss > 0 ? sprintf("%.0f MiB", rss / 1024) : "n/a") }' "$work/$name.md"
  done
  echo
  echo "$3"
  echo
}

if have wrk && [ -n "$BENCH" ]; then
  for p in 8091 8092 "$SIZER_PORT"; do port_busy "$p" && log "port $p is busy: the peer on it will be skipped"; done
  cold_root=$work/cold-root; mkdir -p "$cold_root"
  for k in ${KEYS//,/ }; do cp "$IMAGES/$k" "$cold_root/"; done
  # Both workloads run through run-http.sh copied beside our own URL script, under cold-urls.lua's name
  # (shared/bench's cold-urls.lua repeats its (key, width) pairs after 300 requests a thread: see
  # bench/numbered-urls.lua).
  mkdir -p "$work/http-bench"
  cp "$BENCH/run-http.sh" "$BENCH/sharp-server.js" "$BENCH/thumbor.conf" "$work/http-bench/"
  cp "$here/numbered-urls.lua" "$work/http-bench/cold-urls.lua"
  http_cold cold "$cold_root" "$KEYS" srcset
  distinct_root=$work/distinct-root
  mkdir -p "$distinct_root"
  distinct_keys=()
  for i in $(seq -w 1 600); do
    for k in ${KEYS//,/ }; do ln "$cold_root/$k" "$distinct_root/d$i-$k"; distinct_keys+=("d$i-$k"); done
  done
  http_cold distinct "$distinct_root" "$(IFS=,; echo "${distinct_keys[*]}")" distinct
fi
{
  cold_report cold "srcset: 4 originals and widths 200–1399, every request a new variant (bench/numbered-urls.lua)" \
    "Each concurrency is a separate run-http.sh call with freshly started servers and an empty sizer variant store, so sizer never answers a repeated variant from a cache; widths of one original share its read and, per decode scale, its decode (cache.originals_max_bytes). Peak RSS: sizer's VmHWM over that run (it also holds cold variants in its memory tier). p50/p99 as wrk prints them."
  cold_report distinct "distinct originals: every request a different original (bench/numbered-urls.lua, 2400 names)" \
    "Nothing to share: every request reads and decodes its own original, so this is the cost of the shared-originals cache (a HEAD, an insert) when it cannot help."
} >>"$R"
fi

# --- 4. HTTP hot -----------------------------------------------------------------------------------------
# ROUNDS rounds, each nginx then sizer (one sizer process, warmed once): "round|server|req/s|p50|p99".
if want hot; then
parse_wrk() { awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "%s|%s|%s", r ? r : "n/a", p50 ? p50 : "n/a", p99 ? p99 : "n/a"}'; }
: >"$work/hot.rows"; hot_note=""; sizer_hot=0
if have wrk && [ -n "$BENCH" ]; then
  hot_root=$work/hot-root; mkdir -p "$hot_root"; cp "$W1_IN" "$hot_root/"
  hport=$(free_port)
  RUST_LOG=warn "$SIZER" serve --root "$hot_root" --listen "127.0.0.1:$hport" >"$work/hot-sizer.log" 2>&1 & hpid=$!; bg_pids+=("$hpid")
  url="http://127.0.0.1:$hport/w/600/$(basename "$W1_IN")"
  if wait_port "$hport"; then
    tier=""
    for _ in 1 2 3 4 5; do
      tier=$(curl -s -o "$work/hot-body.jpg" -D - "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="sizer-tier" {print $2}')
      [ "$tier" = memory ] && break
    done
    if [ "$tier" = memory ]; then
      sizer_hot=1
      cmp -s "$work/hot-body.jpg" "$W1_OUT" && same="byte-identical to" || same="differs from"
      hot_note="Warm-up reached sizer-tier: memory; the served variant ($(stat -c %s "$work/hot-body.jpg") bytes) is $same the \`sizer resize\` file nginx serves ($(stat -c %s "$W1_OUT") bytes)."
    else
      hot_note="Warm-up never got a memory hit (last sizer-tier: ${tier:-none}); sizer hot not measured."
    fi
  else
    hot_note="sizer did not start for the hot test: $(tail -1 "$work/hot-sizer.log")"
  fi
  for r in $(seq "$ROUNDS"); do
    if have nginx; then
      log "HTTP hot round $r/$ROUNDS: nginx static, ${SECS}s"
      if "$BENCH/nginx-hot.sh" "$W1_OUT" "$SECS" 32 >"$work/hot-nginx.txt" 2>"$work/hot-nginx.err"; then
        echo "$r|nginx static (nginx-hot.sh)|$(sed -nE 's/^nginx static: ([^ ]+) req\/s, p50 ([^,]+), p99 (.+)$/\1|\2|\3/p' "$work/hot-nginx.txt")" >>"$work/hot.rows"
      else
        log "nginx-hot.sh failed: $(tail -1 "$work/hot-nginx.err")"
      fi
    fi
    if [ $sizer_hot = 1 ]; then
      log "HTTP hot round $r/$ROUNDS: sizer memory tier, ${SECS}s"
      echo "$r|sizer memory tier|$(wrk -t 2 -c 32 -d "${SECS}s" --latency "$url" 2>&1 | parse_wrk)" >>"$work/hot.rows"
    fi
  done
  if [ $sizer_hot = 1 ]; then
    after=$(curl -s -o /dev/null -D - "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="sizer-tier" {print $2}')
    hot_note="$hot_note After the load tests the tier was still: ${after:-?}."
  fi
  kill_tree "$hpid"; wait "$hpid" 2>/dev/null || true
fi
{
  echo "## HTTP hot: the W1 600w JPEG, \`wrk -t 2 -c 32 -d ${SECS}s --latency\`, $ROUNDS alternating rounds"
  echo
  python3 - "$work/hot.rows" <<'PY'
import statistics, sys
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            try:
                return float(v[: -len(unit)]) * f
            except ValueError:
                return None
    return None
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.count("|") == 4]
print("| round | server | req/s | p50 | p99 |")
print("|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
med = {}
for name in dict.fromkeys(r[1] for r in rows):
    mine = [r for r in rows if r[1] == name]
    rps = [float(r[2]) for r in mine if r[2] != "n/a"]
    p99 = [x for x in (ms(r[4]) for r in mine) if x is not None]
    med[name] = (statistics.median(rps) if rps else None, statistics.median(p99) if p99 else None)
print()
print("| server | median req/s | median p99 ms |")
print("|---|---|---|")
for name, (rps, p99) in med.items():
    print(f"| {name} | {'n/a' if rps is None else f'{rps:.0f}'} | {'n/a' if p99 is None else f'{p99:.2f}'} |")
n = med.get("nginx static (nginx-hot.sh)", (None, None)); s = med.get("sizer memory tier", (None, None))
print()
if n[0] and s[0]:
    print(f"req/s sizer/nginx (medians): {s[0] / n[0]:.2f}; p99 sizer/nginx (medians): {s[1] / n[1]:.2f}" if n[1] and s[1]
          else f"req/s sizer/nginx (medians): {s[0] / n[0]:.2f}")
else:
    print("req/s sizer/nginx: n/a")
PY
  [ -n "$hot_note" ] && { echo; echo "$hot_note"; }
} >>"$R"
fi

# --- 5. Memory under attack ------------------------------------------------------------------------------
# Issue 15's attack (bench/memory-attack.py): incompressible 48 MB originals, 48 concurrent large variants,
# then six; sizer's default configuration. No peer has an admission budget to compare: the figures are
# sizer's own against its budget (peak RSS within budget + caches + 128 MiB) and its sequential throughput.
if want memory; then
  log "memory attack: 48 concurrent, then 6, then 6 with SIGTERM (about 2 minutes)"
  mem_work=${MEMORY_WORK:-/tmp/peers/memory-attack}
  {
    echo "## Memory under attack (issue 15): 4 noise JPEGs of 9000x7000 (47.6 MB), default configuration"
    echo
    echo "| load | result |"
    echo "|---|---|"
    for mode in 48 6 6term; do
      out=$(python3 "$here/memory-attack.py" "$SIZER" "$mem_work" "$mode" 2>>"$work/memory.err" || echo "n/a (see $work/memory.err)")
      echo "| $mode | \`$out\` |"
    done
  } >>"$R"
fi

# --- summary ---------------------------------------------------------------------------------------------
# The lines a regression shows in first.
{
  echo "## Summary"
  echo
  if [ -s "$work/sweep.md" ] && grep -q '^SWEEP ' "$work/sweep.md"; then
    echo "- quality floor (worst SSIM gap to sharp, at equal output size; floor −0.005): \`$(grep '^SWEEP ' "$work/sweep.md" | sed 's/^SWEEP //')\`"
  else
    echo "- quality floor: n/a (the sweep did not run)"
  fi
} >>"$R"

cp "$R" "$REPORT" 2>/dev/null && log "report also saved to $REPORT"
cat "$R"
