//! Bytes to pixels. JPEG goes through libjpeg-turbo (mozjpeg) and is decoded directly at the smallest
//! DCT scale (n/8) that still covers the target size: most of the cost of a large JPEG is skipped.
//! WebP goes through libwebp, whose decoder rescales while it decodes, so the full-size image is never
//! held. PNG, GIF (first frame) and animated WebP (first frame) go through the `image` crate. AVIF
//! originals are refused (`UnsupportedVariant`, HTTP 415): sizer writes AVIF but has no AV1 decoder.
//!
//! Corrupt data is an error, never grey pixels: libjpeg's warnings about missing or damaged data (a
//! truncated file, a corrupt segment) abort the decode, as sharp does by default; warnings about complete
//! but oddly framed data (stray bytes before a marker) do not (see `is_benign_warning`).
//!
//! One file per decoder: [`jpeg`] (libjpeg, DCT scaling, the DC-only path for progressive files),
//! [`webp`] (libwebp, rescaling while decoding) and [`image_crate`] (the `image` crate: PNG, GIF, the
//! first frame of an animated WebP); this file is the dispatch by format and what they share.

mod image_crate;
mod jpeg;
mod webp;

pub(crate) use jpeg::panic_message;
pub use jpeg::{jpeg_scale_numerator, jpeg_scaled_size};
pub use webp::webp_decode_size;

use super::probe::{Format, ImageInfo};
use super::{PipelineError, Pixels};
use image_crate::decode_with_image;
use jpeg::decode_jpeg;
use webp::decode_webp;

/// What a decoder delivers: decoding the same bytes at the same scale gives the same pixels, so a scale
/// names a decoded original (the shared decode cache keys on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// JPEG at n/8 of the stored size (libjpeg's DCT scaling), n in 1..=8.
    Eighths(u8),
    /// WebP rescaled by libwebp while decoding, to exactly this size.
    Exact(u32, u32),
    /// The stored size (PNG, GIF, animated WebP).
    Full,
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scale::Eighths(n) => write!(f, "{n}/8"),
            Scale::Exact(w, h) => write!(f, "{w}x{h}"),
            Scale::Full => f.write_str("full"),
        }
    }
}

/// The scale at which `info`'s image decodes to at least `target_w`×`target_h` (stored frame), or its
/// full size.
pub fn scale_for(info: &ImageInfo, target_w: u32, target_h: u32) -> Scale {
    match info.format {
        Format::Jpeg => Scale::Eighths(jpeg_scale_numerator(
            info.width,
            info.height,
            target_w,
            target_h,
        )),
        Format::WebP => {
            let size = webp_decode_size(info.width, info.height, target_w, target_h);
            if size == (info.width, info.height) {
                Scale::Full
            } else {
                Scale::Exact(size.0, size.1)
            }
        }
        // Every format named: a new decoder says here whether it can decode smaller than stored.
        Format::Png | Format::Gif | Format::Avif => Scale::Full,
    }
}

/// How many decoded pixels one stored pixel of `info`'s image became, per axis, for a decode of
/// `decoded_w`×`decoded_h`: what maps a region of the original onto the decoded image.
///
/// Not the ratio of the sizes for a DCT-scaled JPEG: libjpeg rounds a scaled size up (2000x1250 at 1/4
/// is 500x313), and the last row or column is part padding. Taking 313/1250 for the scale stretched
/// every output by up to a pixel's worth towards its far edge (0.2 px on average at 1/4, 0.75 at 1/8),
/// which cost up to 0.06 SSIM against sharp on sharp-edged photos (`bench/sweep.py`, issue 22): the
/// scale is n/8 exactly, recovered from the decoded size ([`jpeg_scaled_size`] grows with n by at least
/// one pixel a step once a side is 8 px or more). An image under 8 px on both sides, whose scaled sizes
/// repeat (4 px is 4 at both 7/8 and 8/8), keeps the ratio of the sizes: the recovery would be a guess.
pub fn content_scale(info: &ImageInfo, decoded_w: u32, decoded_h: u32) -> (f64, f64) {
    let ratio = (
        f64::from(decoded_w) / f64::from(info.width.max(1)),
        f64::from(decoded_h) / f64::from(info.height.max(1)),
    );
    if info.format != Format::Jpeg || info.width.max(info.height) < 8 {
        // WebP is rescaled to exactly its size; the rest decode at full size.
        return ratio;
    }
    (1..=8u8)
        .find(|&n| {
            jpeg_scaled_size(info.width, n) == u64::from(decoded_w)
                && jpeg_scaled_size(info.height, n) == u64::from(decoded_h)
        })
        .map_or(ratio, |n| (f64::from(n) / 8.0, f64::from(n) / 8.0))
}

/// Decodes `src` at `scale` (see [`scale_for`]), in the stored frame. `profile` is the image's embedded
/// ICC profile: a CMYK JPEG is converted to sRGB here, through it when it is a CMYK profile (RGB images
/// are converted by the caller, see `colour`).
pub fn decode(
    src: &[u8],
    info: &ImageInfo,
    scale: Scale,
    profile: Option<&[u8]>,
) -> Result<Pixels, PipelineError> {
    match info.format {
        Format::Jpeg => decode_jpeg(
            src,
            info,
            match scale {
                Scale::Eighths(n) => n.clamp(1, 8),
                _ => 8,
            },
            profile,
        ),
        Format::Png => decode_with_image(src, info, image::ImageFormat::Png),
        Format::WebP => decode_webp(
            src,
            info,
            match scale {
                Scale::Exact(w, h) => (w, h),
                _ => (info.width, info.height),
            },
        ),
        Format::Gif => decode_with_image(src, info, image::ImageFormat::Gif),
        // No AV1 decoder in the build (dav1d is C and libaom large); AVIF is written, not read.
        Format::Avif => Err(PipelineError::UnsupportedVariant(
            "AVIF originals are not supported yet".into(),
        )),
    }
}

/// The limits were checked against the size the probe read; a decoder that reads another from the same
/// bytes (two parsers disagreeing about a crafted header) must not decode it.
fn same_size(info: &ImageInfo, decoder: (u64, u64)) -> Result<(), PipelineError> {
    if decoder == (u64::from(info.width), u64::from(info.height)) {
        return Ok(());
    }
    Err(PipelineError::Undecodable(format!(
        "the decoder reads {}x{} where the header said {}x{}",
        decoder.0, decoder.1, info.width, info.height
    )))
}

fn undecodable(e: std::io::Error) -> PipelineError {
    PipelineError::Undecodable(e.to_string())
}

#[cfg(test)]
mod tests;
