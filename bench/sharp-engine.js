// The peer side of bench/compare.sh's engine table: per-image cost of sharp (libvips), one thread, no cache,
// on the workloads of bench/workloads.json, printed as the same markdown table examples/engine_table.rs prints.
//
// usage: node sharp-engine.js IMAGES_DIR [ITER]
// env:   WORKLOADS (default: workloads.json beside this file), SHARP_DIR (a directory with node_modules/sharp),
//        OUT_DIR (default /tmp/peers; outputs land there as out-sharp-<id>.<ext> for the SSIM check),
//        ONLY=W7,W8 (a subset of the workloads)
//
// A workload row: {"id", "in", "width", "format"} and optionally "height", "fit" (sharp's cover/contain/
// fill/inside), "position" (a sharp gravity, or "attention"), "quality" (default 80; null: sharp's own
// default for the format), "animated" (true: every frame of an animated input).
const fs = require('fs'), path = require('path');
const sharp = require(process.env.SHARP_DIR ? path.join(process.env.SHARP_DIR, 'node_modules/sharp') : 'sharp');
sharp.cache(false); sharp.concurrency(1);
const dir = process.argv[2], iter = +(process.argv[3] || 15);
const outDir = process.env.OUT_DIR || '/tmp/peers';
fs.mkdirSync(outDir, { recursive: true });
const work = JSON.parse(fs.readFileSync(process.env.WORKLOADS || path.join(__dirname, 'workloads.json')));
const only = process.env.ONLY ? process.env.ONLY.split(',') : null;
const ext = f => (f === 'jpeg' ? 'jpg' : f);

function pipeline(input, w) {
  const resize = { width: w.width };
  if (w.height) resize.height = w.height;
  if (w.fit) resize.fit = w.fit;
  if (w.position) resize.position = w.position;
  const options = w.quality === null ? {} : { quality: w.quality === undefined ? 80 : w.quality };
  // animated: every frame (sharp's default reads the first only).
  return sharp(input, w.animated ? { animated: true } : {}).resize(resize).toFormat(w.format, options).toBuffer();
}

(async () => {
  console.log('| id | engine | wall ms (median) | cpu ms (median) | out bytes |');
  console.log('|---|---|---|---|---|');
  for (const w of work) {
    if (only && !only.includes(w.id)) continue;
    let input;
    try {
      input = fs.readFileSync(path.join(dir, w.in));
      await pipeline(input, w);
    } catch (e) {
      // An input this build of sharp cannot read (its prebuilt libvips has no JPEG XL): no row.
      console.error(`${w.id}: ${e.message}`);
      continue;
    }
    const walls = [], cpus = [];
    let out;
    for (let i = 0; i < iter + 2; i++) {
      const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      out = await pipeline(input, w);
      const t = Number(process.hrtime.bigint() - t0) / 1e6, c = process.cpuUsage(c0);
      if (i >= 2) { walls.push(t); cpus.push((c.user + c.system) / 1000); }
    }
    const med = a => a.sort((x, y) => x - y)[a.length >> 1].toFixed(1);
    fs.writeFileSync(path.join(outDir, `out-sharp-${w.id}.${ext(w.format)}`), out);
    console.log(`| ${w.id} | sharp ${sharp.versions.sharp} / vips ${sharp.versions.vips} | ${med(walls)} | ${med(cpus)} | ${out.length} |`);
  }
})();
