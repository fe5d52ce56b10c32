//! Pixels to bytes in the original's format. Metadata is not copied: orientation is already applied.
//!
//! - JPEG: libjpeg in its libjpeg-turbo mode, baseline, 4:2:0, optimised Huffman tables, in [`jpeg`].
//! - WebP: libwebp, lossy.
//! - PNG: lossless by default, `image`'s encoder with fast deflate and adaptive filtering; an alpha channel
//!   that is opaque everywhere is dropped. [`PngMode::Palette`] writes an 8-bit palette PNG instead
//!   ([`super::palette`]): lossy unless the image has 256 colours or fewer, about a third of the bytes.
//! - GIF: `image`'s encoder (NeuQuant palette), a single frame.
//! - AVIF: libaom (the `aom` feature) or rav1e, in [`avif`].
#![allow(unsafe_code)] // FFI: libwebp's mux, through libwebp-sys.

pub mod avif;
mod jpeg;

use image::ExtendedColorType;
use image::ImageEncoder;

use super::format::Format;
use super::{Layout, PipelineError, Pixels, is_opaque, palette};

/// How PNG output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PngMode {
    /// Every pixel kept exactly (truecolour or greyscale, with alpha where the image has any).
    #[default]
    Lossless,
    /// At most 256 colours: exact when the image has that few, otherwise quantised.
    Palette,
}

pub fn encode(
    pixels: &Pixels,
    format: Format,
    quality: u8,
    png: PngMode,
) -> Result<Vec<u8>, PipelineError> {
    encode_tagged(pixels, format, quality, png, Carried::default())
}

/// Metadata written into an output, when the configuration asks for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carried<'a> {
    /// An ICC profile (`output.keep_profile`).
    pub profile: Option<&'a [u8]>,
    /// A TIFF-structured EXIF block (`output.keep_copyright`: the credits only).
    pub exif: Option<&'a [u8]>,
}

/// Whether `format` can carry an ICC profile as sizer writes it (GIF and AVIF cannot here: callers
/// convert their pixels to sRGB instead).
pub fn can_carry_profile(format: Format) -> bool {
    matches!(format, Format::Jpeg | Format::Png | Format::WebP)
}

/// As [`encode`], with `carried` metadata embedded where [`can_carry_profile`]: JPEG (APP2 ICC chunks,
/// APP1 EXIF), PNG (`iCCP`, `eXIf`), WebP (`ICCP`, `EXIF`, through libwebp's mux). GIF and AVIF carry none.
pub fn encode_tagged(
    pixels: &Pixels,
    format: Format,
    quality: u8,
    png: PngMode,
    carried: Carried<'_>,
) -> Result<Vec<u8>, PipelineError> {
    match format {
        Format::Jpeg => jpeg::encode(pixels, quality, carried),
        Format::WebP => tag_webp(encode_webp(pixels, quality)?, carried),
        Format::Png => encode_png(pixels, png, carried),
        Format::Gif => encode_gif(pixels),
        Format::Avif => avif::encode_avif(pixels, quality),
    }
}

fn encode_webp(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let expanded;
    let encoder = match pixels.layout {
        Layout::Rgb => webp::Encoder::from_rgb(&pixels.data, pixels.width, pixels.height),
        Layout::Rgba => webp::Encoder::from_rgba(&pixels.data, pixels.width, pixels.height),
        Layout::Gray => {
            expanded = pixels.data_as(Layout::Rgb);
            webp::Encoder::from_rgb(&expanded, pixels.width, pixels.height)
        }
    };
    let memory = encoder
        .encode_simple(false, f32::from(quality))
        .map_err(|e| PipelineError::Encode(format!("webp: {e:?}")))?;
    Ok(memory.to_vec())
}

fn encode_png(
    pixels: &Pixels,
    mode: PngMode,
    carried: Carried<'_>,
) -> Result<Vec<u8>, PipelineError> {
    let png_error = |e: &dyn std::fmt::Display| PipelineError::Encode(format!("png: {e}"));
    if mode == PngMode::Palette && pixels.layout != Layout::Gray {
        return encode_png_palette(pixels, carried).map_err(|e| png_error(&e));
    }
    // An alpha channel that is opaque everywhere carries nothing: a quarter of the raw bytes saved.
    let rgb;
    let (layout, data) = if pixels.layout == Layout::Rgba && is_opaque(&pixels.data) {
        rgb = pixels.data_as(Layout::Rgb);
        (Layout::Rgb, rgb.as_slice())
    } else {
        (pixels.layout, pixels.data.as_slice())
    };
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    if let Some(profile) = carried.profile {
        encoder
            .set_icc_profile(profile.to_vec())
            .map_err(|e| png_error(&e))?;
    }
    if let Some(exif) = carried.exif {
        encoder
            .set_exif_metadata(exif.to_vec())
            .map_err(|e| png_error(&e))?;
    }
    encoder
        .write_image(data, pixels.width, pixels.height, color_type(layout))
        .map_err(|e| png_error(&e))?;
    Ok(out)
}

fn encode_png_palette(
    pixels: &Pixels,
    carried: Carried<'_>,
) -> Result<Vec<u8>, png::EncodingError> {
    let rgba;
    let data = match pixels.layout {
        Layout::Rgba => pixels.data.as_slice(),
        _ => {
            rgba = pixels.data_as(Layout::Rgba);
            rgba.as_slice()
        }
    };
    let indexed = palette::quantize(data);
    let mut out = Vec::new();
    let mut info = png::Info::with_size(pixels.width, pixels.height);
    info.icc_profile = carried.profile.map(|p| p.to_vec().into());
    info.exif_metadata = carried.exif.map(|e| e.to_vec().into());
    let mut encoder = png::Encoder::with_info(&mut out, info)?;
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(
        indexed
            .palette
            .iter()
            .flat_map(|c| [c[0], c[1], c[2]])
            .collect::<Vec<u8>>(),
    );
    if !indexed.is_opaque() {
        encoder.set_trns(indexed.palette.iter().map(|c| c[3]).collect::<Vec<u8>>());
    }
    // Not `Fast`: png's fast deflate is tuned for filtered truecolour rows and leaves palette indices
    // all but uncompressed (W4: 60.7 KB against 19.3 KB at `Balanced`, ~1 ms more).
    encoder.set_compression(png::Compression::Balanced);
    // Indices are not magnitudes: differencing neighbours (the other filters) only adds entropy.
    encoder.set_filter(png::Filter::NoFilter);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&indexed.indices)?;
    writer.finish()?;
    Ok(out)
}

/// `webp` (a still or an animation, as sizer's encoders write it) with `carried`'s `ICCP` and `EXIF`
/// chunks, re-assembled by libwebp's mux (which writes the VP8X header the chunks need); as it is when
/// nothing is carried.
pub fn tag_webp(webp: Vec<u8>, carried: Carried<'_>) -> Result<Vec<u8>, PipelineError> {
    use libwebp_sys as w;
    if carried.profile.is_none() && carried.exif.is_none() {
        return Ok(webp);
    }
    let failed = |what: &str| PipelineError::Encode(format!("webp metadata: {what}"));
    let data = |bytes: &[u8]| w::WebPData {
        bytes: bytes.as_ptr(),
        size: bytes.len(),
    };
    // SAFETY: the mux copies what it is given (`copy_data = 1`) and is deleted on every path; the
    // assembled buffer is libwebp's, copied out and then freed with WebPDataClear.
    unsafe {
        let mux = w::WebPMuxCreateInternal(&data(&webp), 1, w::WEBP_MUX_ABI_VERSION as _);
        if mux.is_null() {
            return Err(failed("not a WebP the mux reads"));
        }
        let ok = w::WebPMuxError::WEBP_MUX_OK;
        let set = |fourcc: &std::ffi::CStr, bytes: Option<&[u8]>| {
            bytes.is_none_or(|b| w::WebPMuxSetChunk(mux, fourcc.as_ptr(), &data(b), 1) == ok)
        };
        let result = if !set(c"ICCP", carried.profile) || !set(c"EXIF", carried.exif) {
            Err(failed("chunk"))
        } else {
            let mut assembled = w::WebPData {
                bytes: std::ptr::null(),
                size: 0,
            };
            if w::WebPMuxAssemble(mux, &mut assembled) != ok || assembled.bytes.is_null() {
                Err(failed("assemble"))
            } else {
                let out = std::slice::from_raw_parts(assembled.bytes, assembled.size).to_vec();
                w::WebPDataClear(&mut assembled);
                Ok(out)
            }
        };
        w::WebPMuxDelete(mux);
        result
    }
}

fn encode_gif(pixels: &Pixels) -> Result<Vec<u8>, PipelineError> {
    let mut out = Vec::new();
    let rgba = pixels.data_as(Layout::Rgba);
    let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
    encoder
        .encode(&rgba, pixels.width, pixels.height, ExtendedColorType::Rgba8)
        .map_err(|e| PipelineError::Encode(format!("gif: {e}")))?;
    drop(encoder);
    Ok(out)
}

fn color_type(layout: Layout) -> ExtendedColorType {
    match layout {
        Layout::Gray => ExtendedColorType::L8,
        Layout::Rgb => ExtendedColorType::Rgb8,
        Layout::Rgba => ExtendedColorType::Rgba8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{canvas, probe};

    fn gradient(layout: Layout) -> Pixels {
        let (w, h) = (64u32, 32u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let px = [
                    (x * 4) as u8,
                    (y * 8) as u8,
                    128,
                    if x < 32 { 255 } else { 0 },
                ];
                data.extend_from_slice(&px[..layout.channels().min(4)]);
            }
        }
        if layout == Layout::Gray {
            data = (0..w * h).map(|i| (i % 256) as u8).collect();
        }
        Pixels {
            width: w,
            height: h,
            layout,
            data,
        }
    }

    #[test]
    fn every_format_round_trips_through_the_probe() {
        for (format, layout) in [
            (Format::Jpeg, Layout::Rgb),
            (Format::Jpeg, Layout::Gray),
            (Format::Png, Layout::Rgba),
            (Format::Png, Layout::Gray),
            (Format::WebP, Layout::Rgba),
            (Format::WebP, Layout::Gray),
            (Format::Gif, Layout::Rgb),
            (Format::Avif, Layout::Rgba),
            (Format::Avif, Layout::Gray),
        ] {
            let bytes = encode(&gradient(layout), format, 80, PngMode::Lossless).unwrap();
            let info = probe::probe(&bytes).unwrap();
            assert_eq!(
                (info.format, info.width, info.height),
                (format.into(), 64, 32),
                "{format:?} {layout:?}"
            );
        }
    }

    /// Decodes a JPEG with libjpeg (mozjpeg) and with zune-jpeg (the `image` crate): browsers use the
    /// former, plenty of tools the latter, and both must see the same picture.
    fn decoded_by_both(jpeg: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut libjpeg = mozjpeg::Decompress::new_mem(jpeg).unwrap().rgb().unwrap();
        let a: Vec<u8> = libjpeg.read_scanlines().unwrap();
        let b = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .into_rgb8()
            .into_raw();
        (a, b)
    }

    #[test]
    fn jpeg_output_reads_the_same_in_libjpeg_and_zune_jpeg() {
        let half_and_half = |w: u32, h: u32| Pixels {
            width: w,
            height: h,
            layout: Layout::Rgb,
            data: (0..w * h)
                .flat_map(|i| {
                    if i / w < h / 2 {
                        [0u8, 0, 0]
                    } else {
                        [255, 255, 255]
                    }
                })
                .collect(),
        };
        for pixels in [
            half_and_half(16, 32),
            half_and_half(600, 338),
            gradient(Layout::Rgb),
        ] {
            let jpeg = encode(&pixels, Format::Jpeg, 80, PngMode::Lossless).unwrap();
            let (a, b) = decoded_by_both(&jpeg);
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0);
            assert!(
                worst <= 8,
                "{}x{}: decoders differ by up to {worst}",
                pixels.width,
                pixels.height
            );
        }
    }

    #[test]
    fn png_keeps_alpha() {
        let bytes = encode(&gradient(Layout::Rgba), Format::Png, 80, PngMode::Lossless).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(decoded.get_pixel(0, 0)[3], 255);
        assert_eq!(decoded.get_pixel(63, 0)[3], 0);
    }

    fn png_color_type(png: &[u8]) -> u8 {
        // IHDR is the first chunk: 8 signature + 4 length + 4 type + 4 width + 4 height + 1 depth.
        png[25]
    }

    #[test]
    fn lossless_png_drops_an_alpha_channel_that_is_opaque_everywhere() {
        let mut pixels = gradient(Layout::Rgba);
        pixels.data.chunks_exact_mut(4).for_each(|p| p[3] = 255);
        let bytes = encode(&pixels, Format::Png, 80, PngMode::Lossless).unwrap();
        assert_eq!(png_color_type(&bytes), 2, "truecolour without alpha");
        let decoded = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(decoded.into_raw(), pixels.data, "still lossless");

        let with_alpha =
            encode(&gradient(Layout::Rgba), Format::Png, 80, PngMode::Lossless).unwrap();
        assert_eq!(png_color_type(&with_alpha), 6, "truecolour with alpha");
    }

    #[test]
    fn palette_png_is_indexed_and_keeps_alpha() {
        let pixels = gradient(Layout::Rgba);
        let bytes = encode(&pixels, Format::Png, 80, PngMode::Palette).unwrap();
        assert_eq!(png_color_type(&bytes), 3, "indexed colour");
        let decoded = image::load_from_memory(&bytes).unwrap().into_rgba8();
        assert_eq!(decoded.get_pixel(0, 0)[3], 255);
        assert_eq!(decoded.get_pixel(63, 0)[3], 0);
        assert!(bytes.windows(4).any(|w| w == b"tRNS"));

        let rgb = encode(&gradient(Layout::Rgb), Format::Png, 80, PngMode::Palette).unwrap();
        assert_eq!(png_color_type(&rgb), 3);
        assert!(
            !rgb.windows(4).any(|w| w == b"tRNS"),
            "an opaque palette has no tRNS"
        );
    }

    #[test]
    fn flattening_blends_on_white() {
        assert_eq!(
            canvas::blend_onto(
                &[0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 128],
                canvas::Rgb::WHITE
            ),
            vec![255, 255, 255, 0, 0, 0, 255, 127, 127]
        );
    }
}
