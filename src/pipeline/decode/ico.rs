//! ICO's codec: the `image` crate's reader, which takes the directory's largest image (BMP or PNG
//! inside).

use super::image_crate::Raster;

pub(super) const ICO: Raster = Raster {
    format: image::ImageFormat::Ico,
    profiles: false,
};
