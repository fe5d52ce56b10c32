//! TIFF's codec: the `tiff` crate through `image` (baseline and BigTIFF; uncompressed, LZW, Deflate,
//! PackBits and JPEG-compressed strips and tiles; 8 and 16 bits; its ICC profile), the first page of a
//! multi-page file. Its orientation tag is read with the rest of EXIF (`probe`).

use super::image_crate::Raster;

pub(super) const TIFF: Raster = Raster {
    format: image::ImageFormat::Tiff,
    profiles: true,
};
