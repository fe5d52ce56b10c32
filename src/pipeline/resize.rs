//! Pixels to pixels at the target size with fast_image_resize (AVX2/SSE4.1/NEON, chosen at run time).
//!
//! Lanczos3 convolution. Its cost grows with the shrink ratio (about six taps per unit of shrink), so a
//! large shrink first averages down to twice the target with a box filter, as libvips does, and Lanczos3
//! does the last factor of two. RGBA is premultiplied once around both passes, so transparent pixels lend
//! no colour to their neighbours.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, MulDiv, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{Layout, PipelineError, Pixels};

/// Shrink ratio (in both directions) from which the box pre-shrink pays.
const PRESHRINK_FROM: u32 = 3;

pub fn resize(src: Pixels, width: u32, height: u32) -> Result<Pixels, PipelineError> {
    if (src.width, src.height) == (width, height) {
        return Ok(src);
    }
    let failed = |e: &dyn std::fmt::Display| PipelineError::Encode(format!("resize: {e}"));
    let layout = src.layout;
    let pixel_type = match layout {
        Layout::Gray => PixelType::U8,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba => PixelType::U8x4,
    };
    let mut current =
        Image::from_vec_u8(src.width, src.height, src.data, pixel_type).map_err(|e| failed(&e))?;
    let alpha = layout == Layout::Rgba;
    if alpha {
        MulDiv::new()
            .multiply_alpha_inplace(&mut current)
            .map_err(|e| failed(&e))?;
    }
    let mut resizer = Resizer::new();
    let pass = |alg| ResizeOptions::new().resize_alg(alg).use_alpha(false);
    if current.width() / width >= PRESHRINK_FROM && current.height() / height >= PRESHRINK_FROM {
        let mut halfway = Image::new(width * 2, height * 2, pixel_type);
        let options = pass(ResizeAlg::Convolution(FilterType::Box));
        resizer
            .resize(&current, &mut halfway, &options)
            .map_err(|e| failed(&e))?;
        current = halfway;
    }
    let mut target = Image::new(width, height, pixel_type);
    let options = pass(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&current, &mut target, &options)
        .map_err(|e| failed(&e))?;
    if alpha {
        MulDiv::new()
            .divide_alpha_inplace(&mut target)
            .map_err(|e| failed(&e))?;
    }
    Ok(Pixels {
        width,
        height,
        layout,
        data: target.into_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_to_the_exact_size_and_keeps_flat_colour() {
        for (from, to) in [((40, 20), (10, 5)), ((400, 200), (30, 15))] {
            let data = [200u8, 100, 50].repeat((from.0 * from.1) as usize);
            let src = Pixels {
                width: from.0,
                height: from.1,
                layout: Layout::Rgb,
                data,
            };
            let out = resize(src, to.0, to.1).unwrap();
            assert_eq!((out.width, out.height), to);
            assert!(
                out.data.chunks(3).all(|p| p == [200, 100, 50]),
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn transparent_pixels_do_not_bleed_colour() {
        // Left half opaque red, right half fully transparent green: no green may appear, with or without
        // the box pre-shrink.
        for (size, to) in [(16u32, 4u32), (96, 8)] {
            let mut data = Vec::new();
            for _ in 0..size {
                for x in 0..size {
                    data.extend_from_slice(if x < size / 2 {
                        &[255, 0, 0, 255]
                    } else {
                        &[0, 255, 0, 0]
                    });
                }
            }
            let out = resize(
                Pixels {
                    width: size,
                    height: size,
                    layout: Layout::Rgba,
                    data,
                },
                to,
                to,
            )
            .unwrap();
            for p in out.data.chunks(4).filter(|p| p[3] > 0) {
                assert!(p[1] < 8, "green bled into a visible pixel: {p:?}");
            }
        }
    }

    #[test]
    fn a_large_shrink_keeps_detail_balanced() {
        // Vertical stripes two pixels wide, shrunk 12x: the result must be an even grey, not aliased stripes.
        let (w, h) = (1200u32, 120u32);
        let data: Vec<u8> = (0..w * h)
            .map(|i| if (i % w) / 2 % 2 == 0 { 0 } else { 255 })
            .collect();
        let out = resize(
            Pixels {
                width: w,
                height: h,
                layout: Layout::Gray,
                data,
            },
            100,
            10,
        )
        .unwrap();
        assert!(
            out.data.iter().all(|&v| (112..=143).contains(&v)),
            "{:?}",
            &out.data[..10]
        );
    }
}
