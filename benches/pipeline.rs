//! Criterion benches of the whole pipeline (probe → decode → resize → orient → encode), in process, one
//! thread, on the shared workloads W1-W6 (`../shared/bench/workloads.json`, inputs from
//! `../shared/testdata/images`; `SIZER_BENCH_IMAGES` points elsewhere).
//!
//! `cargo bench --bench pipeline`. Side-by-side ratios against the peers come from `bench/compare.sh`.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use sizer::pipeline::{self, Format, Job};

struct Workload {
    id: &'static str,
    input: &'static str,
    width: u32,
    format: Format,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        id: "W1",
        input: "kleiber-6028x3391.jpg",
        width: 600,
        format: Format::Jpeg,
    },
    Workload {
        id: "W2",
        input: "kleiber-6028x3391.jpg",
        width: 300,
        format: Format::WebP,
    },
    Workload {
        id: "W3",
        input: "picos-3264x2448.jpg",
        width: 900,
        format: Format::Jpeg,
    },
    Workload {
        id: "W4",
        input: "goldfish-alpha-3640x2400.png",
        width: 300,
        format: Format::Png,
    },
    Workload {
        id: "W5",
        input: "dragonfly-4224x3168.jpg",
        width: 1600,
        format: Format::Jpeg,
    },
    Workload {
        id: "W6",
        input: "friends.webp",
        width: 600,
        format: Format::WebP,
    },
];

fn images_dir() -> PathBuf {
    std::env::var_os("SIZER_BENCH_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/images")
        })
}

fn workloads(c: &mut Criterion) {
    let dir = images_dir();
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    for w in WORKLOADS {
        let path = dir.join(w.input);
        let Ok(src) = std::fs::read(&path) else {
            eprintln!(
                "skipping {}: {} not readable (set SIZER_BENCH_IMAGES)",
                w.id,
                path.display()
            );
            continue;
        };
        let job = Job {
            width: w.width,
            quality: 80,
            format: Some(w.format),
            allow_upscale: false,
            max_pixels: 100_000_000,
            deadline: None,
        };
        group.bench_function(
            format!("{}_{}_{}w_{:?}", w.id, w.input, w.width, w.format),
            |b| b.iter(|| pipeline::process(&src, &job).expect("workload processes")),
        );
    }
    group.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
