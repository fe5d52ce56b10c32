//! Pixels to AVIF. Two AV1 encoders, chosen when sizer is built:
//! - [`aom`] (the `aom` cargo feature, which the Dockerfile and CI turn on): libaom, built from source,
//!   with libheif's still-image settings, so sizer's default AVIF is sharp's default AVIF encoded from
//!   sizer's resize. It holds issue 22's floor (SSIM never more than 0.005 below sharp's at any width).
//! - [`rav1e`] otherwise: rav1e through ravif, pure Rust (plus assembly with `nasm`), so AVIF output
//!   works on any machine that builds sizer, at up to 0.026 less SSIM than sharp at sharp's bytes.
//!
//! Both write 8-bit 4:4:4, BT.601 full range, one thread, and alpha as a monochrome auxiliary item only
//! when some pixel is not opaque; sizer's quality 80 stands for sharp's default AVIF quality in both.
//! BENCHMARKS.md has the measurements behind each setting.

#[cfg(feature = "aom")]
mod aom;
// Built with `aom`, the rav1e encoder is compiled for its tests only (ravif stays a dependency: the
// plain build needs it, and features only add).
#[cfg_attr(feature = "aom", allow(dead_code))]
mod rav1e;

use crate::pipeline::{PipelineError, Pixels};

/// The encoder this build writes AVIF with.
#[cfg(feature = "aom")]
const ENCODER: Encoder = aom::encode;
#[cfg(not(feature = "aom"))]
const ENCODER: Encoder = rav1e::encode;

type Encoder = fn(&Pixels, u8) -> Result<Vec<u8>, PipelineError>;

/// sizer's default quality, which each encoder's [`on_scale`] places at its own scale's equivalent of
/// sharp's default AVIF.
const DEFAULT_QUALITY: f32 = 80.0;

/// An encoder's own 1-100 quality for sizer's `quality` (1-100): 1 at 1, `at_default` at sizer's
/// default, 100 at 100, linear in between (so a higher quality never maps lower).
fn on_scale(quality: u8, at_default: f32) -> f32 {
    let q = f32::from(quality.clamp(1, 100));
    let mapped = if q <= DEFAULT_QUALITY {
        1.0 + (q - 1.0) * (at_default - 1.0) / (DEFAULT_QUALITY - 1.0)
    } else {
        at_default + (q - DEFAULT_QUALITY) * (100.0 - at_default) / (100.0 - DEFAULT_QUALITY)
    };
    mapped.clamp(1.0, 100.0)
}

/// The alpha plane's quality for the colour's, on the same scale: cavif's rule, a little higher (alpha
/// artefacts show as halos), capped at 100.
fn alpha_quality(colour: f32) -> f32 {
    ((colour + 100.0) / 2.0)
        .min(colour + colour / 4.0 + 2.0)
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
    ENCODER(pixels, quality)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Format, probe};
    use crate::pipeline::{Job, Layout};

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

    /// Every encoder this build has: the tests hold each to the same contract.
    fn encoders() -> Vec<(&'static str, Encoder)> {
        vec![
            ("rav1e", rav1e::encode as Encoder),
            #[cfg(feature = "aom")]
            ("aom", aom::encode as Encoder),
        ]
    }

    /// The container and the AV1 sequence headers, read by an independent parser (avif-parse).
    fn parsed(avif: &[u8]) -> avif_parse::AvifData {
        avif_parse::read_avif(&mut &avif[..]).expect("avif-parse reads our AVIF")
    }

    #[test]
    fn output_sniffs_and_probes_to_its_size() {
        for (name, encode) in encoders() {
            for layout in [Layout::Gray, Layout::Rgb, Layout::Rgba] {
                for (w, h) in [(67, 43), (1, 1), (16, 130), (2, 3)] {
                    let what = format!("{name} {layout:?} {w}x{h}");
                    let avif = encode(&picture(layout, w, h), 80).unwrap();
                    assert_eq!(Format::sniff(&avif), Some(Format::Avif), "{what}");
                    let info = probe::probe(&avif).unwrap();
                    assert_eq!(
                        (info.format, info.width, info.height),
                        (Format::Avif.into(), w, h),
                        "{what}"
                    );
                    let av1 = parsed(&avif).primary_item_metadata().unwrap();
                    assert_eq!(
                        (av1.max_frame_width.get(), av1.max_frame_height.get()),
                        (w, h),
                        "{what}"
                    );
                    assert!(av1.still_picture, "{what}");
                    assert_eq!(av1.bit_depth, 8, "{what}");
                    assert_eq!(av1.chroma_subsampling, (false, false), "4:4:4, {what}");
                    assert!(!av1.monochrome, "{what}");
                }
            }
        }
    }

    #[test]
    fn alpha_is_kept_as_an_auxiliary_image() {
        for (name, encode) in encoders() {
            let avif = encode(&picture(Layout::Rgba, 64, 48), 80).unwrap();
            let data = parsed(&avif);
            assert!(!data.premultiplied_alpha, "{name}");
            let alpha = data.alpha_item_metadata().unwrap().expect("an alpha item");
            assert!(
                alpha.monochrome,
                "{name}: alpha is a single-plane AV1 image"
            );
            assert_eq!(
                (alpha.max_frame_width.get(), alpha.max_frame_height.get()),
                (64, 48),
                "{name}"
            );
            // A half-transparent picture's alpha plane is coded, not a token few bytes.
            assert!(
                data.alpha_item.as_ref().is_some_and(|a| a.len() > 20),
                "{name}"
            );
            // The container says so too: an `auxC` property naming the alpha auxiliary type.
            let urn: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
            assert!(avif.windows(urn.len()).any(|w| w == urn), "{name}");
        }
    }

    #[test]
    fn an_alpha_channel_that_is_opaque_everywhere_is_dropped() {
        for (name, encode) in encoders() {
            let mut pixels = picture(Layout::Rgba, 64, 48);
            pixels.data.chunks_exact_mut(4).for_each(|p| p[3] = 255);
            let avif = encode(&pixels, 80).unwrap();
            assert!(parsed(&avif).alpha_item.is_none(), "{name}");
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
            assert_eq!(avif, encode(&rgb, 80).unwrap(), "{name}");
        }
    }

    /// A higher quality never gives a smaller file, beyond the encoder's own noise: at neighbouring
    /// quantizers libaom's rate-distortion choices can cost a few bytes the other way (measured: 603
    /// bytes at cq-level 33, 600 at 32 on this 96x64 picture), so one of its steps may shrink by 2 % at
    /// most; rav1e's may not shrink at all.
    #[test]
    fn a_higher_quality_is_never_smaller() {
        let pixels = picture(Layout::Rgb, 96, 64);
        let qualities = [1, 10, 30, 50, 70, 73, 74, 75, 80, 85, 90, 95, 100];
        for (name, encode) in encoders() {
            let sizes: Vec<usize> = qualities
                .iter()
                .map(|&q| encode(&pixels, q).unwrap().len())
                .collect();
            // rav1e's sizes are strictly in order; libaom's may shrink by 2 % at one step.
            let slack = if name == "aom" { 49 } else { 50 };
            assert!(
                sizes.windows(2).all(|s| s[1] * 50 >= s[0] * slack),
                "{name}: sizes at qualities {qualities:?}: {sizes:?}"
            );
            // And across two steps, never smaller at all.
            assert!(
                sizes.windows(3).all(|s| s[0] <= s[2]),
                "{name}: sizes at qualities {qualities:?}: {sizes:?}"
            );
            assert!(sizes[0] * 3 < sizes[sizes.len() - 1], "{name}: {sizes:?}");
        }
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
