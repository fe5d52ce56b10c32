#!/usr/bin/env python3
"""The seed's way in bench/compare.sh's pre-generation table: ImageMagick's `convert`, one process and one
full decode per width, as the original Lambda ran it. CPU of the child processes (user + sys), median over
ITER runs, same table shape as examples/pregenerate_table.rs.

usage: imagemagick-pregenerate.py ROWS_JSON IMAGES_DIR [ITER]     env: CONVERT (default /usr/bin/convert)
"""
import json, os, resource, statistics, subprocess, sys, tempfile

rows = json.load(open(sys.argv[1]))
images, iters = sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 15
convert = os.environ.get("CONVERT", "/usr/bin/convert")
version = subprocess.run([convert, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
version = " ".join(version.split()[1:3]) if version else "?"


def cpu_of(commands):
    cpus, size = [], 0
    for i in range(iters + 2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for command in commands:
            subprocess.run(command, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i >= 2:
            cpus.append(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000)
        size = sum(os.path.getsize(c[-1]) for c in commands)
    return statistics.median(cpus), size


print("| id | engine | largest alone cpu ms | all widths cpu ms | out bytes (all) |")
print("|---|---|---|---|---|")
with tempfile.TemporaryDirectory() as out:
    for row in rows:
        src = os.path.join(images, row["in"])
        ext = "jpg" if row["format"] == "jpeg" else row["format"]
        command = lambda w: [convert, src, "-resize", f"{w}x", "-quality", "80", os.path.join(out, f"{row['id']}-{w}.{ext}")]
        alone, _ = cpu_of([command(max(row["widths"]))])
        every, size = cpu_of([command(w) for w in row["widths"]])
        print(f"| {row['id']} | {version} | {alone:.1f} | {every:.1f} | {size} |")
