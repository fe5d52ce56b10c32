use std::panic::catch_unwind;

use mozjpeg::Decompress;

use super::jpeg::*;
use super::webp::*;
use super::*;
use crate::pipeline::{Format, InputFormat, Layout};

/// A progressive JPEG of a smooth gradient, through libjpeg's own encoder.
fn progressive_jpeg(width: usize, height: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..width * height)
        .flat_map(|i| {
            [
                (i % width * 255 / width) as u8,
                (i / width * 255 / height) as u8,
                90,
            ]
        })
        .collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(width, height);
    compress.set_quality(85.0);
    compress.set_progressive_mode();
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&data).unwrap();
    started.finish().unwrap()
}

fn full_scan_decode_at_eighth(src: &[u8]) -> Vec<u8> {
    let mut d = Decompress::with_err(strict_error_mgr())
        .from_mem(src)
        .unwrap();
    d.scale(1);
    let mut s = d.rgb().unwrap();
    let v: Vec<u8> = s.read_scanlines().unwrap();
    s.finish().unwrap();
    v
}

#[test]
fn progressive_dc_only_matches_a_full_decode_at_an_eighth() {
    let src = progressive_jpeg(640, 480);
    let info = crate::pipeline::probe::probe(&src).unwrap();
    let fast = catch_unwind(|| progressive_dc_only(&src, &info))
        .unwrap()
        .unwrap()
        .expect("progressive");
    assert_eq!(
        (fast.width, fast.height, fast.layout),
        (80, 60, Layout::Rgb)
    );
    let reference = full_scan_decode_at_eighth(&src);
    let worst = fast
        .data
        .iter()
        .zip(&reference)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= 6,
        "DC-only output differs from the full decode by up to {worst}"
    );
}

#[test]
fn progressive_dc_only_leaves_baseline_files_alone() {
    let baseline = crate::pipeline::flat_image(Format::Jpeg, 64, 64, 100);
    let info = crate::pipeline::probe::probe(&baseline).unwrap();
    assert!(
        catch_unwind(|| progressive_dc_only(&baseline, &info))
            .unwrap()
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_ac_scans_are_not_read_at_an_eighth() {
    // Cut in the AC scans: the full-scan decoder reports the truncation, the DC-only path never gets there.
    let src = progressive_jpeg(640, 480);
    let cut = &src[..src.len() * 6 / 10];
    let info = crate::pipeline::probe::probe(&src).unwrap();
    assert!(catch_unwind(|| full_scan_decode_at_eighth(cut)).is_err());
    let fast = catch_unwind(|| progressive_dc_only(cut, &info))
        .unwrap()
        .unwrap()
        .expect("progressive");
    assert_eq!((fast.width, fast.height), (80, 60));
}

#[test]
fn decode_takes_the_dc_only_path_for_progressive_thumbnails() {
    // Through the public entry point: a file cut in its AC scans still decodes at 1/8 ...
    let src = progressive_jpeg(640, 480);
    let cut = &src[..src.len() * 6 / 10];
    let info = crate::pipeline::probe::probe(&src).unwrap();
    // (A 64x48 target: with the headroom, 1/8 = 80x60 is the scale that covers it.)
    assert_eq!(
        decode(cut, &info, scale_for(&info, 64, 48), None)
            .unwrap()
            .width,
        80
    );
    // ... and is refused as soon as a larger scale needs the AC coefficients it lacks.
    assert!(matches!(
        decode(cut, &info, scale_for(&info, 160, 120), None),
        Err(PipelineError::Undecodable(_))
    ));
}

#[test]
fn progressive_file_cut_before_its_dc_scan_ends_is_undecodable() {
    let src = progressive_jpeg(640, 480);
    let info = crate::pipeline::probe::probe(&src).unwrap();
    // Keep the headers and a sliver of the first scan only.
    let cut = &src[..src.len() / 20];
    assert!(matches!(
        decode(cut, &info, scale_for(&info, 80, 60), None),
        Err(PipelineError::Undecodable(_))
    ));
}

/// A baseline JPEG of a gradient.
fn baseline_jpeg(width: usize, height: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..width * height)
        .flat_map(|i| [(i % width * 255 / width) as u8, 120, (i / width) as u8])
        .collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(width, height);
    compress.set_quality(85.0);
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&data).unwrap();
    started.finish().unwrap()
}

/// The offset of the first occurrence of marker `m` (0xFF m).
fn marker_at(jpeg: &[u8], m: u8) -> usize {
    jpeg.windows(2).position(|w| w == [0xFF, m]).unwrap()
}

#[test]
fn stray_bytes_between_segments_are_served_but_missing_data_is_not() {
    let src = baseline_jpeg(320, 240);
    let info = crate::pipeline::probe::probe(&src).unwrap();
    let decodes = |bytes: &[u8]| decode(bytes, &info, Scale::Eighths(8), None);
    // Padding before the quantisation tables and before the end marker, as cameras write it.
    let mut padded = src.clone();
    let eoi = padded.len() - 2;
    padded.splice(eoi..eoi, [0u8, 0, 0, 0x17]);
    let dqt = marker_at(&padded, 0xDB);
    padded.splice(dqt..dqt, [0u8; 5]);
    let pixels = decodes(&padded).expect("complete but oddly framed data is served");
    assert_eq!((pixels.width, pixels.height), (320, 240));
    assert_eq!(pixels.data, decodes(&src).unwrap().data, "same pixels");
    // Missing data stays an error: the scan cut short, or its entropy-coded data damaged.
    assert!(matches!(
        decodes(&src[..src.len() * 3 / 4]),
        Err(PipelineError::Undecodable(_))
    ));
    let mut damaged = src.clone();
    let sos = marker_at(&damaged, 0xDA);
    for b in &mut damaged[sos + 40..sos + 400] {
        *b ^= 0xFF;
    }
    assert!(matches!(
        decodes(&damaged),
        Err(PipelineError::Undecodable(_))
    ));
}

#[test]
fn webp_decodes_at_twice_the_target_or_full_size() {
    assert_eq!(webp_decode_size(2056, 3088, 600, 901), (1200, 1802));
    assert_eq!(webp_decode_size(1000, 500, 600, 300), (1000, 500));
}

#[test]
fn truncated_webp_is_undecodable() {
    let bytes = crate::pipeline::flat_image(Format::WebP, 64, 64, 120);
    let info = crate::pipeline::probe::probe(&bytes).unwrap();
    assert_eq!(
        decode(&bytes, &info, scale_for(&info, 32, 32), None)
            .unwrap()
            .width,
        64
    );
    let cut = &bytes[..bytes.len() / 2];
    assert!(matches!(
        decode(cut, &info, scale_for(&info, 32, 32), None),
        Err(PipelineError::Undecodable(_))
    ));
}

#[test]
fn a_decoder_reading_another_size_than_the_probe_decodes_nothing() {
    // Every decoder checks the size it reads against the one the limits were checked on.
    let progressive = progressive_jpeg(64, 48);
    for format in [Format::Jpeg, Format::Png, Format::WebP, Format::Gif] {
        let small = crate::pipeline::flat_image(format, 64, 48, 90);
        for src in [&small, &progressive] {
            if crate::pipeline::probe::probe(src).unwrap().format != format.into() {
                continue;
            }
            let mut info = crate::pipeline::probe::probe(src).unwrap();
            assert!(decode(src, &info, scale_for(&info, 8, 6), None).is_ok());
            info.width = 16;
            info.height = 12;
            for scale in [scale_for(&info, 2, 2), Scale::Full] {
                assert!(
                    matches!(decode(src, &info, scale, None), Err(PipelineError::Undecodable(m)) if m.contains("16x12")),
                    "{format:?} at {scale}"
                );
            }
        }
    }
}

#[test]
fn content_scale_is_the_dct_scale_not_the_rounded_size() {
    let jpeg = ImageInfo {
        format: InputFormat::Jpeg,
        width: 2000,
        alpha: false,
        height: 1250,
        orientation: crate::pipeline::orient::Orientation::Normal,
    };
    // 1/4: 500x313 decoded, of which 312.5 rows are picture.
    assert_eq!(content_scale(&jpeg, 500, 313), (0.25, 0.25));
    assert_eq!(content_scale(&jpeg, 250, 157), (0.125, 0.125));
    assert_eq!(content_scale(&jpeg, 2000, 1250), (1.0, 1.0));
    // Not a DCT scale of this image: the ratio of the sizes.
    assert_eq!(content_scale(&jpeg, 1000, 500), (0.5, 0.4));
    let webp = ImageInfo {
        format: InputFormat::WebP,
        ..jpeg
    };
    assert_eq!(content_scale(&webp, 500, 313), (0.25, 313.0 / 1250.0));
    // Under 8 px on both sides the scaled sizes repeat (4 at 7/8 and 8/8): the ratio, as before.
    let tiny = ImageInfo {
        width: 4,
        height: 4,
        ..jpeg
    };
    assert_eq!(content_scale(&tiny, 4, 4), (1.0, 1.0));
    // One side of 8 px or more is enough to tell the scales apart.
    let strip = ImageInfo {
        width: 4,
        height: 16,
        ..jpeg
    };
    assert_eq!(content_scale(&strip, 4, 14), (0.875, 0.875));
}

#[test]
fn scale_is_the_smallest_that_covers_the_target() {
    // 6028x3391 -> 600 wide: 1/8 gives 754x424, enough.
    assert_eq!(jpeg_scale_numerator(6028, 3391, 600, 338), 1);
    // 3264x2448 -> 900 wide: needs 1350 above 1/8; 3/8 gives 1224, too small; 4/8 gives 1632.
    assert_eq!(jpeg_scale_numerator(3264, 2448, 900, 675), 4);
    // 4224x3168 -> 1600: needs 2400; 4/8 gives 2112, too small; 5/8 gives 2640.
    assert_eq!(jpeg_scale_numerator(4224, 3168, 1600, 1200), 5);
    // Same size or larger: full decode.
    assert_eq!(jpeg_scale_numerator(100, 100, 100, 100), 8);
    assert_eq!(jpeg_scale_numerator(100, 100, 200, 200), 8);
    // Headroom: 639 wide from 2560 is not decoded at 1/4 (640) but at 3/8 (960).
    assert_eq!(jpeg_scale_numerator(2560, 1600, 639, 400), 3);
}
