//! JPEG output through libjpeg (mozjpeg's library, already linked for decoding) in its libjpeg-turbo
//! mode: baseline, 4:2:0, the IJG quality scale and Annex K tables, and Huffman tables optimised for
//! each image (a second pass over the coefficients, every decoder reads them). That is what sharp writes
//! by default, and its bytes: the pure-Rust encoder used before wrote the standard tables, 9–11 % more
//! bytes at the same quality and SSIM (issue 22).

use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, Compress, Marker};

use super::Carried;
use crate::pipeline::{Layout, PipelineError, Pixels, canvas, decode};

/// Bytes of ICC profile one APP2 segment carries (65,533 less the 14-byte `ICC_PROFILE` header).
const ICC_CHUNK: usize = 65_519;

pub(super) fn encode(
    pixels: &Pixels,
    quality: u8,
    carried: Carried<'_>,
) -> Result<Vec<u8>, PipelineError> {
    let rgb;
    let (space, data) = match pixels.layout {
        Layout::Gray => (ColorSpace::JCS_GRAYSCALE, pixels.data.as_slice()),
        Layout::Rgb => (ColorSpace::JCS_RGB, pixels.data.as_slice()),
        // JPEG has no alpha: composite on white.
        Layout::Rgba => {
            rgb = canvas::blend_onto(&pixels.data, canvas::Rgb::WHITE);
            (ColorSpace::JCS_RGB, rgb.as_slice())
        }
    };
    if pixels.width > u32::from(u16::MAX) || pixels.height > u32::from(u16::MAX) {
        return Err(PipelineError::Encode(format!(
            "jpeg: {}x{} is beyond JPEG's 65535-pixel limit",
            pixels.width, pixels.height
        )));
    }
    let icc = carried.profile.map(icc_segments).transpose()?;
    // libjpeg reports errors by unwinding out of the C code (the mozjpeg crate's contract).
    let written = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut compress = Compress::new(space);
        compress.set_fastest_defaults();
        compress.set_size(pixels.width as usize, pixels.height as usize);
        compress.set_quality(f32::from(quality));
        compress.set_optimize_coding(true);
        if space == ColorSpace::JCS_RGB {
            // Chroma at half resolution both ways (4:2:0), luma at full.
            compress.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        }
        let mut started = compress.start_compress(Vec::with_capacity(data.len() / 8))?;
        for segment in icc.iter().flatten() {
            started.write_marker(Marker::APP(2), segment);
        }
        if let Some(exif) = carried.exif {
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend_from_slice(exif);
            started.write_marker(Marker::APP(1), &app1);
        }
        started.write_scanlines(data)?;
        started.finish()
    }));
    match written {
        Ok(Ok(mut bytes)) => {
            drop_jfif_segment(&mut bytes);
            Ok(bytes)
        }
        Ok(Err(e)) => Err(PipelineError::Encode(format!("jpeg: {e}"))),
        Err(panic) => Err(PipelineError::Encode(format!(
            "jpeg: {}",
            decode::panic_message(panic)
        ))),
    }
}

/// Removes the JFIF APP0 segment libjpeg writes first (the mozjpeg crate cannot turn it off): 18 bytes
/// that say "1:1 pixels, no density", which no browser reads. sharp writes none either; on a 64 px
/// thumbnail of 2 KB they were 1 % of the file, and most of sizer's byte gap to sharp (issue 22).
fn drop_jfif_segment(jpeg: &mut Vec<u8>) {
    const SEGMENT: usize = 2 + 16;
    if jpeg.len() > 2 + SEGMENT
        && jpeg[2..6] == [0xFF, 0xE0, 0x00, 0x10]
        && &jpeg[6..11] == b"JFIF\0"
    {
        jpeg.drain(2..2 + SEGMENT);
    }
}

/// The APP2 `ICC_PROFILE` segments of `profile`, numbered from 1 as the ICC specification says (the
/// mozjpeg crate's own `write_icc_profile` numbers them from 0, and readers that follow the
/// specification drop such a profile).
fn icc_segments(profile: &[u8]) -> Result<Vec<Vec<u8>>, PipelineError> {
    let chunks: Vec<&[u8]> = profile.chunks(ICC_CHUNK).collect();
    let Ok(count) = u8::try_from(chunks.len()) else {
        return Err(PipelineError::Encode(format!(
            "jpeg: an ICC profile of {} bytes needs more than 255 segments",
            profile.len()
        )));
    };
    Ok(chunks
        .iter()
        .zip(1..=count)
        .map(|(chunk, number)| {
            let mut segment = b"ICC_PROFILE\0".to_vec();
            segment.extend_from_slice(&[number, count]);
            segment.extend_from_slice(chunk);
            segment
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real photograph `width` px wide (its fine grass and smooth sky are issue 22's case), as RGB.
    fn photo(width: u32) -> Pixels {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/images/eveningglow-2000x1250.jpg"
        );
        let src = std::fs::read(path).unwrap();
        let full = image::DynamicImage::ImageRgb8(
            image::load_from_memory_with_format(&src, image::ImageFormat::Jpeg)
                .unwrap()
                .into_rgb8(),
        );
        let small = full.resize(width, width, image::imageops::FilterType::Triangle);
        Pixels {
            width: small.width(),
            height: small.height(),
            layout: Layout::Rgb,
            data: small.into_rgb8().into_raw(),
        }
    }

    #[test]
    fn huffman_tables_are_optimised_for_the_image() {
        // A thumbnail, where the tables are a large part of the file (and the gain, 10 % with cjpeg).
        let pixels = photo(120);
        let ours = encode(&pixels, 80, Carried::default()).unwrap();
        // The same coefficients with the standard tables (the pure-Rust encoder sizer used before).
        let mut standard = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut standard, 80);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        encoder
            .encode(
                &pixels.data,
                pixels.width as u16,
                pixels.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        let ratio = ours.len() as f64 / standard.len() as f64;
        assert!(
            ratio < 0.95,
            "{} against {} bytes",
            ours.len(),
            standard.len()
        );
        // No JFIF segment: the picture's first marker after SOI is its quantisation tables.
        assert_eq!(ours[..4], [0xFF, 0xD8, 0xFF, 0xDB]);
        // Baseline (SOF0), so that every decoder shows it at once, top to bottom.
        assert!(ours.windows(2).any(|m| m == [0xFF, 0xC0]));
        assert!(!ours.windows(2).any(|m| m == [0xFF, 0xC2]));
    }

    #[test]
    fn a_carried_profile_and_exif_are_written_before_the_picture() {
        let profile = vec![3u8; 70_000];
        let exif = b"MM\0\x2a\0\0\0\x08\0\0".to_vec();
        let carried = Carried {
            profile: Some(&profile),
            exif: Some(&exif),
        };
        let ours = encode(&photo(800), 80, carried).unwrap();
        let decoder = mozjpeg::Decompress::builder()
            .with_markers(&[Marker::APP(1), Marker::APP(2)])
            .from_mem(&ours)
            .unwrap();
        let mut icc = Vec::new();
        let mut app1 = Vec::new();
        for marker in decoder.markers() {
            match marker.marker {
                Marker::APP(2) => {
                    assert_eq!(&marker.data[..12], b"ICC_PROFILE\0");
                    icc.push((marker.data[12], marker.data[13], marker.data[14..].to_vec()));
                }
                Marker::APP(1) => app1.push(marker.data.to_vec()),
                _ => {}
            }
        }
        assert_eq!(icc.len(), 2);
        assert_eq!((icc[0].0, icc[0].1, icc[1].0, icc[1].1), (1, 2, 2, 2));
        assert_eq!([icc[0].2.clone(), icc[1].2.clone()].concat(), profile);
        assert_eq!(app1, vec![[b"Exif\0\0".as_slice(), &exif].concat()]);
        let started = decoder.rgb().unwrap();
        assert_eq!((started.width(), started.height()), (800, 500));
    }

    #[test]
    fn icc_segments_are_numbered_from_one_and_split_at_the_segment_limit() {
        let profile = vec![7u8; ICC_CHUNK * 2 + 10];
        let segments = icc_segments(&profile).unwrap();
        assert_eq!(segments.len(), 3);
        for (i, segment) in segments.iter().enumerate() {
            assert_eq!(&segment[..12], b"ICC_PROFILE\0");
            assert_eq!(segment[12], i as u8 + 1);
            assert_eq!(segment[13], 3);
        }
        assert_eq!(segments[2].len(), 14 + 10);
        let joined: Vec<u8> = segments.iter().flat_map(|s| s[14..].to_vec()).collect();
        assert_eq!(joined, profile);
        assert!(icc_segments(&vec![0u8; ICC_CHUNK * 256]).is_err());
    }
}
