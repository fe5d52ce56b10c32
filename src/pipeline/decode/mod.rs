//! Bytes to pixels, one codec per input format behind [`Codec`]: each reads its header before anything
//! is decoded (size, alpha: with the parser its decoder uses, so the size checked against the limits is
//! the size decoded), says which decode covers a target, what its decoder holds besides the pixels, its
//! embedded profile and its frame count, and decodes. A new input format is a file here, a variant of
//! [`InputFormat`] and an arm of [`codec`].
//!
//! - [`jpeg`]: libjpeg-turbo (mozjpeg), decoded directly at the smallest DCT scale (n/8) that still
//!   covers the target, the DC-only path for progressive files; its headers in [`jpeg_header`].
//! - [`webp`]: libwebp, whose decoder rescales while it decodes, so the full-size image is never held.
//! - [`png`], [`gif`] (first frame), [`tiff`] (first page), [`bmp`], [`ico`] (the largest image):
//!   the `image` crate's pure-Rust decoders, through [`image_crate`].
//! - [`jxl`]: JPEG XL through jxl-oxide (pure Rust), rendered to sRGB and oriented by it.
//! - [`svg`]: resvg, drawn at the output's size, nothing outside the document read.
//! - [`avif`]: probed (sizer reads back its AVIF variants), refused as an original (HTTP 415).
//!
//! Corrupt data is an error, never grey pixels: libjpeg's warnings about missing or damaged data (a
//! truncated file, a corrupt segment) abort the decode, as sharp does by default; warnings about complete
//! but oddly framed data (stray bytes before a marker) do not (see `jpeg::is_benign_warning`).

mod avif;
mod bmp;
mod gif;
mod ico;
mod image_crate;
mod jpeg;
pub mod jpeg_header;
mod jxl;
mod png;
mod svg;
mod tiff;
mod webp;

pub(crate) use jpeg::panic_message;
pub use jpeg::{jpeg_scale_numerator, jpeg_scaled_size};
pub use webp::webp_decode_size;

use super::format::{ImageInfo, InputFormat};
use super::{PipelineError, Pixels};

/// What an input format's header says before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    /// Whether it declares an alpha channel (see [`ImageInfo::alpha`]).
    pub alpha: bool,
}

/// One input format's codec. Every method is required: a new format says what it does for each, rather
/// than inheriting "a still image with no profile and no decoder state" without anyone deciding so.
pub(crate) trait Codec: Sync {
    /// Its size and alpha from its header (`src` may be only the file's first bytes: an error then
    /// makes the caller read the whole file and ask again).
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError>;
    /// The decode that delivers at least `target_w`×`target_h` (stored frame), or the full size.
    fn scale_for(&self, info: &ImageInfo, target_w: u32, target_h: u32) -> Scale;
    /// Decodes at `scale`, in the stored frame; `profile` is the embedded ICC profile (a CMYK JPEG is
    /// converted to sRGB through it while decoding; RGB is converted by the caller, see `colour`).
    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        scale: Scale,
        profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError>;
    /// What the decoder holds besides the pixels it returns (`header`: the file's first bytes).
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64;
    /// The embedded ICC profile, if any and readable within `colour::MAX_PROFILE_BYTES`.
    fn profile(&self, src: &[u8]) -> Option<Vec<u8>>;
    /// Frames, counted on the container without decoding, stopping at `limit`.
    fn frames(&self, src: &[u8], limit: usize) -> usize;
}

/// The codec of `format`.
pub(crate) fn codec(format: InputFormat) -> &'static dyn Codec {
    match format {
        InputFormat::Jpeg => &jpeg::Jpeg,
        InputFormat::Png => &png::Png,
        InputFormat::WebP => &webp::WebP,
        InputFormat::Gif => &gif::Gif,
        InputFormat::Avif => &avif::Avif,
        InputFormat::Tiff => &tiff::TIFF,
        InputFormat::Bmp => &bmp::BMP,
        InputFormat::Ico => &ico::ICO,
        InputFormat::Jxl => &jxl::Jxl,
        InputFormat::Svg => &svg::Svg,
    }
}

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
    codec(info.format).scale_for(info, target_w, target_h)
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
    if info.format != InputFormat::Jpeg || info.width.max(info.height) < 8 {
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
    codec(info.format).decode(src, info, scale, profile)
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
