//! Criterion benches of the whole pipeline (probe → decode → resize → orient → encode), in process, one
//! thread, on the workloads of `bench/workloads.json`, the same file `bench/compare.sh` and the peers use;
//! inputs from `testdata/images`. Both are in the repository. A row's "quality" is honoured as
//! `examples/engine_table.rs` honours it (absent or null: sizer's default 80), and so are its "height",
//! "fit" and "position".
//!
//! `cargo bench --bench pipeline`. Side-by-side ratios against the peers come from `bench/compare.sh`.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use sizer::pipeline::{self, Format, PngMode};

mod support {
    pub mod workload;
}
use support::workload;

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workloads(c: &mut Criterion) {
    // The engine as `sizer serve` runs it: freed buffers are reused, not mapped anew per image.
    sizer::allocator::retain_freed_memory();
    let repo = repo_dir();
    let list = repo.join("bench/workloads.json");
    let text = std::fs::read(&list).expect("bench/workloads.json is in the repository");
    let workloads: serde_json::Value =
        serde_json::from_slice(&text).expect("workloads.json is JSON");
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    for w in workloads.as_array().expect("workloads.json is a list") {
        let (id, input) = (w["id"].as_str().expect("id"), w["in"].as_str().expect("in"));
        let width = w["width"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .expect("width");
        let format = w["format"]
            .as_str()
            .and_then(Format::from_name)
            .expect("a known format");
        let src = std::fs::read(repo.join("testdata/images").join(input)).expect("workload input");
        // PNG workloads run in both PNG modes; palette is the one comparable with sharp's "quality 80".
        let modes: &[(PngMode, &str)] = if format == Format::Png {
            &[
                (PngMode::Palette, "_palette"),
                (PngMode::Lossless, "_lossless"),
            ]
        } else {
            &[(PngMode::Lossless, "")]
        };
        for &(png, suffix) in modes {
            let job = workload::job_for(w, png);
            group.bench_function(format!("{id}_{input}_{width}w_{format:?}{suffix}"), |b| {
                b.iter(|| pipeline::process(&src, &job).expect("workload processes"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
