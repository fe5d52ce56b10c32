//! Pixels to AVIF, with rav1e (a pure-Rust AV1 encoder) through ravif: no C codec to build, so AVIF
//! output works on any machine that builds sizer. With the `nasm` cargo feature rav1e's x86/ARM
//! assembly is compiled in (the Dockerfile and CI build it); without it the same bytes come out of
//! plain Rust, the encode about 3.2x slower.
//!
//! The settings were measured against sharp's AVIF at sharp's defaults (libheif + libaom: quality 50,
//! effort 4, 4:4:4, 8 bits) on W7 (kleiber → 600w) and W8 (friends → 600w) of `bench/workloads.json`;
//! BENCHMARKS.md has the table.
//! - Quality: sizer's one 1-100 scale (default 80, shared with JPEG and WebP) maps onto ravif's own
//!   1-100 scale through [`ravif_quality`]: 80 becomes ravif 65, chosen so that sizer's default AVIF
//!   has sharp's default's bytes across sizes (issue 22: six tune photos of `bench/corpus.tsv`, 64 px
//!   to 2000 px; bytes 0.99x there and 1.03x on six check photos, where ravif 60, tuned on W7/W8 at
//!   600 px alone, gave 0.89x and 0.91x and up to 0.045 less SSIM). At equal bytes rav1e at speed 6
//!   stays below libaom on SSIM, most at thumbnails (worst −0.026 at 141 px). Linear on either side of
//!   80, 1 → 1 and 100 → 100, so a higher quality never gives a smaller file.
//! - Speed 6 ([`SPEED`]): 0.67x and 0.48x sharp's CPU with nasm (whole pipeline). Preset 5 gave the
//!   same bytes here; 7 saved a fifth of the CPU for 1-5% more bytes at equal SSIM; 9 halved it
//!   again, but at sharp's SSIM its W8 was 1.10x sharp's bytes. AVIF is asked for to save bytes.
//! - 8-bit AV1, as sharp writes: 10-bit cost 1.6x the CPU for +0.0005 SSIM.
//! - 4:4:4 chroma (ravif writes nothing else, and it is sharp's default): no colour bleeding at edges.
//! - One thread: the service runs each encode on its own CPU pool, one image per worker. (ravif is
//!   built without its `threading` feature, so rav1e has no thread pool of its own either.)
//! - Alpha is its own monochrome AV1 item, written only when some pixel is not opaque (an alpha
//!   channel that carries nothing is dropped, as the PNG path drops it), at cavif's alpha quality, a
//!   little above the colour's: alpha artefacts show as halos. Colour under fully transparent pixels
//!   is smoothed (ravif's `UnassociatedClean`): fewer bytes, nothing visible changes.

use ravif::{AlphaColorMode, BitDepth, Encoder, Img, MatrixCoefficients, PixelRange};
use rgb::FromSlice;

use super::{Layout, PipelineError, Pixels};

/// rav1e speed preset, 1 (slowest) to 10.
const SPEED: u8 = 6;

/// sizer's default quality, and ravif's quality that it maps to.
const DEFAULT: f32 = 80.0;
const AT_DEFAULT: f32 = 65.0;

/// ravif's quality (1-100, its own scale) for sizer's `quality` (1-100): 1 at 1, [`AT_DEFAULT`] at
/// sizer's default, 100 at 100, linear in between.
fn ravif_quality(quality: u8) -> f32 {
    let q = f32::from(quality.clamp(1, 100));
    let mapped = if q <= DEFAULT {
        1.0 + (q - 1.0) * (AT_DEFAULT - 1.0) / (DEFAULT - 1.0)
    } else {
        AT_DEFAULT + (q - DEFAULT) * (100.0 - AT_DEFAULT) / (100.0 - DEFAULT)
    };
    mapped.clamp(1.0, 100.0)
}

/// Alpha quality for a colour quality on ravif's scale: cavif's rule, a little higher and capped at 100.
fn alpha_quality(color: f32) -> f32 {
    ((color + 100.0) / 2.0)
        .min(color + color / 4.0 + 2.0)
        .clamp(1.0, 100.0)
}

/// Encodes 8-bit Gray, RGB or RGBA pixels as an AVIF file at sizer's `quality` (1-100).
pub fn encode_avif(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let (width, height) = (pixels.width as usize, pixels.height as usize);
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(pixels.layout.channels()));
    if width == 0 || height == 0 || expected != Some(pixels.data.len()) {
        return Err(PipelineError::Encode(format!(
            "avif: {} bytes for {}x{} {:?}",
            pixels.data.len(),
            pixels.width,
            pixels.height,
            pixels.layout
        )));
    }
    let color = ravif_quality(quality);
    let encoder = Encoder::new()
        .with_quality(color)
        .with_alpha_quality(alpha_quality(color))
        .with_speed(SPEED)
        .with_bit_depth(BitDepth::Eight)
        .with_alpha_color_mode(AlphaColorMode::UnassociatedClean)
        .with_num_threads(Some(1));
    let encoded = match pixels.layout {
        Layout::Rgb => encoder.encode_rgb(Img::new(pixels.data.as_rgb(), width, height)),
        // ravif itself writes no alpha item when every pixel is opaque (an alpha channel that carries
        // nothing, as the PNG path drops it); the test below holds it to that.
        Layout::Rgba => encoder.encode_rgba(Img::new(pixels.data.as_rgba(), width, height)),
        // Grey is luma with neutral chroma, which AV1 codes in next to nothing: no RGB expansion and
        // colour conversion, the grey values go straight into the Y plane (full range, so Y = grey).
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
    use crate::pipeline::Job;
    use crate::pipeline::probe::{self, Format};

    /// A textured test picture: gradients, a hard edge and deterministic noise, so the encoder has
    /// something to spend bytes on. Alpha, where asked for: opaque in the left half, 128 in the third
    /// quarter, transparent in the last.
    fn picture(layout: Layout, width: u32, height: u32) -> Pixels {
        let mut seed = 0x2545_f491_u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 24) as u8
        };
        let mut data = Vec::with_capacity((width * height) as usize * layout.channels());
        for y in 0..height {
            for x in 0..width {
                let edge = if x > width / 3 && y > height / 2 {
                    90
                } else {
                    0
                };
                let r = ((x * 200 / width) as u8)
                    .wrapping_add(noise())
                    .wrapping_add(edge);
                let g = ((y * 200 / height) as u8).wrapping_add(noise());
                let b = (((x + y) * 100 / (width + height)) as u8).wrapping_add(noise());
                let a = match x * 4 / width {
                    0 | 1 => 255,
                    2 => 128,
                    _ => 0,
                };
                match layout {
                    Layout::Gray => data.push(g),
                    Layout::Rgb => data.extend_from_slice(&[r, g, b]),
                    Layout::Rgba => data.extend_from_slice(&[r, g, b, a]),
                }
            }
        }
        Pixels {
            width,
            height,
            layout,
            data,
        }
    }

    /// The container and the AV1 sequence headers, read by an independent parser (avif-parse).
    fn parsed(avif: &[u8]) -> avif_parse::AvifData {
        avif_parse::read_avif(&mut &avif[..]).expect("avif-parse reads our AVIF")
    }

    #[test]
    fn output_sniffs_and_probes_to_its_size() {
        for layout in [Layout::Gray, Layout::Rgb, Layout::Rgba] {
            for (w, h) in [(67, 43), (1, 1), (16, 130)] {
                let avif = encode_avif(&picture(layout, w, h), 80).unwrap();
                assert_eq!(
                    Format::sniff(&avif),
                    Some(Format::Avif),
                    "{layout:?} {w}x{h}"
                );
                let info = probe::probe(&avif).unwrap();
                assert_eq!(
                    (info.format, info.width, info.height),
                    (Format::Avif, w, h),
                    "{layout:?} {w}x{h}"
                );
                let av1 = parsed(&avif).primary_item_metadata().unwrap();
                assert_eq!(
                    (av1.max_frame_width.get(), av1.max_frame_height.get()),
                    (w, h)
                );
                assert!(av1.still_picture);
                assert_eq!(av1.bit_depth, 8);
                assert_eq!(av1.chroma_subsampling, (false, false), "4:4:4");
            }
        }
    }

    #[test]
    fn alpha_is_kept_as_an_auxiliary_image() {
        let avif = encode_avif(&picture(Layout::Rgba, 64, 48), 80).unwrap();
        let data = parsed(&avif);
        assert!(!data.premultiplied_alpha);
        let alpha = data.alpha_item_metadata().unwrap().expect("an alpha item");
        assert!(alpha.monochrome, "alpha is a single-plane AV1 image");
        assert_eq!(
            (alpha.max_frame_width.get(), alpha.max_frame_height.get()),
            (64, 48)
        );
        // A half-transparent picture's alpha plane is coded, not a token few bytes.
        assert!(data.alpha_item.as_ref().is_some_and(|a| a.len() > 20));
        // The container says so too: an `auxC` property naming the alpha auxiliary type.
        let urn: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
        assert!(avif.windows(urn.len()).any(|w| w == urn));
    }

    #[test]
    fn an_alpha_channel_that_is_opaque_everywhere_is_dropped() {
        let mut pixels = picture(Layout::Rgba, 64, 48);
        pixels.data.chunks_exact_mut(4).for_each(|p| p[3] = 255);
        let avif = encode_avif(&pixels, 80).unwrap();
        assert!(parsed(&avif).alpha_item.is_none());
        // Exactly what the same pixels without the channel give.
        let rgb = Pixels {
            layout: Layout::Rgb,
            data: pixels
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            ..pixels
        };
        assert_eq!(avif, encode_avif(&rgb, 80).unwrap());
    }

    #[test]
    fn a_higher_quality_is_never_smaller() {
        let pixels = picture(Layout::Rgb, 96, 64);
        let qualities = [1, 10, 30, 50, 70, 73, 74, 75, 80, 85, 90, 95, 100];
        let sizes: Vec<usize> = qualities
            .iter()
            .map(|&q| encode_avif(&pixels, q).unwrap().len())
            .collect();
        assert!(
            sizes.windows(2).all(|s| s[0] <= s[1]),
            "sizes at qualities {qualities:?}: {sizes:?}"
        );
        assert!(sizes[0] * 3 < sizes[sizes.len() - 1], "{sizes:?}");
    }

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
                .map(|&q| alpha_quality(q))
                .all(|a| (1.0..=100.0).contains(&a))
        );
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_an_error() {
        let mut pixels = picture(Layout::Rgb, 8, 8);
        pixels.data.pop();
        assert!(matches!(
            encode_avif(&pixels, 80),
            Err(PipelineError::Encode(_))
        ));
        pixels.width = 0;
        pixels.data.clear();
        assert!(matches!(
            encode_avif(&pixels, 80),
            Err(PipelineError::Encode(_))
        ));
    }

    #[test]
    fn avif_originals_are_refused_not_decoded() {
        let avif = encode_avif(&picture(Layout::Rgb, 40, 30), 80).unwrap();
        let mut job = Job::width(20);
        job.format = crate::pipeline::OutputFormat::Fixed(Format::Jpeg);
        let err = crate::pipeline::process(&avif, &job).unwrap_err();
        assert_eq!(
            err,
            PipelineError::UnsupportedVariant("AVIF originals are not supported yet".into())
        );
    }
}
