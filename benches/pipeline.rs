//! Criterion benches of the whole pipeline (probe → decode → resize → orient → encode), in process, one
//! thread, on the workloads of `bench/workloads.json`, the same file `bench/compare.sh` and the peers use;
//! inputs from `testdata/images`. Both are in the repository. A row's "quality" is honoured as
//! `examples/engine_table.rs` honours it (absent or null: sizer's default 80), and so are its "height",
//! "fit" and "position".
//!
//! `cargo bench --bench pipeline`. Side-by-side ratios against the peers come from `bench/compare.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test crate: a panic is a failed test.

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

/// `g/smart`'s placement alone, on a 4000x3000 decoded original of noise (no structure to shortcut),
/// per layout: it must stay a few milliseconds beside a decode that costs tens.
fn saliency(c: &mut Criterion) {
    use sizer::pipeline::saliency::attention_offset;
    use sizer::pipeline::{Layout, Pixels};
    let mut group = c.benchmark_group("saliency");
    group.sample_size(20);
    let mut state = 3u64;
    for layout in [Layout::Rgb, Layout::Rgba, Layout::Gray] {
        let data = (0..4000 * 3000 * layout.channels())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        let image = Pixels {
            width: 4000,
            height: 3000,
            layout,
            data,
        };
        group.bench_function(format!("4000x3000_{layout:?}_crop1200"), |b| {
            b.iter(|| attention_offset(std::hint::black_box(&image), 1200, 1200))
        });
    }
    group.finish();
}

/// An upload event's work: every width of a `bench/pregenerate.json` row from one decode, beside the
/// largest width alone (issue 9's goal: at most 1.3x).
fn pregenerate(c: &mut Criterion) {
    use sizer::pipeline::{Job, OutputFormat};
    let repo = repo_dir();
    let rows: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.join("bench/pregenerate.json")).expect("bench/pregenerate.json"),
    )
    .expect("pregenerate.json is JSON");
    let mut group = c.benchmark_group("pregenerate");
    group.sample_size(20);
    for row in rows.as_array().expect("a list") {
        let (id, input) = (
            row["id"].as_str().expect("id"),
            row["in"].as_str().expect("in"),
        );
        let src = std::fs::read(repo.join("testdata/images").join(input)).expect("row input");
        let jobs: Vec<Job> = row["widths"]
            .as_array()
            .expect("widths")
            .iter()
            .map(|w| {
                let mut job = Job::width(u32::try_from(w.as_u64().expect("width")).expect("px"));
                job.format = OutputFormat::Fixed(Format::Jpeg);
                job.max_pixels = 200_000_000;
                job
            })
            .collect();
        let largest = jobs.iter().max_by_key(|j| j.target.width).expect("a width");
        group.bench_function(format!("{id}_{input}_largest_alone"), |b| {
            b.iter(|| pipeline::process(&src, largest).expect("row processes"))
        });
        group.bench_function(format!("{id}_{input}_all_widths"), |b| {
            b.iter(|| pipeline::process_many(&src, &jobs).expect("row processes"))
        });
    }
    group.finish();
}

criterion_group!(benches, workloads, saliency, pregenerate);
criterion_main!(benches);
