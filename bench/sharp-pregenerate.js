// The sharp side of bench/compare.sh's pre-generation table: for each row of pregenerate.json, the CPU of
// the largest width alone, and of every width from one input with sharp's usual clone() pipelines
// (one sharp(input), a clone per width, awaited together), one thread, no cache, median over ITER runs.
//
// usage: node sharp-pregenerate.js ROWS_JSON IMAGES_DIR [ITER]      env: SHARP_DIR
const fs = require('fs'), path = require('path');
const sharp = require(process.env.SHARP_DIR ? path.join(process.env.SHARP_DIR, 'node_modules/sharp') : 'sharp');
sharp.cache(false); sharp.concurrency(1);
const rows = JSON.parse(fs.readFileSync(process.argv[2]));
const dir = process.argv[3], iter = +(process.argv[4] || 15);

async function cpuOf(f) {
  const cpus = []; let bytes = 0;
  for (let i = 0; i < iter + 2; i++) {
    const c0 = process.cpuUsage();
    bytes = await f();
    const c = process.cpuUsage(c0);
    if (i >= 2) cpus.push((c.user + c.system) / 1000);
  }
  cpus.sort((x, y) => x - y);
  return [cpus[cpus.length >> 1], bytes];
}

(async () => {
  console.log('| id | engine | largest alone cpu ms | all widths cpu ms | out bytes (all) |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    const input = fs.readFileSync(path.join(dir, r.in));
    const largest = Math.max(...r.widths);
    const [alone] = await cpuOf(async () =>
      (await sharp(input).resize({ width: largest }).toFormat(r.format, { quality: 80 }).toBuffer()).length);
    const [all, bytes] = await cpuOf(async () => {
      const base = sharp(input);
      const outs = await Promise.all(r.widths.map(w =>
        base.clone().resize({ width: w }).toFormat(r.format, { quality: 80 }).toBuffer()));
      return outs.reduce((n, b) => n + b.length, 0);
    });
    console.log(`| ${r.id} | sharp ${sharp.versions.sharp} / vips ${sharp.versions.vips} | ${alone.toFixed(1)} | ${all.toFixed(1)} | ${bytes} |`);
  }
})();
