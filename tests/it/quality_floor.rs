//! The quality floor (issues 8 and 22), with the real binary against the real peer: at every width
//! scored, sizer's output is never more than 0.005 SSIM below sharp's at the same size, format and quality
//! (`bench/sweep.py`, which `bench/compare.sh` runs on the whole corpus of `bench/CORPUS.md`; this is its
//! short version). `scripts/test` installs sharp (npm) and the SSIM tools (PyPI) and names them in
//! `SHARP_DIR` and `SSIM_VENV`.
//!
//! The photos: a 2000 px progressive web export (the kind of upload that showed issue 22's stretch of
//! DCT-scaled decodes: up to 0.06 below sharp before it was fixed) and a camera-sized baseline one.
//! AVIF is swept too when sizer is built with libaom (the `aom` feature, as CI and the Dockerfile build
//! it); the plain build's rav1e is known to be below the floor at thumbnails (BENCHMARKS.md).

use std::process::Command;

#[test]
fn sizer_stays_within_the_floor_of_sharp_at_every_width() {
    let sharp = std::env::var_os("SHARP_DIR").expect(
        "SHARP_DIR is not set: run the suite through scripts/test, which installs sharp for this test",
    );
    let venv = std::env::var_os("SSIM_VENV").expect(
        "SSIM_VENV is not set: run the suite through scripts/test, which installs the SSIM tools",
    );
    let formats = if cfg!(feature = "aom") {
        "jpeg,webp,avif"
    } else {
        "jpeg,webp"
    };
    let out = Command::new("python3")
        .arg("bench/sweep.py")
        .arg("testdata/images")
        .arg(env!("CARGO_BIN_EXE_sizer"))
        .args(["--images", "eveningglow-2000x1250.jpg,path-2560x1600.jpg"])
        .args(["--formats", formats, "--step", "1.25", "--avif-step", "1.5"])
        .args(["--jobs", "2"])
        .args(["--fail-below", "-0.005"])
        .env("SHARP_DIR", sharp)
        .env("SSIM_VENV", venv)
        .output()
        .expect("python3 runs bench/sweep.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the floor does not hold:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Something was measured: both photos, every format.
    let summary = report
        .lines()
        .find(|l| l.starts_with("SWEEP "))
        .unwrap_or_default();
    let scored: u32 = summary
        .split_whitespace()
        .find_map(|f| f.strip_prefix("scored="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(scored >= 40, "too few widths scored ({scored}):\n{report}");
    if cfg!(feature = "aom") {
        assert!(
            summary.contains("bytes_avif="),
            "no AVIF measured:\n{report}"
        );
    }
}
