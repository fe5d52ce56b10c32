//! One row of `bench/workloads.json` as a pipeline [`Job`], shared by `benches/pipeline.rs` and
//! `examples/engine_table.rs` so both measure exactly what `bench/sharp-engine.js` asks of sharp.
//!
//! A row: `width`, `format`, and optionally `height`, `fit` (inside/cover/contain/fill), `position` (a
//! gravity, or sharp's `attention` = `smart`) and `quality` (absent or null: sizer's default 80).

use sizer::pipeline::{Fit, Format, Gravity, Job, OutputFormat, PngMode};

pub fn job_for(row: &serde_json::Value, png: PngMode) -> Job {
    let size = |k: &str| {
        row[k]
            .as_u64()
            .map(|v| u32::try_from(v).expect("a pixel size"))
    };
    let format = row["format"]
        .as_str()
        .and_then(Format::from_name)
        .expect("a known format");
    let mut job = Job::width(size("width").expect("width"));
    job.target.height = size("height");
    if let Some(fit) = row["fit"].as_str() {
        job.target.fit = Fit::from_name(fit).expect("a known fit");
    }
    if let Some(position) = row["position"].as_str() {
        let name = if position == "attention" {
            "smart"
        } else {
            position
        };
        job.target.gravity = Gravity::from_name(name).expect("a known position");
    }
    job.quality = row["quality"]
        .as_u64()
        .map_or(80, |q| u8::try_from(q).expect("quality 1-100"));
    job.png = png;
    job.format = OutputFormat::Fixed(format);
    job.max_pixels = 200_000_000;
    job
}
