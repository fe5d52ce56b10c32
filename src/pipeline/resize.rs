//! Pixels to pixels at the target size with fast_image_resize (AVX2/SSE4.1/NEON, chosen at run time).
//! Lanczos3 convolution; RGBA is premultiplied for the filter and back, so transparent edges keep no halo.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{Layout, PipelineError, Pixels};

pub fn resize(src: Pixels, width: u32, height: u32) -> Result<Pixels, PipelineError> {
    if (src.width, src.height) == (width, height) {
        return Ok(src);
    }
    let pixel_type = match src.layout {
        Layout::Gray => PixelType::U8,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba => PixelType::U8x4,
    };
    let layout = src.layout;
    let source = Image::from_vec_u8(src.width, src.height, src.data, pixel_type)
        .map_err(|e| PipelineError::Undecodable(format!("decoded buffer: {e}")))?;
    let mut target = Image::new(width, height, pixel_type);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(layout == Layout::Rgba);
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| PipelineError::Encode(format!("resize: {e}")))?;
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
        let src = Pixels {
            width: 40,
            height: 20,
            layout: Layout::Rgb,
            data: [200u8, 100, 50].repeat(800),
        };
        let out = resize(src, 10, 5).unwrap();
        assert_eq!((out.width, out.height, out.data.len()), (10, 5, 150));
        assert!(out.data.chunks(3).all(|p| p == [200, 100, 50]));
    }

    #[test]
    fn transparent_pixels_do_not_bleed_colour() {
        // Left half opaque red, right half fully transparent green: no green may appear.
        let mut data = Vec::new();
        for _ in 0..16 {
            for x in 0..16 {
                data.extend_from_slice(if x < 8 {
                    &[255, 0, 0, 255]
                } else {
                    &[0, 255, 0, 0]
                });
            }
        }
        let out = resize(
            Pixels {
                width: 16,
                height: 16,
                layout: Layout::Rgba,
                data,
            },
            4,
            4,
        )
        .unwrap();
        for p in out.data.chunks(4).filter(|p| p[3] > 0) {
            assert!(p[1] < 8, "green bled into a visible pixel: {p:?}");
        }
    }
}
