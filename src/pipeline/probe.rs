//! What an original is, read from its first bytes and headers only: format (by magic bytes, never by
//! file name), stored dimensions and EXIF orientation. Runs before any decoding so limits are cheap.
//!
//! What each format's header holds, and how it is read, is its codec's (see [`super::decode`]); this is
//! the part every format shares.

use std::io::Cursor;

use super::PipelineError;
use super::decode::{self, Header};
pub use super::format::ImageInfo;
use super::format::InputFormat;
use super::orient::Orientation;

/// Reads `src`'s header (which may be only the file's first bytes) with its format's codec.
pub fn probe(src: &[u8]) -> Result<ImageInfo, PipelineError> {
    let format = InputFormat::sniff(src).ok_or(PipelineError::Unsupported)?;
    let Header {
        width,
        height,
        alpha,
    } = decode::codec(format).header(src)?;
    if width == 0 || height == 0 {
        return Err(PipelineError::Undecodable(format!(
            "image has no pixels ({width}x{height})"
        )));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
        alpha,
        orientation: exif_orientation(src),
    })
}

/// EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF); absent or unreadable EXIF means upright.
fn exif_orientation(src: &[u8]) -> Orientation {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(src)) else {
        return Orientation::Normal;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .map_or(Orientation::Normal, Orientation::from_exif)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Format;
    use crate::pipeline::format::tests::ftyp;

    #[test]
    fn our_avif_output_probes_to_its_size() {
        let avif = crate::pipeline::flat_image(Format::Avif, 33, 21, 90);
        let info = probe(&avif).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (InputFormat::Avif, 33, 21)
        );
        assert_eq!(info.orientation, Orientation::Normal);
    }

    #[test]
    fn a_truncated_or_damaged_avif_header_is_an_error_never_a_panic() {
        let avif = crate::pipeline::flat_image(Format::Avif, 33, 21, 90);
        for cut in 0..avif.len() {
            if let Ok(info) = probe(&avif[..cut]) {
                assert_eq!((info.width, info.height), (33, 21), "cut at {cut}");
            }
        }
        for at in 0..avif.len().min(400) {
            let mut damaged = avif.clone();
            damaged[at] ^= 0xA5;
            let _ = probe(&damaged);
        }
    }

    #[test]
    fn an_avif_ftyp_without_the_rest_is_undecodable() {
        assert!(matches!(
            probe(&ftyp(b"avif", &[b"mif1"])),
            Err(PipelineError::Undecodable(_))
        ));
    }

    /// `jpeg` with its frame header (the first SOF0) edited.
    fn with_sof(jpeg: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let at = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline frame header");
        let mut out = jpeg.to_vec();
        edit(&mut out[at..]);
        out
    }

    #[test]
    fn jpeg_kinds_libjpeg_cannot_decode_are_refused_before_decoding() {
        let jpeg = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        assert_eq!(
            (probe(&jpeg).unwrap().width, probe(&jpeg).unwrap().height),
            (64, 48)
        );
        for (marker, kind) in [
            (0xC9, "arithmetic-coded JPEG (SOF9)"),
            (0xCA, "arithmetic-coded JPEG (SOF10)"),
            (0xC3, "lossless JPEG (SOF3)"),
            (0xCB, "lossless JPEG (SOF11)"),
            (0xC5, "hierarchical JPEG (SOF5)"),
            (0xCF, "hierarchical JPEG (SOF15)"),
        ] {
            let edited = with_sof(&jpeg, |sof| sof[1] = marker);
            assert_eq!(
                probe(&edited),
                Err(PipelineError::UnsupportedVariant(kind.into()))
            );
        }
        for precision in [12, 16] {
            let edited = with_sof(&jpeg, |sof| sof[4] = precision);
            assert_eq!(
                probe(&edited),
                Err(PipelineError::UnsupportedVariant(format!(
                    "{precision}-bit JPEG"
                )))
            );
        }
    }

    #[test]
    fn a_decoy_jpeg_frame_behind_a_fill_byte_does_not_hide_the_real_one() {
        // libjpeg skips the 0xFF fill byte after SOI and reads APP1 (length 0xFFFF), then the real frame.
        // A reader that takes `FF FF` for a marker takes `E1 FF` for a length and lands in the APP1
        // payload, on a 16x16 decoy frame.
        let real = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        let mut payload = vec![0u8; 0xFFFF - 2];
        let decoy_at = 4 + 0xE1FF - 7;
        payload[decoy_at..decoy_at + 9]
            .copy_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10]);
        let mut disguised = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0xFF, 0xFF];
        disguised.extend_from_slice(&payload);
        disguised.extend_from_slice(&real[2..]);
        let info = probe(&disguised).unwrap();
        assert_eq!((info.width, info.height), (64, 48));
    }

    #[test]
    fn jpeg_headers_that_end_or_break_before_the_frame_are_undecodable() {
        let jpeg = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        for cut in 3..sof + 9 {
            assert!(
                matches!(probe(&jpeg[..cut]), Err(PipelineError::Undecodable(_))),
                "cut at {cut}"
            );
        }
        let two_soi = [&jpeg[..2], &jpeg[..]].concat();
        assert!(matches!(
            probe(&two_soi),
            Err(PipelineError::Undecodable(_))
        ));
        let mut zero_length = jpeg.clone();
        zero_length[4..6].copy_from_slice(&[0, 0]);
        assert!(matches!(
            probe(&zero_length),
            Err(PipelineError::Undecodable(_))
        ));
    }

    #[test]
    fn a_png_signature_without_ihdr_is_undecodable() {
        let html = b"\x89PNG\r\n\x1a\n<!DOCTYPE html><html><script></script></html>";
        assert!(matches!(probe(html), Err(PipelineError::Undecodable(_))));
    }

    #[test]
    fn non_images_are_unsupported() {
        assert_eq!(
            probe(b"hello, world").unwrap_err(),
            PipelineError::Unsupported
        );
    }

    #[test]
    fn a_bare_magic_number_is_undecodable() {
        assert!(matches!(
            probe(&[0xFF, 0xD8, 0xFF]),
            Err(PipelineError::Undecodable(_))
        ));
    }
}
