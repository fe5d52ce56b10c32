//! The `image` crate's decoders (PNG, GIF's first frame, animated WebP's first frame, TIFF's first page,
//! BMP, ICO's largest image), each bounded to the pixels its header declares plus a small allowance, and
//! the header readers the codecs share.

use image::{DynamicImage, ImageDecoder};

use super::{Codec, Header, Scale};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels};

/// A header read by `imagesize` (PNG, GIF, WebP, AVIF: formats whose size sits at a fixed place).
pub(super) fn imagesize_header(src: &[u8], alpha: bool) -> Result<Header, PipelineError> {
    let size = imagesize::blob_size(src)
        .map_err(|e| PipelineError::Undecodable(format!("unreadable header: {e}")))?;
    let (Ok(width), Ok(height)) = (u32::try_from(size.width), u32::try_from(size.height)) else {
        return Err(PipelineError::Undecodable("dimensions out of range".into()));
    };
    Ok(Header {
        width,
        height,
        alpha,
    })
}

/// A header read by the `image` crate's own decoder for `format` (the parser that will decode it, so the
/// two cannot disagree), with the bytes a pixel takes at the image's own depth.
pub(super) fn decoder_header(
    src: &[u8],
    format: image::ImageFormat,
) -> Result<(Header, u64), PipelineError> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(src), format);
    // Reading a header allocates little; a directory or tag table that claims more is refused.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(METADATA_ALLOWANCE);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    let colour = decoder.color_type();
    Ok((
        Header {
            width,
            height,
            alpha: colour.has_alpha(),
        },
        u64::from(colour.bytes_per_pixel()),
    ))
}

/// The ICC profile the `image` crate's decoder for `format` finds, within `colour::MAX_PROFILE_BYTES`:
/// the decoder is opened a second time with room for the image and a profile of at most that size, so
/// that a tag claiming more is refused before it is read.
pub(super) fn decoder_profile(src: &[u8], format: image::ImageFormat) -> Option<Vec<u8>> {
    let max = crate::pipeline::colour::MAX_PROFILE_BYTES as u64;
    let open = |max_alloc: u64| {
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(src), format);
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(max_alloc);
        reader.limits(limits);
        reader.into_decoder().ok()
    };
    let image_bytes = open(METADATA_ALLOWANCE)?.total_bytes();
    let mut decoder = open(image_bytes.saturating_add(max))?;
    decoder
        .icc_profile()
        .ok()
        .flatten()
        .filter(|p| p.len() as u64 <= max)
}

fn image_error(e: image::ImageError) -> PipelineError {
    match e {
        image::ImageError::Unsupported(u) => PipelineError::UnsupportedVariant(u.to_string()),
        other => PipelineError::Undecodable(other.to_string()),
    }
}

/// What a decoder may allocate beyond the pixels its header declares: room for an ICC profile, text and
/// the codec's own state, not for a bomb hidden in them.
const METADATA_ALLOWANCE: u64 = 16 << 20;

pub(super) fn decode_with_image(
    src: &[u8],
    info: &ImageInfo,
    format: image::ImageFormat,
) -> Result<Pixels, PipelineError> {
    // The decoder must see the size the limits were checked against, and may allocate what that size needs
    // at 16 bits per RGBA channel plus the allowance (the image crate's default, 512 MiB, stays the
    // ceiling): a GIF frame larger than its screen or an iCCP chunk inflating to hundreds of megabytes is
    // refused (the profile is dropped) instead of allocated.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(info.width);
    limits.max_image_height = Some(info.height);
    let declared = u64::from(info.width) * u64::from(info.height) * 8;
    limits.max_alloc = limits
        .max_alloc
        .map(|ceiling| ceiling.min(declared + METADATA_ALLOWANCE));
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(src), format);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Unsupported(u) => PipelineError::UnsupportedVariant(u.to_string()),
        image::ImageError::Limits(l) => {
            PipelineError::Undecodable(format!("{l} for a {}x{} image", info.width, info.height))
        }
        other => PipelineError::Undecodable(other.to_string()),
    })?;
    let (width, height) = (image.width(), image.height());
    let (layout, data) = match image {
        DynamicImage::ImageLuma8(buf) => (Layout::Gray, buf.into_raw()),
        DynamicImage::ImageRgb8(buf) => (Layout::Rgb, buf.into_raw()),
        DynamicImage::ImageRgba8(buf) => (Layout::Rgba, buf.into_raw()),
        other if other.color().has_alpha() => (Layout::Rgba, other.into_rgba8().into_raw()),
        other if other.color().has_color() => (Layout::Rgb, other.into_rgb8().into_raw()),
        other => (Layout::Gray, other.into_luma8().into_raw()),
    };
    Ok(Pixels {
        width,
        height,
        layout,
        data,
    })
}

/// The codec of a still format the `image` crate reads whole (TIFF, BMP, ICO): header and profile from
/// its own decoder, decoded at full size.
pub(super) struct Raster {
    pub(super) format: image::ImageFormat,
    /// Whether the format carries an ICC profile the decoder reads (TIFF's tag 34675).
    pub(super) profiles: bool,
}

impl Codec for Raster {
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        decoder_header(src, self.format).map(|(header, _)| header)
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
        decode_with_image(src, info, self.format)
    }

    /// The image at its own depth (16-bit RGBA: 8 bytes a pixel) before its 8-bit conversion; a header
    /// not in `header` counts as the deepest.
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64 {
        let depth = decoder_header(header, self.format).map_or(8, |(_, bytes)| bytes);
        u64::from(info.width) * u64::from(info.height) * depth
    }

    fn profile(&self, src: &[u8]) -> Option<Vec<u8>> {
        if self.profiles {
            decoder_profile(src, self.format)
        } else {
            None
        }
    }

    /// A multi-page TIFF is read as its first page.
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}
