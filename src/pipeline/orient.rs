//! EXIF orientation: applied after resizing, when the image is small and the flips are cheap.

use image::{DynamicImage, ImageBuffer};

use super::geometry::Region;
use super::{Layout, Pixels};

/// The eight EXIF orientations (tag 0x0112), named for what displaying the stored image needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Normal,
    FlipHorizontal,
    Rotate180,
    FlipVertical,
    Transpose,
    Rotate90,
    Transverse,
    Rotate270,
}

impl Orientation {
    /// Reads an EXIF orientation value; anything outside 1-8 is treated as upright.
    pub fn from_exif(value: u8) -> Orientation {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    fn exif_value(self) -> u8 {
        match self {
            Orientation::Normal => 1,
            Orientation::FlipHorizontal => 2,
            Orientation::Rotate180 => 3,
            Orientation::FlipVertical => 4,
            Orientation::Transpose => 5,
            Orientation::Rotate90 => 6,
            Orientation::Transverse => 7,
            Orientation::Rotate270 => 8,
        }
    }

    /// Whether displaying the image swaps its width and height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }
}

impl Orientation {
    /// The rectangle of the stored image that displays as `region` of the displayed image.
    /// `stored_w`/`stored_h` are the stored image's dimensions (in whatever pixel scale `region` uses).
    pub fn stored_region(self, region: Region, stored_w: f64, stored_h: f64) -> Region {
        let Region {
            x,
            y,
            width: w,
            height: h,
        } = region;
        let (sx, sy, sw, sh) = match self {
            Orientation::Normal => (x, y, w, h),
            Orientation::FlipHorizontal => (stored_w - x - w, y, w, h),
            Orientation::Rotate180 => (stored_w - x - w, stored_h - y - h, w, h),
            Orientation::FlipVertical => (x, stored_h - y - h, w, h),
            Orientation::Transpose => (y, x, h, w),
            Orientation::Rotate90 => (y, stored_h - x - w, h, w),
            Orientation::Transverse => (stored_w - y - h, stored_h - x - w, h, w),
            Orientation::Rotate270 => (stored_w - y - h, x, h, w),
        };
        Region {
            x: sx.max(0.0),
            y: sy.max(0.0),
            width: sw,
            height: sh,
        }
    }
}

/// Turns stored pixels into displayed pixels.
pub fn apply(pixels: Pixels, orientation: Orientation) -> Pixels {
    let Some(target) = image::metadata::Orientation::from_exif(orientation.exif_value()) else {
        return pixels;
    };
    if orientation == Orientation::Normal {
        return pixels;
    }
    let Pixels {
        width,
        height,
        layout,
        data,
    } = pixels;
    let image = match layout {
        Layout::Gray => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageLuma8),
        Layout::Rgb => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgb8),
        Layout::Rgba => ImageBuffer::from_raw(width, height, data).map(DynamicImage::ImageRgba8),
    };
    // from_raw only fails when the buffer is shorter than width*height*channels, which Pixels never is.
    let Some(mut image) = image else {
        unreachable!("Pixels buffers always hold width*height*channels bytes")
    };
    image.apply_orientation(target);
    let (width, height) = (image.width(), image.height());
    let data = image.into_bytes();
    Pixels {
        width,
        height,
        layout,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x1 grey image: left pixel 10, right pixel 20.
    fn two_by_one() -> Pixels {
        Pixels {
            width: 2,
            height: 1,
            layout: Layout::Gray,
            data: vec![10, 20],
        }
    }

    #[test]
    fn rotate90_turns_a_row_into_a_column() {
        let out = apply(two_by_one(), Orientation::Rotate90);
        assert_eq!((out.width, out.height), (1, 2));
        // Rotating clockwise puts the left pixel on top.
        assert_eq!(out.data, vec![10, 20]);
        let out = apply(two_by_one(), Orientation::Rotate270);
        assert_eq!(out.data, vec![20, 10]);
    }

    #[test]
    fn flip_horizontal_mirrors() {
        assert_eq!(
            apply(two_by_one(), Orientation::FlipHorizontal).data,
            vec![20, 10]
        );
        assert_eq!(apply(two_by_one(), Orientation::Normal).data, vec![10, 20]);
    }

    /// Cropping the displayed image equals displaying the crop of `stored_region`, for all eight.
    #[test]
    fn stored_region_maps_display_crops_back_for_every_orientation() {
        let (w, h) = (5u32, 3u32);
        let stored = Pixels {
            width: w,
            height: h,
            layout: Layout::Gray,
            data: (0..(w * h) as u8).collect(),
        };
        let crop = |p: &Pixels, r: Region| -> Vec<u8> {
            let mut out = Vec::new();
            for y in r.y as u32..(r.y + r.height) as u32 {
                for x in r.x as u32..(r.x + r.width) as u32 {
                    out.push(p.data[(y * p.width + x) as usize]);
                }
            }
            out
        };
        for value in 1..=8 {
            let o = Orientation::from_exif(value);
            let displayed = apply(stored.clone(), o);
            let region = Region {
                x: 1.0,
                y: 0.0,
                width: 2.0,
                height: 2.0,
            };
            let back = o.stored_region(region, f64::from(w), f64::from(h));
            let via_stored = apply(
                Pixels {
                    width: back.width as u32,
                    height: back.height as u32,
                    layout: Layout::Gray,
                    data: crop(&stored, back),
                },
                o,
            );
            assert_eq!(
                via_stored.data,
                crop(&displayed, region),
                "orientation {value}"
            );
        }
    }

    #[test]
    fn quarter_turns_swap_axes() {
        assert!(Orientation::from_exif(6).swaps_axes());
        assert!(!Orientation::from_exif(3).swaps_axes());
        assert_eq!(Orientation::from_exif(0), Orientation::Normal);
        assert_eq!(Orientation::from_exif(9), Orientation::Normal);
    }
}
