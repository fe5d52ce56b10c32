use super::*;
use crate::pipeline::Format;
use crate::pipeline::{Job, encode, process};

fn p3_profile() -> Vec<u8> {
    ColorProfile::new_display_p3().encode().unwrap()
}

/// sRGB pixels re-expressed in Display P3 (what a phone's camera writes for the same scene).
fn srgb_to_p3(rgb: &[u8]) -> Vec<u8> {
    let t = ColorProfile::new_srgb()
        .create_transform_8bit(
            CmsLayout::Rgb,
            &ColorProfile::new_display_p3(),
            CmsLayout::Rgb,
            TransformOptions::default(),
        )
        .unwrap();
    let mut out = vec![0; rgb.len()];
    t.transform(rgb, &mut out).unwrap();
    out
}

/// A smooth, saturated test image: every pixel differs between sRGB and P3 encodings.
fn srgb_image(width: u32, height: u32) -> Pixels {
    let data = (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                (60 + x * 180 / width) as u8,
                (200 - y * 150 / height) as u8,
                (40 + (x + y) * 60 / (width + height)) as u8,
            ]
        })
        .collect();
    Pixels {
        width,
        height,
        layout: Layout::Rgb,
        data,
    }
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn display_p3_pixels_come_back_to_their_srgb_values() {
    let srgb = srgb_image(64, 48);
    let mut p3 = Pixels {
        data: srgb_to_p3(&srgb.data),
        ..srgb.clone()
    };
    assert!(max_diff(&p3.data, &srgb.data) > 10, "the encodings differ");
    assert!(to_srgb(&mut p3, &p3_profile()));
    assert!(
        max_diff(&p3.data, &srgb.data) <= 2,
        "{}",
        max_diff(&p3.data, &srgb.data)
    );
}

#[test]
fn alpha_is_carried_through_untouched() {
    let mut pixels = Pixels {
        width: 2,
        height: 1,
        layout: Layout::Rgba,
        data: vec![200, 60, 40, 17, 30, 180, 90, 250],
    };
    assert!(to_srgb(&mut pixels, &p3_profile()));
    assert_eq!((pixels.data[3], pixels.data[7]), (17, 250));
}

#[test]
fn srgb_grey_and_unusable_profiles_change_nothing() {
    let srgb_profile = ColorProfile::new_srgb().encode().unwrap();
    let original = srgb_image(8, 8);
    for profile in [srgb_profile.as_slice(), b"not a profile", &[]] {
        let mut pixels = original.clone();
        assert!(!to_srgb(&mut pixels, profile));
        assert_eq!(pixels.data, original.data);
    }
    let mut grey = Pixels {
        width: 2,
        height: 1,
        layout: Layout::Gray,
        data: vec![10, 200],
    };
    assert!(!to_srgb(&mut grey, &p3_profile()));
    assert_eq!(grey.data, [10, 200]);
}

/// A JPEG of `pixels` carrying `profile` in APP2 chunks (jpeg-encoder splits it as the spec says).
fn tagged_jpeg(pixels: &Pixels, profile: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder.add_icc_profile(profile).unwrap();
    encoder
        .encode(
            &pixels.data,
            pixels.width as u16,
            pixels.height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

#[test]
fn jpeg_profiles_are_reassembled_from_their_chunks_in_order() {
    let pixels = srgb_image(16, 16);
    // Large enough for three APP2 chunks.
    let profile: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let jpeg = tagged_jpeg(&pixels, &profile);
    assert_eq!(jpeg_profile(&jpeg).as_deref(), Some(profile.as_slice()));
    // Chunks stored out of order still join by their sequence numbers.
    let segments = app2_segments(&jpeg);
    assert_eq!(segments.len(), 3);
    let mut swapped = jpeg[..segments[0].0].to_vec();
    swapped.extend_from_slice(&jpeg[segments[1].0..segments[1].1]);
    swapped.extend_from_slice(&jpeg[segments[0].0..segments[0].1]);
    swapped.extend_from_slice(&jpeg[segments[2].0..]);
    assert_eq!(jpeg_profile(&swapped).as_deref(), Some(profile.as_slice()));
    // A missing chunk: no profile rather than a wrong one.
    let mut missing = jpeg[..segments[1].0].to_vec();
    missing.extend_from_slice(&jpeg[segments[1].1..]);
    assert_eq!(jpeg_profile(&missing), None);
}

/// (start, end) of each APP2 segment.
fn app2_segments(jpeg: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if jpeg[at + 1] == 0xE2 {
            found.push((at, at + 2 + len));
        }
        at += 2 + len;
    }
    found
}

#[test]
fn png_and_webp_profiles_are_found_and_bombs_are_not_inflated() {
    let pixels = srgb_image(16, 16);
    let profile = p3_profile();
    let mut png = Vec::new();
    {
        let mut info = png::Info::with_size(16, 16);
        info.color_type = png::ColorType::Rgb;
        info.bit_depth = png::BitDepth::Eight;
        info.icc_profile = Some(profile.clone().into());
        let mut writer = png::Encoder::with_info(&mut png, info)
            .unwrap()
            .write_header()
            .unwrap();
        writer.write_image_data(&pixels.data).unwrap();
    }
    assert_eq!(png_profile(&png).as_deref(), Some(profile.as_slice()));

    // An iCCP chunk inflating to far more than any profile: ignored, not inflated.
    let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 64 << 20], 10);
    let mut chunk = b"icc\0\0".to_vec();
    chunk.extend_from_slice(&bomb);
    let mut bombed = png[..33].to_vec(); // signature + IHDR
    bombed.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    bombed.extend_from_slice(b"iCCP");
    bombed.extend_from_slice(&chunk);
    bombed.extend_from_slice(&[0; 4]); // CRC, unchecked here
    bombed.extend_from_slice(&png[33..]);
    assert_eq!(png_profile(&bombed), None);

    // A WebP with an ICCP chunk (odd length: padded), found by walking the RIFF chunks.
    let odd: Vec<u8> = profile.iter().copied().chain([7]).collect();
    let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
    webp.extend_from_slice(&10u32.to_le_bytes());
    webp.extend_from_slice(&[0x20, 0, 0, 0, 15, 0, 0, 15, 0, 0]);
    webp.extend_from_slice(b"ICCP");
    webp.extend_from_slice(&(odd.len() as u32).to_le_bytes());
    webp.extend_from_slice(&odd);
    webp.push(0);
    webp.extend_from_slice(b"VP8 \0\0\0\0");
    assert_eq!(webp_profile(&webp).as_deref(), Some(odd.as_slice()));
    // Cut inside a chunk: nothing, and no panic.
    for cut in 0..webp.len() {
        let _ = webp_profile(&webp[..cut]);
        let _ = png_profile(&png[..cut.min(png.len())]);
    }
}

#[test]
fn a_p3_jpeg_through_the_pipeline_matches_its_srgb_original() {
    let srgb = srgb_image(320, 240);
    let tagged = tagged_jpeg(
        &Pixels {
            data: srgb_to_p3(&srgb.data),
            ..srgb.clone()
        },
        &p3_profile(),
    );
    let untagged =
        encode::encode(&srgb, Format::Jpeg, 95, crate::pipeline::PngMode::Lossless).unwrap();
    let job = Job::width(160);
    let from_p3 = image::load_from_memory(&process(&tagged, &job).unwrap().bytes)
        .unwrap()
        .to_rgb8();
    let from_srgb = image::load_from_memory(&process(&untagged, &job).unwrap().bytes)
        .unwrap()
        .to_rgb8();
    let mean = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    };
    let diff = mean(from_p3.as_raw(), from_srgb.as_raw());
    assert!(diff < 2.0, "mean difference {diff}");
    // Read as if it were sRGB (the old behaviour), the same file is visibly off.
    let stripped = strip_app2(&tagged);
    let as_is = image::load_from_memory(&process(&stripped, &job).unwrap().bytes)
        .unwrap()
        .to_rgb8();
    assert!(mean(as_is.as_raw(), from_srgb.as_raw()) > 5.0);
}

fn strip_app2(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    for (start, end) in app2_segments(jpeg) {
        out.extend_from_slice(&jpeg[at..start]);
        at = end;
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

#[test]
fn keeping_the_profile_embeds_it_where_the_format_can_and_converts_elsewhere() {
    let srgb = srgb_image(320, 240);
    let p3 = Pixels {
        data: srgb_to_p3(&srgb.data),
        ..srgb.clone()
    };
    let profile = p3_profile();
    let tagged = tagged_jpeg(&p3, &profile);
    let mut job = Job::width(160);
    job.keep_profile = true;
    let decode = |bytes: &[u8]| image::load_from_memory(bytes).unwrap().to_rgb8().into_raw();
    // What the P3 numbers look like at 160 wide, untouched, and what sRGB looks like.
    let p3_small = decode(
        &process(&strip_app2(&tagged), &Job::width(160))
            .unwrap()
            .bytes,
    );
    let srgb_small = decode(&process(&tagged, &Job::width(160)).unwrap().bytes);
    let mean = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    };
    for format in [Format::Jpeg, Format::Png, Format::WebP] {
        job.format = crate::pipeline::OutputFormat::Fixed(format);
        let out = process(&tagged, &job).unwrap().bytes;
        assert_eq!(
            embedded_profile(format.into(), &out).as_deref(),
            Some(profile.as_slice()),
            "{format:?} carries the profile"
        );
        let kept = decode(&out);
        assert!(
            mean(&kept, &p3_small) < 3.0,
            "{format:?}: the P3 numbers are kept"
        );
    }
    for format in [Format::Gif, Format::Avif] {
        job.format = crate::pipeline::OutputFormat::Fixed(format);
        let out = process(&tagged, &job).unwrap().bytes;
        assert_eq!(embedded_profile(format.into(), &out), None);
        if format == Format::Gif {
            // GIF cannot carry it: converted to sRGB instead (palette quantisation adds its own error).
            let gif = decode(&out);
            assert!(
                mean(&gif, &srgb_small) < mean(&gif, &p3_small),
                "{format:?}"
            );
        }
    }
}
