//! The engine side of `bench/compare.sh`: runs the shared workloads through sizer's pipeline in process,
//! one thread, and prints the same table as `../shared/bench/sharp-engine.js` (median wall and CPU ms,
//! output bytes). Outputs are written to `OUT_DIR/out-sizer-W*.{jpg,webp,png}` for the SSIM check.
//!
//! usage: cargo run --release --example engine_table -- WORKLOADS_JSON IMAGES_DIR [ITER] [OUT_DIR]
//! env:   PNG=lossless (default palette, see below), ONLY=W4,W6 (a subset of the workloads)
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool: a bad argument ends it.

use std::time::Instant;

use sizer::pipeline::{self, Format, PngMode};

#[path = "../benches/support/measure.rs"]
mod measure;
#[path = "../benches/support/workload.rs"]
mod workload;

use measure::{cpu_ms, median};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: engine_table WORKLOADS_JSON IMAGES_DIR [ITER] [OUT_DIR]");
        std::process::exit(2);
    }
    let workloads: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&args[1]).expect("workloads file"))
            .expect("workloads JSON");
    let dir = std::path::PathBuf::from(&args[2]);
    let iter: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(15);
    let out_dir = std::path::PathBuf::from(args.get(4).map_or("/tmp/peers", String::as_str));
    std::fs::create_dir_all(&out_dir).expect("output dir");
    // The engine as `sizer serve` runs it: freed buffers are reused, not mapped anew per image.
    sizer::allocator::retain_freed_memory();
    // sharp-engine.js passes quality 80 to PNG as well, which makes sharp write a palette PNG; the
    // like-for-like default is therefore sizer's palette mode. PNG=lossless measures the other mode.
    let png_mode = match std::env::var("PNG").as_deref() {
        Ok("lossless") => PngMode::Lossless,
        _ => PngMode::Palette,
    };

    println!("| id | engine | wall ms (median) | cpu ms (median) | out bytes |");
    println!("|---|---|---|---|---|");
    // ONLY=W4,W6 runs just those workloads.
    let only = std::env::var("ONLY").ok();
    for w in workloads.as_array().expect("a list of workloads") {
        let id = w["id"].as_str().expect("id");
        if only
            .as_deref()
            .is_some_and(|ids| !ids.split(',').any(|o| o == id))
        {
            continue;
        }
        let input = std::fs::read(dir.join(w["in"].as_str().expect("in"))).expect("input image");
        let format =
            Format::from_name(w["format"].as_str().expect("format")).expect("a known format");
        let job = workload::job_for(w, png_mode);
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        let mut out = None;
        for i in 0..iter + 2 {
            let (c0, t0) = (cpu_ms(), Instant::now());
            let encoded = pipeline::process(&input, &job).expect("workload processes");
            let (wall, cpu) = (t0.elapsed().as_secs_f64() * 1000.0, cpu_ms() - c0);
            if i >= 2 {
                walls.push(wall);
                cpus.push(cpu);
            }
            out = Some(encoded.bytes);
        }
        let out = out.expect("at least one run");
        std::fs::write(
            out_dir.join(format!("out-sizer-{id}.{}", format.extension())),
            &out,
        )
        .expect("write output");
        println!(
            "| {id} | sizer {} | {:.1} | {:.1} | {} |",
            env!("CARGO_PKG_VERSION"),
            median(walls),
            median(cpus),
            out.len()
        );
    }
}
