#!/usr/bin/env bash
# Fetch the quality-sweep image corpus (see bench/CORPUS.md).
#
#   bench/corpus.sh [DIR]      DIR defaults to ${SIZER_CORPUS:-$HOME/.cache/sizer-corpus}
#
# Reads bench/corpus.tsv. For each row without `derived_from` it downloads the pinned
# Debian package (cached in DIR/debs), extracts `path_in_package` and checks its sha256.
# Rows with `derived_from` ("SOURCE: COMMAND") are made by running COMMAND in bash with
#   {src}     the source file: the corpus file SOURCE, or, for SOURCE=package-file, the
#             verified file extracted from the row's package (kept in DIR/src)
#   {out}     the output file (written to DIR/.tmp first, moved into place on success)
#   {outroot} {out} without its extension (for pdftoppm -singlefile)
#   {scans}   bench/corpus-scans
# and the helper sharp_mozjpeg (below; needs SHARP_DIR, skipped otherwise).
# Idempotent: verified originals and derived files whose command is unchanged are kept.
# Images are never committed to git: only this script, the manifest and the scan scripts are.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=$here/corpus.tsv
scans=$here/corpus-scans
dir=${1:-${SIZER_CORPUS:-$HOME/.cache/sizer-corpus}}
mkdir -p "$dir/debs" "$dir/src" "$dir/.stamps" "$dir/.tmp"
dir=$(cd "$dir" && pwd)

warn() { printf 'corpus: warning: %s\n' "$*" >&2; }
note() { printf 'corpus: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
is_root() { [ "$(id -u)" -eq 0 ]; }
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ] && is_root; then
    apt_updated=1
    note "apt-get update"
    apt-get update -qq >&2 || warn "apt-get update failed"
  fi
}
need() { # need CMD DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if is_root; then
    apt_update_once
    note "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 || warn "could not install $2"
  fi
  command -v "$1" >/dev/null 2>&1 || { warn "$1 missing (package $2); rows needing it are skipped"; return 1; }
}
for t in apt-get dpkg-deb tar sha256sum; do
  command -v "$t" >/dev/null 2>&1 || { echo "corpus: $t is required" >&2; exit 1; }
done
need jpegtran libjpeg-turbo-progs || true
need pngtopnm netpbm || true
need pdftoppm poppler-utils || true
need convert imagemagick || true  # the 2000 px web exports (.web2000.jpg)
# A `convert` first on PATH that is not ImageMagick (some machines have a stand-in) fails every web-export
# row: use ImageMagick's own, installing it when it is missing.
if command -v convert >/dev/null 2>&1 && ! convert -version 2>/dev/null | grep -q '^Version: ImageMagick'; then
  [ -x /usr/bin/convert ] || ! is_root || { apt_update_once; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick >&2 || true; }
  if /usr/bin/convert -version 2>/dev/null | grep -q '^Version: ImageMagick'; then
    note "the convert on PATH ($(command -v convert)) is not ImageMagick; using /usr/bin/convert"
    convert() { /usr/bin/convert "$@"; }
  else
    warn "the convert on PATH is not ImageMagick and none is installed; the web-export rows will fail"
  fi
fi
need python3 python3 || true   # only for the summary (JPEG marker parsing, stdlib only)

# sharp (libvips + mozjpeg), only if SHARP_DIR points at an install (dir holding
# node_modules/sharp, or the sharp package itself).
sharp_module=
if [ -n "${SHARP_DIR:-}" ]; then
  for m in "$SHARP_DIR/node_modules/sharp" "$SHARP_DIR"; do
    if [ -f "$m/package.json" ] && grep -q '"name": *"sharp"' "$m/package.json"; then sharp_module=$m; break; fi
  done
  [ -n "$sharp_module" ] || warn "SHARP_DIR=$SHARP_DIR holds no sharp install"
fi
sharp_mozjpeg() { # sharp_mozjpeg SRC OUT
  [ -n "$sharp_module" ] && command -v node >/dev/null 2>&1 || return 75
  SHARP_MODULE=$sharp_module node -e '
    const sharp = require(process.env.SHARP_MODULE);
    sharp(process.argv[1])
      .jpeg({ quality: 90, progressive: true, optimiseScans: true, mozjpeg: true })
      .toFile(process.argv[2])
      .catch((e) => { console.error(e.message); process.exit(1); });' "$1" "$2"
}

# ---------------------------------------------------------------- packages
deb_bytes=0
declare -A deb_for=()
fetch_deb() { # fetch_deb PKG VERSION -> sets $deb
  local pkg=$1 ver=$2 key="$1=$2" f
  deb=${deb_for[$key]:-}
  [ -n "$deb" ] && return 0
  f=$(compgen -G "$dir/debs/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
  if [ -z "$f" ]; then
    note "downloading $pkg=$ver"
    if ! (cd "$dir/debs" && apt-get download -q "$pkg=$ver" >&2 2>"$dir/.tmp/apt.err"); then
      apt_update_once
      if ! (cd "$dir/debs" && apt-get download -q "$pkg=$ver" >&2 2>"$dir/.tmp/apt.err"); then
        warn "$pkg=$ver is not available ($(tail -n1 "$dir/.tmp/apt.err")); falling back to the current version: sha256 checks may fail"
        (cd "$dir/debs" && apt-get download -q "$pkg" >&2) || { warn "cannot download $pkg"; return 1; }
        # shellcheck disable=SC2012 # .deb names have no odd characters
        f=$(ls -t "$dir/debs/${pkg}"_*.deb | head -n1)
      fi
    fi
    [ -n "$f" ] || f=$(compgen -G "$dir/debs/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
    [ -n "$f" ] || { warn "download of $pkg left no .deb"; return 1; }
  fi
  deb_for[$key]=$f
  deb=$f
}

# extract PKG VERSION PATH SHA256 DEST: verified copy of PATH from the package at DEST
extract() {
  local pkg=$1 ver=$2 path=$3 want=$4 dest=$5 tmp got
  if [ -f "$dest" ] && [ "$(sha256sum <"$dest" | cut -d' ' -f1)" = "$want" ]; then return 0; fi
  fetch_deb "$pkg" "$ver" || return 1
  tmp=$dir/.tmp/extract
  if ! dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$path" >"$tmp"; then
    warn "$path not found in $(basename "$deb")"; rm -f "$tmp"; return 1
  fi
  got=$(sha256sum <"$tmp" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    warn "sha256 mismatch for $pkg:$path (got $got, want $want); skipped"; rm -f "$tmp"; return 1
  fi
  mv -f "$tmp" "$dest"
}

# ---------------------------------------------------------------- rows
declare -a status_of=() names=()
made=0 kept=0 skipped=0
line_no=0
while IFS=$'\037' read -r -u 3 name pkg ver path sha _author _licence _content _encoding derived _half; do
  line_no=$((line_no + 1))
  [ "$line_no" -eq 1 ] && continue          # header
  [ -n "$name" ] || continue
  out=$dir/$name
  names+=("$name")
  if [ -z "$derived" ]; then
    if [ -f "$out" ] && [ "$(sha256sum <"$out" | cut -d' ' -f1)" = "$sha" ]; then
      status_of+=("kept"); kept=$((kept + 1)); continue
    fi
    if extract "$pkg" "$ver" "$path" "$sha" "$out"; then
      status_of+=("new"); made=$((made + 1))
    else
      status_of+=("SKIP"); skipped=$((skipped + 1))
    fi
    continue
  fi
  # derived row: "SOURCE: COMMAND"
  src_name=${derived%%: *}
  cmd=${derived#*: }
  stamp=$dir/.stamps/$name.cmd
  if [ -s "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$derived" ]; then
    status_of+=("kept"); kept=$((kept + 1)); continue
  fi
  if [ "$src_name" = package-file ]; then
    src=$dir/src/$pkg/$(basename "$path")
    mkdir -p "$dir/src/$pkg"
    if ! extract "$pkg" "$ver" "$path" "$sha" "$src"; then
      status_of+=("SKIP"); skipped=$((skipped + 1)); continue
    fi
  else
    src=$dir/$src_name
    if [ ! -s "$src" ]; then
      warn "$name: source $src_name missing; skipped"
      status_of+=("SKIP"); skipped=$((skipped + 1)); continue
    fi
  fi
  tmp=$dir/.tmp/$name
  rm -f "$tmp"
  run=${cmd//\{src\}/\"$src\"}
  run=${run//\{outroot\}/\"${tmp%.*}\"}
  run=${run//\{out\}/\"$tmp\"}
  run=${run//\{scans\}/\"$scans\"}
  rc=0
  (set -o pipefail; eval "$run") >&2 || rc=$?
  if [ "$rc" -eq 75 ]; then
    note "$name: skipped (set SHARP_DIR to a sharp install, e.g. SHARP_DIR=/tmp/peers/sharp)"
    status_of+=("SKIP(no sharp)"); skipped=$((skipped + 1)); rm -f "$tmp"; continue
  fi
  if [ "$rc" -ne 0 ] || [ ! -s "$tmp" ]; then
    warn "$name: command failed (rc=$rc): $cmd"
    status_of+=("SKIP"); skipped=$((skipped + 1)); rm -f "$tmp"; continue
  fi
  mv -f "$tmp" "$out"
  printf '%s' "$derived" >"$stamp"
  status_of+=("new"); made=$((made + 1))
done 3< <(tr '\t' '\037' <"$manifest")   # US separator: tabs would merge empty fields

# ---------------------------------------------------------------- summary
for f in "${deb_for[@]}"; do deb_bytes=$((deb_bytes + $(stat -c %s "$f"))); done
cache_bytes=$(du -sb "$dir/debs" | cut -f1)
describe() { # one line per file: NAME<TAB>WxH<TAB>MP<TAB>bytes<TAB>encoding
  python3 - "$dir" "$@" <<'PY'
import os, struct, sys
d = sys.argv[1]
def jpeg(b):
    i, sof, scans, comps = 2, None, 0, None
    while i + 4 <= len(b):
        if b[i] != 0xFF: i += 1; continue
        m = b[i + 1]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7 or m == 0xFF: i += 1 if m == 0xFF else 2; continue
        if m == 0xD9: break
        n = struct.unpack('>H', b[i + 2:i + 4])[0]
        seg = b[i + 4:i + 2 + n]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            sof = m; h, w = struct.unpack('>HH', seg[1:5]); nc = seg[5]
            comps = [(seg[6 + 3 * k + 1] >> 4, seg[6 + 3 * k + 1] & 15) for k in range(nc)]
        if m == 0xDA:
            scans += 1
            j = i + 2 + n
            while True:  # skip entropy-coded data up to the next real marker
                j = b.find(b'\xff', j)
                if j < 0 or j + 1 >= len(b): j = len(b); break
                nx = b[j + 1]
                if nx == 0 or nx == 0xFF or 0xD0 <= nx <= 0xD7: j += 1; continue
                break
            i = j
            continue
        i += 2 + n
    if sof is None: return None
    kind = {0xC0: 'baseline', 0xC1: 'extended', 0xC2: 'progressive'}.get(sof, 'SOF%x' % sof)
    if len(comps) == 1: samp = 'grey'
    else:
        (yh, yv), rest = comps[0], comps[1:]
        if all(c == (1, 1) for c in rest):
            samp = {(1, 1): '4:4:4', (2, 1): '4:2:2', (2, 2): '4:2:0', (1, 2): '4:4:0', (4, 1): '4:1:1'}.get((yh, yv), '%dx%d' % (yh, yv))
        else: samp = ','.join('%dx%d' % c for c in comps)
        if len(comps) == 4: samp += ' CMYK'
    return w, h, '%s %s, %d scan%s' % (kind, samp, scans, '' if scans == 1 else 's')
def png(b):
    w, h, depth, ct = struct.unpack('>IIBB', b[16:26])
    return w, h, 'PNG %s %d-bit' % ({0: 'grey', 2: 'RGB', 3: 'palette', 4: 'grey+alpha', 6: 'RGBA'}.get(ct, '?'), depth)
for name in sys.argv[2:]:
    p = os.path.join(d, name)
    if not os.path.isfile(p): print('%s\t-\t-\t-\t-' % name); continue
    b = open(p, 'rb').read()
    r = jpeg(b) if b[:2] == b'\xff\xd8' else png(b) if b[:8] == b'\x89PNG\r\n\x1a\n' else None
    w, h, enc = r if r else (0, 0, 'unknown')
    print('%s\t%dx%d\t%.1f\t%d\t%s' % (name, w, h, w * h / 1e6, len(b), enc))
PY
}
if command -v python3 >/dev/null 2>&1; then
  i=0
  while IFS=$'\t' read -r n wh mp bytes enc; do
    printf '%-15s %-44s %10s %5s MP %10s B  %s\n' "${status_of[$i]}" "$n" "$wh" "$mp" "$bytes" "$enc"
    i=$((i + 1))
  done < <(describe "${names[@]}")
else
  for i in "${!names[@]}"; do printf '%-15s %s\n' "${status_of[$i]}" "${names[$i]}"; done
fi
rm -rf "$dir/.tmp"
printf 'corpus: %d files in %s (%d new, %d kept, %d skipped); .debs opened this run: %d (%s MB); .deb cache: %s MB\n' \
  "${#names[@]}" "$dir" "$made" "$kept" "$skipped" "${#deb_for[@]}" \
  "$(awk -v b="$deb_bytes" 'BEGIN{printf "%.1f", b/1e6}')" "$(awk -v b="$cache_bytes" 'BEGIN{printf "%.1f", b/1e6}')"
