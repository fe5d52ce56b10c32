//! AVIF through rav1e (a pure-Rust AV1 encoder) and ravif: no C codec to build, so AVIF output works
//! on any machine that builds sizer. With the `nasm` cargo feature rav1e's x86/ARM assembly is
//! compiled in; without it the same bytes come out of plain Rust, the encode about 3.2x slower.
//!
//! - Quality: sizer's 1-100 maps onto ravif's own 1-100 scale through [`ravif_quality`]: 80 becomes
//!   ravif 65, which gives sharp's default AVIF bytes across sizes (issue 22: 0.99x on six tune photos
//!   of `bench/corpus.tsv`, 64 px to 2000 px, 1.03x on six check photos). At those bytes rav1e stays
//!   below libaom on SSIM, most at thumbnails (worst −0.026 at 141 px): builds with the `aom` feature
//!   encode with libaom instead ([`super::aom`]).
//! - Speed 6 ([`SPEED`]): 0.67x and 0.48x sharp's CPU on W7/W8 with nasm (whole pipeline). Preset 5
//!   gave the same bytes; 7 saved a fifth of the CPU for 1-5% more bytes at equal SSIM.
//! - Colour under fully transparent pixels is smoothed (ravif's `UnassociatedClean`): fewer bytes,
//!   nothing visible changes. Alpha at cavif's alpha quality, a little above the colour's.
//! - One thread (ravif is built without its `threading` feature).

use ravif::{AlphaColorMode, BitDepth, Encoder, Img, MatrixCoefficients, PixelRange};
use rgb::FromSlice;

use crate::pipeline::{Layout, PipelineError, Pixels};

/// rav1e speed preset, 1 (slowest) to 10.
const SPEED: u8 = 6;

/// ravif's quality at sizer's default.
const AT_DEFAULT: f32 = 65.0;

/// ravif's quality (1-100, its own scale) for sizer's `quality` (1-100): [`AT_DEFAULT`] at sizer's
/// default, 1 at 1, 100 at 100, linear in between.
fn ravif_quality(quality: u8) -> f32 {
    super::on_scale(quality, AT_DEFAULT)
}

/// Encodes pixels whose buffer [`super::encode_avif`] has checked.
pub(super) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let (width, height) = (pixels.width as usize, pixels.height as usize);
    let color = ravif_quality(quality);
    let encoder = Encoder::new()
        .with_quality(color)
        .with_alpha_quality(super::alpha_quality(color))
        .with_speed(SPEED)
        .with_bit_depth(BitDepth::Eight)
        .with_alpha_color_mode(AlphaColorMode::UnassociatedClean)
        .with_num_threads(Some(1));
    let encoded = match pixels.layout {
        Layout::Rgb => encoder.encode_rgb(Img::new(pixels.data.as_rgb(), width, height)),
        // ravif itself writes no alpha item when every pixel is opaque.
        Layout::Rgba => encoder.encode_rgba(Img::new(pixels.data.as_rgba(), width, height)),
        // Grey is luma with neutral chroma, which AV1 codes in next to nothing: the grey values go
        // straight into the Y plane (full range, so Y = grey).
        Layout::Gray => encoder.encode_raw_planes_8_bit(
            width,
            height,
            pixels.data.iter().map(|&v| [v, 128, 128]),
            None::<[u8; 0]>,
            PixelRange::Full,
            MatrixCoefficients::BT601,
        ),
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| PipelineError::Encode(format!("avif: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_onto_ravif_scale_in_order() {
        assert_eq!(ravif_quality(1), 1.0);
        assert_eq!(ravif_quality(80), AT_DEFAULT);
        assert_eq!(ravif_quality(100), 100.0);
        // Out of range is clamped, never a panic in ravif's range assertions.
        assert_eq!(ravif_quality(0), 1.0);
        assert_eq!(ravif_quality(255), 100.0);
        let mapped: Vec<f32> = (1..=100).map(ravif_quality).collect();
        assert!(mapped.windows(2).all(|m| m[0] < m[1]));
        assert!(
            mapped
                .iter()
                .map(|&q| crate::pipeline::encode::avif::alpha_quality(q))
                .all(|a| (1.0..=100.0).contains(&a))
        );
    }
}
