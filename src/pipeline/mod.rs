//! Image processing as an ordered list of small steps over plain pixel buffers:
//! [`probe`] (format, size, orientation, limits: before any decoding) → [`decode`] (JPEG straight at the
//! smallest DCT scale that still covers the target) → [`resize`] (fast_image_resize, SIMD) → [`orient`]
//! (EXIF orientation, applied to the small image) → [`encode`] (the original's format, or the one asked
//! for; AVIF is written by [`avif`] but not read).
//!
//! Synchronous and CPU-bound: callers run it on the CPU pool, never on the async runtime. Knows nothing of
//! stores or HTTP. The deadline is checked between steps.

pub mod avif;
pub mod decode;
pub mod encode;
pub mod orient;
pub mod palette;
pub mod probe;
pub mod resize;

use std::time::Instant;

pub use encode::PngMode;
pub use probe::Format;

/// What to make of an original.
#[derive(Debug, Clone)]
pub struct Job {
    /// Output width in displayed (orientation-applied) pixels; the height keeps the aspect ratio.
    pub width: u32,
    /// Encoder quality for JPEG, WebP and AVIF, 1-100.
    pub quality: u8,
    /// How PNG output is written.
    pub png: PngMode,
    /// Output format; `None` keeps the original's.
    pub format: Option<Format>,
    /// Whether a width above the original's is honoured.
    pub allow_upscale: bool,
    /// Largest original accepted, in pixels.
    pub max_pixels: u64,
    /// Give up between steps once past this instant.
    pub deadline: Option<Instant>,
}

/// An encoded variant.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// How the channels of a [`Pixels`] buffer are laid out; 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    Rgb,
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// Whether RGBA bytes have alpha 255 everywhere, i.e. their alpha channel carries nothing.
pub(crate) fn is_opaque(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4).all(|p| p[3] == 255)
}

/// A decoded image: tightly packed rows, top to bottom.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("not a supported image format (JPEG, PNG, WebP, GIF)")]
    Unsupported,
    #[error("unsupported image: {0}")]
    UnsupportedVariant(String),
    #[error("image is {width}x{height} = {pixels} pixels, above the limit of {limit}")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("image could not be decoded: {0}")]
    Undecodable(String),
    #[error("image could not be encoded: {0}")]
    Encode(String),
    #[error("deadline passed during processing")]
    DeadlinePassed,
}

/// Runs the whole pipeline on an original's bytes.
pub fn process(src: &[u8], job: &Job) -> Result<Encoded, PipelineError> {
    let info = probe::probe(src)?;
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > job.max_pixels {
        return Err(PipelineError::TooManyPixels {
            width: info.width,
            height: info.height,
            pixels,
            limit: job.max_pixels,
        });
    }
    let (display_w, display_h) = info.display_size();
    let out_w = if job.allow_upscale {
        job.width
    } else {
        job.width.min(display_w)
    };
    let out_h = scaled_height(display_w, display_h, out_w);
    // Resize happens before orientation, in the stored frame, where a quarter turn swaps the axes.
    let (stored_w, stored_h) = if info.orientation.swaps_axes() {
        (out_h, out_w)
    } else {
        (out_w, out_h)
    };

    check(job)?;
    let decoded = decode::decode(src, &info, stored_w, stored_h)?;
    check(job)?;
    let resized = resize::resize(decoded, stored_w, stored_h)?;
    let oriented = orient::apply(resized, info.orientation);
    check(job)?;
    let format = job.format.unwrap_or(info.format);
    let bytes = encode::encode(&oriented, format, job.quality, job.png)?;
    Ok(Encoded {
        bytes,
        format,
        width: oriented.width,
        height: oriented.height,
    })
}

/// Height that keeps the aspect ratio at `width`, rounded to the nearest pixel, at least 1.
pub fn scaled_height(src_w: u32, src_h: u32, width: u32) -> u32 {
    let h = (u64::from(src_h) * u64::from(width) + u64::from(src_w) / 2) / u64::from(src_w.max(1));
    u32::try_from(h.max(1)).unwrap_or(u32::MAX)
}

fn check(job: &Job) -> Result<(), PipelineError> {
    match job.deadline {
        Some(deadline) if Instant::now() > deadline => Err(PipelineError::DeadlinePassed),
        _ => Ok(()),
    }
}

/// An encoded image of one flat grey `value`, for tests that need real bytes of a format.
#[cfg(test)]
pub(crate) fn flat_image(format: Format, width: u32, height: u32, value: u8) -> Vec<u8> {
    let pixels = Pixels {
        width,
        height,
        layout: Layout::Rgb,
        data: vec![value; (width * height * 3) as usize],
    };
    encode::encode(&pixels, format, 80, PngMode::Lossless).expect("a flat image encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn height_keeps_aspect_ratio() {
        assert_eq!(scaled_height(6028, 3391, 600), 338);
        assert_eq!(scaled_height(3640, 2400, 300), 198);
        assert_eq!(scaled_height(1000, 1, 10), 1);
        assert_eq!(scaled_height(10, 1000, 10), 1000);
    }
}
