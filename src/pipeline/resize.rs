//! Pixels to pixels at the target size with fast_image_resize (AVX2/SSE4.1/NEON, chosen at run time).
//!
//! Lanczos3 convolution. Its cost grows with the shrink ratio (about six taps per unit of shrink), so a
//! large shrink first averages whole blocks of pixels with a box filter, by the largest integer factor
//! that leaves Lanczos3 at least a factor of two, as libvips does (`vips_resize`, gap 2). RGBA is premultiplied once around both passes, so transparent pixels lend
//! no colour to their neighbours.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{
    FilterType, IntoImageView, MulDiv, PixelType, ResizeAlg, ResizeOptions, Resizer,
};

use super::geometry::Region;
use super::{Layout, PipelineError, Pixels};

/// What the box pre-shrink leaves for Lanczos3 at least: its factor is the shrink ratio over this,
/// rounded down, and it only runs when that is 2 or more. A fractional box (averaging 1.5 pixels into
/// one) blurs and aliases: with the box taking any ratio from 3 down to 2x the target, photos at 64–110
/// px lost up to 0.0064 SSIM to sharp (`bench/sweep.py`).
const LANCZOS_GAP: u32 = 2;

/// Resizes `region` of `src` (the whole image when `None`) to `width` x `height`. Cropping happens inside
/// the resampler, so the discarded part of a `cover` crop is never resized. `src` is borrowed: one decoded
/// original serves several outputs (see `pipeline::process_many`).
pub fn resize_region(
    src: &Pixels,
    region: Option<Region>,
    width: u32,
    height: u32,
) -> Result<Pixels, PipelineError> {
    let region = region.filter(|r| {
        // A region that is the whole image is no crop.
        r.x > 0.0 || r.y > 0.0 || r.width < f64::from(src.width) || r.height < f64::from(src.height)
    });
    if region.is_none() && (src.width, src.height) == (width, height) {
        return Ok(src.clone());
    }
    if let Some(r) = region
        && r.width.fract() == 0.0
        && r.height.fract() == 0.0
        && (r.width, r.height) == (f64::from(width), f64::from(height))
        && r.x.fract() == 0.0
        && r.y.fract() == 0.0
    {
        // A crop at scale 1 (an original smaller than the box): copy the rows, resample nothing.
        return Ok(extract(src, r.x as u32, r.y as u32, width, height));
    }
    let layout = src.layout;
    let pixel_type = match layout {
        Layout::Gray => PixelType::U8,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba => PixelType::U8x4,
    };
    let source =
        ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| failed(&e))?;
    let target = if layout == Layout::Rgba {
        // Premultiplied around both passes, so transparent pixels lend no colour to their neighbours.
        let mut premultiplied = Image::new(src.width, src.height, pixel_type);
        MulDiv::new()
            .multiply_alpha(&source, &mut premultiplied)
            .map_err(|e| failed(&e))?;
        let mut target = shrink(&premultiplied, region, width, height, pixel_type)?;
        MulDiv::new()
            .divide_alpha_inplace(&mut target)
            .map_err(|e| failed(&e))?;
        target
    } else {
        shrink(&source, region, width, height, pixel_type)?
    };
    Ok(Pixels {
        width,
        height,
        layout,
        data: target.into_vec(),
    })
}

fn failed(e: &dyn std::fmt::Display) -> PipelineError {
    PipelineError::Encode(format!("resize: {e}"))
}

/// The two passes: a box pre-shrink by a whole factor when the ratio is large, then Lanczos3.
fn shrink(
    src: &impl IntoImageView,
    region: Option<Region>,
    width: u32,
    height: u32,
    pixel_type: PixelType,
) -> Result<Image<'static>, PipelineError> {
    let mut resizer = Resizer::new();
    let pass = |alg, crop: Option<Region>| {
        let options = ResizeOptions::new().resize_alg(alg).use_alpha(false);
        match crop {
            Some(r) => options.crop(r.x, r.y, r.width, r.height),
            None => options,
        }
    };
    let (span_w, span_h) = region.map_or((src.width(), src.height()), |r| {
        (r.width as u32, r.height as u32)
    });
    let mut target = Image::new(width, height, pixel_type);
    let factor = (span_w / width).min(span_h / height) / LANCZOS_GAP;
    if factor >= 2 {
        let mut halfway = Image::new(
            span_w.div_ceil(factor).max(width),
            span_h.div_ceil(factor).max(height),
            pixel_type,
        );
        resizer
            .resize(
                src,
                &mut halfway,
                &pass(ResizeAlg::Convolution(FilterType::Box), region),
            )
            .map_err(|e| failed(&e))?;
        let options = pass(ResizeAlg::Convolution(FilterType::Lanczos3), None);
        resizer
            .resize(&halfway, &mut target, &options)
            .map_err(|e| failed(&e))?;
    } else {
        let options = pass(ResizeAlg::Convolution(FilterType::Lanczos3), region);
        resizer
            .resize(src, &mut target, &options)
            .map_err(|e| failed(&e))?;
    }
    Ok(target)
}

/// Copies a `width` x `height` window at (`x`, `y`) out of `src` (clamped to it).
pub fn extract(src: &Pixels, x: u32, y: u32, width: u32, height: u32) -> Pixels {
    let channels = src.layout.channels();
    let x = x.min(src.width.saturating_sub(1));
    let y = y.min(src.height.saturating_sub(1));
    let width = width.min(src.width - x).max(1);
    let height = height.min(src.height - y).max(1);
    let stride = src.width as usize * channels;
    let mut data = Vec::with_capacity(width as usize * height as usize * channels);
    for row in y..y + height {
        let start = row as usize * stride + x as usize * channels;
        data.extend_from_slice(&src.data[start..start + width as usize * channels]);
    }
    Pixels {
        width,
        height,
        layout: src.layout,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole image to `width` x `height`.
    fn resize(src: Pixels, width: u32, height: u32) -> Result<Pixels, PipelineError> {
        resize_region(&src, None, width, height)
    }

    #[test]
    fn a_region_is_cropped_inside_the_resampler() {
        // Left half black, right half white; keeping the right half must give white (the filter may take
        // a trace of the neighbouring pixels outside the region, as libvips' does: never more).
        let (w, h) = (64u32, 32u32);
        let data = (0..w * h)
            .map(|i| if i % w < w / 2 { 0 } else { 255 })
            .collect();
        let src = Pixels {
            width: w,
            height: h,
            layout: Layout::Gray,
            data,
        };
        let right = Region {
            x: 32.0,
            y: 0.0,
            width: 32.0,
            height: 32.0,
        };
        for size in [16, 4] {
            let out = resize_region(&src, Some(right), size, size).unwrap();
            assert_eq!((out.width, out.height), (size, size));
            assert!(out.data.iter().all(|&v| v > 224), "{size}: {:?}", out.data);
            let mean = out.data.iter().map(|&v| u32::from(v)).sum::<u32>() / (size * size);
            assert!(mean > 250, "{size}: mean {mean}");
        }
        let same = resize_region(&src, Some(right), 32, 32).unwrap();
        assert!(same.data.iter().all(|&v| v == 255));
    }

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
