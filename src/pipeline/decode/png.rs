//! PNG's codec: the `image` crate's decoder (its default image: APNG's animation chunks are not read).

use super::image_crate::{decode_with_image, imagesize_header};
use super::{Codec, Header, Scale};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{PipelineError, Pixels, colour};

pub(super) struct Png;

impl Codec for Png {
    /// imagesize reads the size at a fixed offset without looking at the chunk there: the IHDR must be
    /// where it reads. Alpha: colour types 4 (grey + alpha) and 6 (RGBA); a palette's tRNS is not looked
    /// for (a PNG is written back as PNG, whose alpha the decode finds).
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        if src.get(12..16) != Some(b"IHDR") {
            return Err(PipelineError::Undecodable(
                "PNG without an IHDR chunk first".into(),
            ));
        }
        imagesize_header(src, matches!(src.get(25), Some(4 | 6)))
    }

    fn scale_for(&self, _info: &ImageInfo, _target_w: u32, _target_h: u32) -> Scale {
        Scale::Full
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        _scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        decode_with_image(src, info, image::ImageFormat::Png)
    }

    /// The raw image at its own depth (16-bit RGBA: 8 bytes a pixel) before its 8-bit conversion.
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64 {
        u64::from(info.width) * u64::from(info.height) * raw_bytes_per_pixel(header)
    }

    fn profile(&self, src: &[u8]) -> Option<Vec<u8>> {
        colour::png_profile(src)
    }

    /// APNG's animation chunks are not read: its default image (IDAT) is served.
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}

/// A PNG's bytes per pixel as stored, before conversion (palette images expand to RGBA).
fn raw_bytes_per_pixel(header: &[u8]) -> u64 {
    let depth = u64::from(header.get(24).copied().unwrap_or(16)).max(8) / 8;
    let channels = match header.get(25).copied() {
        Some(0) => 1,
        Some(2) => 3,
        Some(3) => return 4,
        Some(4) => 2,
        _ => 4,
    };
    depth * channels
}
