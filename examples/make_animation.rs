//! Makes the animated-GIF workload of `bench/compare.sh` (W13, W14) from a photo of `testdata/images`: a
//! camera pan across it, `FRAMES` frames of 480x270 (a typical short clip turned GIF), 40 ms each,
//! looping forever. Every frame moves, so nothing is free for frame differencing: the hard case. Frames
//! are quantised by the `gif` crate's own NeuQuant, not by sizer's code.
//!
//! usage: cargo run --release --example make_animation -- PHOTO OUTPUT.gif [FRAMES]
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark tool: a bad argument ends it.

use std::borrow::Cow;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: make_animation PHOTO OUTPUT.gif [FRAMES]");
        std::process::exit(2);
    }
    let frames: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let photo = image::open(&args[1]).expect("a photo").to_rgba8();
    // The pan covers a 1280-wide view of the photo.
    let scale = 1280.0 / f64::from(photo.width());
    let view = image::imageops::resize(
        &photo,
        1280,
        (f64::from(photo.height()) * scale).round() as u32,
        image::imageops::FilterType::Triangle,
    );
    let (w, h) = (480u32, 270u32);
    let (span_x, span_y) = (view.width() - w, view.height() - h);
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w as u16, h as u16, &[]).expect("encoder");
        encoder.set_repeat(gif::Repeat::Infinite).expect("repeat");
        for i in 0..frames {
            let t = f64::from(i) / f64::from(frames.max(2) - 1);
            let (x, y) = (
                (t * f64::from(span_x)).round() as u32,
                (t * f64::from(span_y) / 2.0).round() as u32,
            );
            let mut rgba = image::imageops::crop_imm(&view, x, y, w, h)
                .to_image()
                .into_raw();
            let mut frame = gif::Frame::from_rgba_speed(w as u16, h as u16, &mut rgba, 10);
            frame.delay = 4;
            frame.buffer = Cow::Owned(frame.buffer.into_owned());
            encoder.write_frame(&frame).expect("a frame");
        }
    }
    std::fs::write(&args[2], &out).expect("write the GIF");
    eprintln!(
        "{}: {frames} frames of {w}x{h}, {} bytes",
        args[2],
        out.len()
    );
}
