//! The `image` crate's decoders: PNG, GIF (first frame) and animated WebP's first frame, each bounded to
//! the pixels its header declares plus a small allowance.

use image::DynamicImage;

use crate::pipeline::probe::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels};

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
