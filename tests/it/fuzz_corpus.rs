//! The fuzz targets' checks (`fuzz/src/checks.rs`, compiled here as well, so an API change that breaks
//! them fails `cargo test` rather than the next fuzz run) over their seed corpora, without cargo-fuzz: every
//! seed parses or decodes with every property the targets assert.

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

/// Every file of `fuzz/corpus/<dir>`.
fn seeds(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(dir);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a readable seed");
            (path.display().to_string(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} has seeds", dir.display());
    seeds
}

#[test]
fn every_url_seed_keeps_the_url_targets_properties() {
    for (_, bytes) in seeds("url") {
        checks::url(&bytes);
    }
}

#[test]
fn every_image_seed_keeps_the_pipeline_targets_properties() {
    for (dir, format) in [
        ("jpeg", sizer::pipeline::InputFormat::Jpeg),
        ("png", sizer::pipeline::InputFormat::Png),
        ("webp", sizer::pipeline::InputFormat::WebP),
        ("gif", sizer::pipeline::InputFormat::Gif),
    ] {
        for (name, bytes) in seeds(dir) {
            assert!(
                checks::pipeline(&bytes, Some(format)),
                "{name} is a {format:?} seed"
            );
        }
    }
    // The pipeline target's seeds of the formats sizer only reads.
    for (name, bytes) in seeds("other") {
        let format = sizer::pipeline::InputFormat::sniff(&bytes);
        assert!(
            format.is_some_and(|f| f.output().is_none()),
            "{name} is a seed of a read-only format: {format:?}"
        );
        checks::pipeline(&bytes, None);
    }
}
