use crate::pipeline::InputFormat;
use std::borrow::Cow;

use ::gif::{DisposalMethod, Repeat};
use image::AnimationDecoder;

use super::*;
use crate::pipeline::{OutputFormat, process};

const RED: [u8; 4] = [220, 30, 30, 255];
const GREEN: [u8; 4] = [30, 200, 40, 255];
const BLUE: [u8; 4] = [20, 40, 230, 255];
const GREY: [u8; 4] = [128, 128, 128, 255];
const CLEAR: [u8; 4] = [0, 0, 0, 0];

/// A frame of a test GIF: a rectangle of one palette index (0 is transparent), how it is disposed of, its
/// delay in hundredths.
struct Part {
    rect: (u16, u16, u16, u16),
    index: u8,
    dispose: DisposalMethod,
    delay: u16,
}

/// A GIF from indexed parts over a global palette: 0 transparent, 1 red, 2 green, 3 blue, 4 grey.
fn gif_of(size: (u16, u16), repeat: Option<Repeat>, parts: &[Part]) -> Vec<u8> {
    let palette: Vec<u8> = [CLEAR, RED, GREEN, BLUE, GREY]
        .iter()
        .flat_map(|c| [c[0], c[1], c[2]])
        .chain([0; 9])
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = ::gif::Encoder::new(&mut out, size.0, size.1, &palette).unwrap();
        if let Some(repeat) = repeat {
            encoder.set_repeat(repeat).unwrap();
        }
        for part in parts {
            let (left, top, width, height) = part.rect;
            let frame = ::gif::Frame {
                left,
                top,
                width,
                height,
                delay: part.delay,
                dispose: part.dispose,
                transparent: Some(0),
                buffer: Cow::Owned(vec![part.index; usize::from(width) * usize::from(height)]),
                ..::gif::Frame::default()
            };
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}

fn part(rect: (u16, u16, u16, u16), index: u8, dispose: DisposalMethod, delay: u16) -> Part {
    Part {
        rect,
        index,
        dispose,
        delay,
    }
}

/// A 40x20 grey GIF with a 10x10 square that moves right and changes colour: four frames, delays
/// 10/20/30/40 hundredths, played three times.
fn moving_square() -> Vec<u8> {
    let mut parts = vec![part((0, 0, 40, 20), 4, DisposalMethod::Keep, 10)];
    for (i, colour) in [1u8, 2, 3].into_iter().enumerate() {
        let x = 10 * i as u16 + 5;
        parts.push(part(
            (x, 5, 10, 10),
            colour,
            DisposalMethod::Previous,
            10 * (i as u16 + 2),
        ));
    }
    gif_of((40, 20), Some(Repeat::Finite(2)), &parts)
}

/// Frames as `image` (an independent compositor) shows them: RGBA, with delays in ms.
fn shown_gif(bytes: &[u8]) -> Vec<(image::RgbaImage, u32)> {
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    decoder
        .into_frames()
        .map(|f| {
            let f = f.unwrap();
            let (n, d) = f.delay().numer_denom_ms();
            let delay = n / d;
            (f.into_buffer(), delay)
        })
        .collect()
}

/// Frames (RGBA, delay in ms), loop count and size of an animated WebP.
type ShownWebP = (Vec<(Vec<u8>, u32)>, image_webp::LoopCount, (u32, u32));

fn shown_webp(bytes: &[u8]) -> ShownWebP {
    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(decoder.is_animated());
    let mut frames = Vec::new();
    let len = decoder.output_buffer_size().unwrap();
    for _ in 0..decoder.num_frames() {
        let mut buf = vec![0; len];
        let delay = decoder.read_frame(&mut buf).unwrap();
        if !decoder.has_alpha() {
            buf = buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
        }
        frames.push((buf, delay));
    }
    (frames, decoder.loop_count(), decoder.dimensions())
}

fn near(a: &[u8], b: [u8; 4], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

fn at(rgba: &[u8], width: u32, x: u32, y: u32) -> &[u8] {
    let i = ((y * width + x) * 4) as usize;
    &rgba[i..i + 4]
}

#[test]
fn gifs_are_animated_from_their_second_frame() {
    let one = gif_of(
        (8, 4),
        None,
        &[part((0, 0, 8, 4), 1, DisposalMethod::Keep, 10)],
    );
    assert!(!is_animated(InputFormat::Gif, &one));
    assert!(is_animated(InputFormat::Gif, &moving_square()));
    assert_eq!(gif_frames(&moving_square(), 100), 4);
    assert_eq!(gif_frames(&moving_square(), 2), 2);
}

#[test]
fn truncated_or_junk_input_is_not_animated_and_never_panics() {
    let full = moving_square();
    for end in 0..full.len() {
        let _ = is_animated(InputFormat::Gif, &full[..end]);
        let _ = frame_count(InputFormat::WebP, &full[..end], 10);
    }
    assert!(!is_animated(InputFormat::Gif, b"GIF89a"));
    assert!(!is_animated(InputFormat::WebP, b"RIFF\0\0\0\0WEBPVP8 "));
    // A VP8X header with the animation flag counts its ANMF chunks.
    let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02\0\0\0\0\0\0\0\0\0".to_vec();
    for _ in 0..2 {
        vp8x.extend_from_slice(b"ANMF\x01\0\0\0\0\0");
    }
    assert!(is_animated(InputFormat::WebP, &vp8x));
    assert_eq!(frame_count(InputFormat::WebP, &vp8x, 10), 2);
    vp8x[20] = 0x10;
    assert!(!is_animated(InputFormat::WebP, &vp8x));
    // A chunk size running past the end stops the count.
    let mut huge = vp8x.clone();
    huge[20] = 0x02;
    huge[34..38].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(frame_count(InputFormat::WebP, &huge, 10), 1);
}

#[test]
fn gif_frames_are_composited_with_each_disposal_as_browsers_show_them() {
    let bytes = gif_of(
        (8, 8),
        None,
        &[
            part((0, 0, 8, 8), 1, DisposalMethod::Keep, 10),
            part((2, 2, 4, 4), 2, DisposalMethod::Previous, 10),
            part((0, 0, 4, 4), 3, DisposalMethod::Background, 10),
            part((6, 6, 2, 2), 2, DisposalMethod::Keep, 10),
        ],
    );
    let mut frames = gif_codec::GifFrames::open(&bytes, (8, 8)).unwrap();
    let mut ours = Vec::new();
    while let Some(frame) = frames.next().unwrap() {
        ours.push(frame.pixels.data);
    }
    assert_eq!(ours.len(), 4);
    // Frame 2 is drawn after frame 1's square was taken away again (Previous).
    assert!(near(at(&ours[2], 8, 3, 3), BLUE, 0));
    assert!(near(at(&ours[2], 8, 5, 5), RED, 0));
    // Frame 3 is drawn after frame 2's rectangle was cleared (Background): transparent there.
    assert_eq!(at(&ours[3], 8, 1, 1), CLEAR);
    assert!(near(at(&ours[3], 8, 5, 5), RED, 0));
    assert!(near(at(&ours[3], 8, 7, 7), GREEN, 0));
    // The same as `image`'s own compositor, pixel for pixel.
    let theirs = shown_gif(&bytes);
    for (i, (a, (b, _))) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b.as_raw(), "frame {i}");
    }
}

#[test]
fn frames_off_the_screen_are_clipped_away_and_never_panic() {
    // Found by fuzzing (fuzz/corpus/gif/regression-offscreen-frame.gif): a frame placed right of the
    // screen, disposed of to the background, indexed past the canvas.
    for dispose in [
        DisposalMethod::Keep,
        DisposalMethod::Background,
        DisposalMethod::Previous,
    ] {
        let bytes = gif_of(
            (8, 8),
            None,
            &[
                part((0, 0, 8, 8), 1, DisposalMethod::Keep, 10),
                part((1500, 2, 4, 4), 2, dispose, 10),
                part((2, 300, 4, 4), 3, dispose, 10),
                part((6, 6, 4, 4), 2, dispose, 10),
            ],
        );
        let mut frames = gif_codec::GifFrames::open(&bytes, (8, 8)).unwrap();
        let mut shown = Vec::new();
        while let Some(frame) = frames.next().unwrap() {
            shown.push(frame.pixels.data);
        }
        assert_eq!(shown.len(), 4);
        // The frames off the screen draw nothing; the last one is clipped to its 2x2 corner.
        assert_eq!(shown[1], shown[0]);
        assert_eq!(shown[2], shown[0]);
        assert!(near(at(&shown[3], 8, 7, 7), GREEN, 0));
        assert!(near(at(&shown[3], 8, 5, 5), RED, 0));
        let out = process(&bytes, &Job::width(4)).unwrap();
        assert_eq!((out.format, out.width, out.height), (Format::Gif, 4, 4));
    }
}

#[test]
fn an_animated_gif_is_resized_frame_by_frame_with_its_delays_and_loop_count() {
    let out = process(&moving_square(), &Job::width(20)).unwrap();
    assert_eq!((out.format, out.width, out.height), (Format::Gif, 20, 10));
    let decoder = ::gif::DecodeOptions::new()
        .read_info(out.bytes.as_slice())
        .unwrap();
    let mut decoder = decoder;
    let mut rects = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        rects.push((frame.width, frame.height));
    }
    assert_eq!(decoder.repeat(), Repeat::Finite(2), "played three times");
    // After the first, each frame is the rectangle that changed, not the whole canvas.
    assert_eq!(rects[0], (20, 10));
    assert!(
        rects[1..].iter().all(|&(w, h)| w * h < 20 * 10),
        "{rects:?}"
    );
    let shown = shown_gif(&out.bytes);
    let delays: Vec<u32> = shown.iter().map(|(_, d)| *d).collect();
    assert_eq!(delays, [100, 200, 300, 400]);
    for (i, colour) in [RED, GREEN, BLUE].into_iter().enumerate() {
        let (frame, _) = &shown[i + 1];
        // The square's centre, at half scale; the square of the frame before is gone.
        let x = (10 * i as u32 + 10) / 2;
        assert!(near(&frame.get_pixel(x, 5).0, colour, 24), "frame {i}");
        if i > 0 {
            let before = (10 * (i as u32 - 1) + 10) / 2 - 2;
            assert!(near(&frame.get_pixel(before, 5).0, GREY, 24), "frame {i}");
        }
    }
}

#[test]
fn gif_converts_to_animated_webp_and_back() {
    let mut job = Job::width(20);
    job.format = OutputFormat::Fixed(Format::WebP);
    let webp = process(&moving_square(), &job).unwrap();
    assert_eq!(
        (webp.format, webp.width, webp.height),
        (Format::WebP, 20, 10)
    );
    let (frames, looping, size) = shown_webp(&webp.bytes);
    assert_eq!(size, (20, 10));
    assert_eq!(looping, image_webp::LoopCount::Times(3.try_into().unwrap()));
    let delays: Vec<u32> = frames.iter().map(|(_, d)| *d).collect();
    assert_eq!(delays, [100, 200, 300, 400]);
    assert!(near(at(&frames[2].0, 20, 10, 5), GREEN, 40));

    // Back: the animated WebP as an original, to GIF and to WebP.
    job.format = OutputFormat::Fixed(Format::Gif);
    let gif = process(&webp.bytes, &job).unwrap();
    let shown = shown_gif(&gif.bytes);
    assert_eq!(shown.len(), 4);
    assert!(near(&shown[3].0.get_pixel(15, 5).0, BLUE, 48));
    job.format = OutputFormat::Original;
    job.target.width = Some(10);
    let smaller = process(&webp.bytes, &job).unwrap();
    let (frames, looping, size) = shown_webp(&smaller.bytes);
    assert_eq!((frames.len(), size), (4, (10, 5)));
    assert_eq!(looping, image_webp::LoopCount::Times(3.try_into().unwrap()));
}

#[test]
fn frames_of_no_duration_are_written_as_browsers_show_them() {
    let bytes = gif_of(
        (8, 8),
        Some(Repeat::Infinite),
        &[
            part((0, 0, 8, 8), 1, DisposalMethod::Keep, 0),
            part((0, 0, 8, 8), 2, DisposalMethod::Keep, 0),
        ],
    );
    let mut job = Job::width(4);
    let gif = process(&bytes, &job).unwrap();
    let mut decoder = ::gif::DecodeOptions::new()
        .read_info(gif.bytes.as_slice())
        .unwrap();
    decoder.read_next_frame().unwrap();
    assert_eq!(decoder.repeat(), Repeat::Infinite);
    assert_eq!(shown_gif(&gif.bytes)[1].1, 0, "GIF keeps its own delays");
    job.format = OutputFormat::Fixed(Format::WebP);
    let (frames, looping, _) = shown_webp(&process(&bytes, &job).unwrap().bytes);
    assert_eq!(looping, image_webp::LoopCount::Forever);
    assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [100, 100]);
}

#[test]
fn pixels_that_turn_transparent_do_so() {
    // A red left half, then a blue right half alone, then the red half alone again.
    let bytes = gif_of(
        (16, 16),
        None,
        &[
            part((0, 0, 8, 16), 1, DisposalMethod::Background, 10),
            part((8, 0, 8, 16), 3, DisposalMethod::Background, 10),
            part((0, 0, 8, 16), 1, DisposalMethod::Background, 10),
        ],
    );
    for format in [Format::Gif, Format::WebP] {
        let mut job = Job::width(8);
        job.format = OutputFormat::Fixed(format);
        let out = process(&bytes, &job).unwrap();
        let frames: Vec<Vec<u8>> = match format {
            Format::Gif => shown_gif(&out.bytes)
                .into_iter()
                .map(|(f, _)| f.into_raw())
                .collect(),
            _ => shown_webp(&out.bytes).0.into_iter().map(|f| f.0).collect(),
        };
        assert_eq!(frames.len(), 3, "{format:?}");
        // Opaque or transparent (lossy WebP alpha is within a step or two).
        let alpha = |f: &Vec<u8>, x| at(f, 8, x, 4)[3] > 128;
        assert_eq!(
            (alpha(&frames[0], 1), alpha(&frames[0], 6)),
            (true, false),
            "{format:?}"
        );
        assert_eq!(
            (alpha(&frames[1], 1), alpha(&frames[1], 6)),
            (false, true),
            "{format:?}"
        );
        assert_eq!(
            (alpha(&frames[2], 1), alpha(&frames[2], 6)),
            (true, false),
            "{format:?}"
        );
    }
}

#[test]
fn caps_are_checked_before_decoding() {
    let bytes = moving_square();
    let mut job = Job::width(20);
    job.animation.max_frames = 3;
    assert_eq!(
        process(&bytes, &job).unwrap_err(),
        PipelineError::TooManyFrames { limit: 3 }
    );
    job.animation.max_frames = 4;
    job.animation.max_pixels = 40 * 20 * 4 - 1;
    assert_eq!(
        process(&bytes, &job).unwrap_err(),
        PipelineError::AnimationTooLarge {
            frames: 4,
            pixels: 3200,
            limit: 3199
        }
    );
    job.animation.max_pixels = 40 * 20 * 4;
    assert!(process(&bytes, &job).is_ok());
}

#[test]
fn the_first_frame_alone_when_asked_or_when_the_format_cannot_animate() {
    let bytes = moving_square();
    let mut job = Job::width(20);
    job.animation.animate = false;
    let still = process(&bytes, &job).unwrap();
    assert_eq!(still.format, Format::Gif);
    assert!(!is_animated(InputFormat::Gif, &still.bytes));
    job.animation.animate = true;
    for format in [Format::Png, Format::Jpeg] {
        job.format = OutputFormat::Fixed(format);
        let out = process(&bytes, &job).unwrap();
        assert_eq!(out.format, format);
        let first = image::load_from_memory(&out.bytes).unwrap().to_rgba8();
        assert!(near(&first.get_pixel(10, 5).0, GREY, 24));
    }
}

#[test]
fn a_truncated_animation_is_refused_not_cut_short() {
    let bytes = moving_square();
    let cut = &bytes[..bytes.len() - 12];
    assert!(is_animated(InputFormat::Gif, cut));
    assert!(matches!(
        process(cut, &Job::width(20)),
        Err(PipelineError::Undecodable(_))
    ));
}

#[test]
fn a_smart_crop_keeps_one_region_for_every_frame() {
    let mut job = Job::width(10);
    job.target.height = Some(10);
    job.target.fit = crate::pipeline::Fit::Cover;
    job.target.gravity = crate::pipeline::Gravity::Smart;
    let out = process(&moving_square(), &job).unwrap();
    assert_eq!((out.width, out.height), (10, 10));
    assert_eq!(shown_gif(&out.bytes).len(), 4);
}

#[test]
fn an_animated_webp_keeps_its_profile_and_credits_when_asked_and_is_converted_otherwise() {
    use crate::pipeline::encode::{Carried, tag_webp};
    use crate::pipeline::metadata::{Credits, credits, exif_block};
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let credited = Credits {
        artist: Some("A. Artist".into()),
        copyright: Some("(c) 2026 A. Artist".into()),
    };
    // The moving square as an animated WebP, tagged Display P3, with the credits.
    let source = {
        let mut job = Job::width(40);
        job.format = OutputFormat::Fixed(Format::WebP);
        let webp = process(&moving_square(), &job).unwrap().bytes;
        let exif = exif_block(&credited).unwrap();
        tag_webp(
            webp,
            Carried {
                profile: Some(&p3),
                exif: Some(&exif),
            },
        )
        .unwrap()
    };
    let icc_of = |bytes: &[u8]| {
        image_webp::WebPDecoder::new(std::io::Cursor::new(bytes))
            .unwrap()
            .icc_profile()
            .unwrap()
    };
    assert_eq!(icc_of(&source).as_deref(), Some(p3.as_slice()));
    let green_of = |bytes: &[u8]| {
        let (frames, _, size) = shown_webp(bytes);
        assert_eq!((frames.len(), size), (4, (20, 10)), "every frame, resized");
        at(&frames[2].0, 20, 10, 5).to_vec()
    };

    let mut job = Job::width(20);
    job.keep_profile = true;
    job.keep_credits = true;
    let kept = process(&source, &job).unwrap();
    assert_eq!(icc_of(&kept.bytes).as_deref(), Some(p3.as_slice()));
    assert_eq!(credits(&kept.bytes), Some(credited));
    let kept_green = green_of(&kept.bytes);
    assert!(
        near(&kept_green, GREEN, 40),
        "the P3 numbers as they were: {kept_green:?}"
    );

    // By default: converted to sRGB, untagged, no metadata. P3's green lies outside sRGB, so the numbers
    // move.
    let converted = process(&source, &Job::width(20)).unwrap();
    assert_eq!(icc_of(&converted.bytes), None);
    assert_eq!(credits(&converted.bytes), None);
    let converted_green = green_of(&converted.bytes);
    let moved = kept_green
        .iter()
        .zip(&converted_green)
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    assert!(
        moved >= Some(20),
        "converted {converted_green:?} against kept {kept_green:?}"
    );
}
