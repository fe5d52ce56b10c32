//! Re-expresses an sRGB image in Display P3 and writes it as a JPEG carrying the P3 ICC profile, as a
//! phone camera would: how `testdata/images/path-p3-2560x1600.jpg` (the colour-conversion bench row) was
//! made from `path-2560x1600.jpg`.
//!
//! usage: cargo run --release --example to_display_p3 -- IN OUT [QUALITY]
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool: a bad argument ends it.

use moxcms::{ColorProfile, Layout, TransformOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: to_display_p3 IN OUT [QUALITY]");
        std::process::exit(2);
    }
    let quality: u8 = args.get(3).and_then(|q| q.parse().ok()).unwrap_or(90);
    let image = image::open(&args[1]).expect("a readable image").to_rgb8();
    let (width, height) = image.dimensions();
    let p3 = ColorProfile::new_display_p3();
    let transform = ColorProfile::new_srgb()
        .create_transform_8bit(Layout::Rgb, &p3, Layout::Rgb, TransformOptions::default())
        .expect("sRGB to P3");
    let mut out = vec![0; image.as_raw().len()];
    transform
        .transform(image.as_raw(), &mut out)
        .expect("transform");
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .add_icc_profile(&p3.encode().expect("a P3 profile"))
        .expect("profile fits");
    encoder
        .encode(
            &out,
            u16::try_from(width).expect("JPEG size"),
            u16::try_from(height).expect("JPEG size"),
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encode");
    std::fs::write(&args[2], jpeg).expect("write");
}
