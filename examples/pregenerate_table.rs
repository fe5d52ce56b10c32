//! The sizer side of `bench/compare.sh`'s pre-generation table: for each row of `bench/pregenerate.json`,
//! the CPU of making the largest width alone, and of making every width from one decode
//! (`pipeline::process_many`, what an upload event does), one thread, median over ITER runs.
//!
//! usage: cargo run --release --example pregenerate_table -- ROWS_JSON IMAGES_DIR [ITER]
//! prints: | id | engine | largest alone cpu ms | all widths cpu ms | out bytes (all) |
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool: a bad argument ends it.

use std::time::Instant;

use sizer::pipeline::{self, Format, Job, OutputFormat};

#[path = "../benches/support/measure.rs"]
mod measure;

use measure::{cpu_ms, median};

fn cpu_of(iter: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let (mut cpus, mut bytes) = (Vec::new(), 0);
    for i in 0..iter + 2 {
        let (c0, _t0) = (cpu_ms(), Instant::now());
        bytes = f();
        if i >= 2 {
            cpus.push(cpu_ms() - c0);
        }
    }
    (median(cpus), bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: pregenerate_table ROWS_JSON IMAGES_DIR [ITER]");
        std::process::exit(2);
    }
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&args[1]).expect("rows file")).expect("rows JSON");
    let dir = std::path::PathBuf::from(&args[2]);
    let iter: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(15);
    sizer::allocator::retain_freed_memory();
    println!("| id | engine | largest alone cpu ms | all widths cpu ms | out bytes (all) |");
    println!("|---|---|---|---|---|");
    for row in rows.as_array().expect("a list of rows") {
        let id = row["id"].as_str().expect("id");
        let input = std::fs::read(dir.join(row["in"].as_str().expect("in"))).expect("input image");
        let format =
            Format::from_name(row["format"].as_str().expect("format")).expect("a known format");
        let jobs: Vec<Job> = row["widths"]
            .as_array()
            .expect("widths")
            .iter()
            .map(|w| {
                let mut job = Job::width(u32::try_from(w.as_u64().expect("a width")).expect("px"));
                job.format = OutputFormat::Fixed(format);
                job.max_pixels = 200_000_000;
                job
            })
            .collect();
        let largest = jobs
            .iter()
            .max_by_key(|j| j.target.width)
            .expect("a width")
            .clone();
        let (alone, _) = cpu_of(iter, || {
            pipeline::process(&input, &largest)
                .expect("row processes")
                .bytes
                .len()
        });
        let (all, bytes) = cpu_of(iter, || {
            pipeline::process_many(&input, &jobs)
                .expect("row processes")
                .into_iter()
                .map(|r| r.expect("every width").bytes.len())
                .sum()
        });
        println!(
            "| {id} | sizer {} | {alone:.1} | {all:.1} | {bytes} |",
            env!("CARGO_PKG_VERSION")
        );
    }
}
