//! BMP's codec: the `image` crate's reader (1 to 32 bits, RLE, bit fields, top-down and bottom-up).

use super::image_crate::Raster;

pub(super) const BMP: Raster = Raster {
    format: image::ImageFormat::Bmp,
    profiles: false,
};
