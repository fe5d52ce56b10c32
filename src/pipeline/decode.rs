//! Bytes to pixels. JPEG goes through libjpeg-turbo (mozjpeg) and is decoded directly at the smallest
//! DCT scale (n/8) that still covers the target size: most of the cost of a large JPEG is skipped.
//! WebP goes through libwebp, whose decoder rescales while it decodes, so the full-size image is never
//! held. PNG, GIF (first frame) and animated WebP (first frame) go through the `image` crate. AVIF
//! originals are refused (`UnsupportedVariant`, HTTP 415): sizer writes AVIF but has no AV1 decoder.
//!
//! Corrupt data is an error, never grey pixels: libjpeg's warnings about missing or damaged data (a
//! truncated file, a corrupt segment) abort the decode, as sharp does by default; warnings about complete
//! but oddly framed data (stray bytes before a marker) do not (see `is_benign_warning`).
#![allow(unsafe_code)] // FFI: libjpeg (mozjpeg-sys).

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::DynamicImage;
use mozjpeg::{ColorSpace, Decompress};

use super::probe::{Format, ImageInfo};
use super::{Layout, PipelineError, Pixels};

/// What a decoder delivers: decoding the same bytes at the same scale gives the same pixels, so a scale
/// names a decoded original (the shared decode cache keys on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// JPEG at n/8 of the stored size (libjpeg's DCT scaling), n in 1..=8.
    Eighths(u8),
    /// WebP rescaled by libwebp while decoding, to exactly this size.
    Exact(u32, u32),
    /// The stored size (PNG, GIF, animated WebP).
    Full,
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scale::Eighths(n) => write!(f, "{n}/8"),
            Scale::Exact(w, h) => write!(f, "{w}x{h}"),
            Scale::Full => f.write_str("full"),
        }
    }
}

/// The scale at which `info`'s image decodes to at least `target_w`×`target_h` (stored frame), or its
/// full size.
pub fn scale_for(info: &ImageInfo, target_w: u32, target_h: u32) -> Scale {
    match info.format {
        Format::Jpeg => Scale::Eighths(jpeg_scale_numerator(
            info.width,
            info.height,
            target_w,
            target_h,
        )),
        Format::WebP => {
            let size = webp_decode_size(info.width, info.height, target_w, target_h);
            if size == (info.width, info.height) {
                Scale::Full
            } else {
                Scale::Exact(size.0, size.1)
            }
        }
        _ => Scale::Full,
    }
}

/// How many decoded pixels one stored pixel of `info`'s image became, per axis, for a decode of
/// `decoded_w`×`decoded_h`: what maps a region of the original onto the decoded image.
///
/// Not the ratio of the sizes for a DCT-scaled JPEG: libjpeg rounds a scaled size up (2000x1250 at 1/4
/// is 500x313), and the last row or column is part padding. Taking 313/1250 for the scale stretched
/// every output by up to a pixel's worth towards its far edge (0.2 px on average at 1/4, 0.75 at 1/8),
/// which cost up to 0.06 SSIM against sharp on sharp-edged photos (`bench/sweep.py`, issue 22): the
/// scale is n/8 exactly, recovered from the decoded size ([`jpeg_scaled_size`] grows with n by at least
/// one pixel a step once a side is 8 px or more). An image under 8 px on both sides, whose scaled sizes
/// repeat (4 px is 4 at both 7/8 and 8/8), keeps the ratio of the sizes: the recovery would be a guess.
pub fn content_scale(info: &ImageInfo, decoded_w: u32, decoded_h: u32) -> (f64, f64) {
    let ratio = (
        f64::from(decoded_w) / f64::from(info.width.max(1)),
        f64::from(decoded_h) / f64::from(info.height.max(1)),
    );
    if info.format != Format::Jpeg || info.width.max(info.height) < 8 {
        // WebP is rescaled to exactly its size; the rest decode at full size.
        return ratio;
    }
    (1..=8u8)
        .find(|&n| {
            jpeg_scaled_size(info.width, n) == u64::from(decoded_w)
                && jpeg_scaled_size(info.height, n) == u64::from(decoded_h)
        })
        .map_or(ratio, |n| (f64::from(n) / 8.0, f64::from(n) / 8.0))
}

/// A side of `size` pixels decoded by libjpeg at n/8: rounded up, ceil(size * n / 8).
pub fn jpeg_scaled_size(size: u32, n: u8) -> u64 {
    (u64::from(size) * u64::from(n)).div_ceil(8)
}

/// Decodes `src` at `scale` (see [`scale_for`]), in the stored frame. `profile` is the image's embedded
/// ICC profile: a CMYK JPEG is converted to sRGB here, through it when it is a CMYK profile (RGB images
/// are converted by the caller, see `colour`).
pub fn decode(
    src: &[u8],
    info: &ImageInfo,
    scale: Scale,
    profile: Option<&[u8]>,
) -> Result<Pixels, PipelineError> {
    match info.format {
        Format::Jpeg => decode_jpeg(
            src,
            info,
            match scale {
                Scale::Eighths(n) => n.clamp(1, 8),
                _ => 8,
            },
            profile,
        ),
        Format::Png => decode_with_image(src, info, image::ImageFormat::Png),
        Format::WebP => decode_webp(
            src,
            info,
            match scale {
                Scale::Exact(w, h) => (w, h),
                _ => (info.width, info.height),
            },
        ),
        Format::Gif => decode_with_image(src, info, image::ImageFormat::Gif),
        // No AV1 decoder in the build (dav1d is C and libaom large); AVIF is written, not read.
        Format::Avif => Err(PipelineError::UnsupportedVariant(
            "AVIF originals are not supported yet".into(),
        )),
    }
}

/// How much larger than the target a DCT-scaled decode must be, so that the final Lanczos step still has
/// detail to work with. Landing at or just above the target (no headroom) cost up to 0.021 SSIM against
/// libvips (path.jpg at 639 px, decoded at 1/4 = 640). Measured with `bench/sweep.py` (every width from 64
/// px to full size, four photos), two cases differ:
/// - at 1/8 libjpeg keeps only each block's DC coefficient, an exact 8x8 area average: 1.25 is enough
///   (worst gap −0.0015), and it keeps W1's decode at 754 px for 600;
/// - at 2/8 to 7/8 the reduced IDCT is softer than Lanczos from full size: at 1.25 the gaps reached
///   −0.0059 (path at 896 px from 4/8, ratio 1.43; picos at 1256 px, 1.30; kleiber at 3968 px, 1.33).
///   1.5 closes them, at the price of a larger decode for some widths (W3 picos 900 px: 4/8 instead of
///   3/8; W5 dragonfly 1600 px: 5/8 instead of 4/8).
///
/// Those gaps were measured before [`content_scale`] mapped a scaled decode at its true scale: part of
/// them was the stretch it removed. Re-checked after that fix on the corpus (issue 22), these headrooms
/// hold the floor with margin (worst −0.0004 on 2000 px web exports); smaller ones are the speed work's
/// to measure.
const JPEG_HEADROOM_DC: f64 = 1.25;
const JPEG_HEADROOM: f64 = 1.5;

/// The smallest numerator n in 1..=8 for which the image decoded at n/8 is at least the target size times
/// the headroom for that scale ([`JPEG_HEADROOM_DC`] at 1/8, [`JPEG_HEADROOM`] above). libjpeg rounds
/// scaled sizes up: ceil(size * n / 8).
pub fn jpeg_scale_numerator(src_w: u32, src_h: u32, target_w: u32, target_h: u32) -> u8 {
    let need = |target: u32, n: u8| {
        let headroom = if n == 1 {
            JPEG_HEADROOM_DC
        } else {
            JPEG_HEADROOM
        };
        (f64::from(target) * headroom).ceil() as u64
    };
    (1..=8u8)
        .find(|&n| {
            jpeg_scaled_size(src_w, n) >= need(target_w, n)
                && jpeg_scaled_size(src_h, n) >= need(target_h, n)
        })
        .unwrap_or(8)
}

/// The limits were checked against the size the probe read; a decoder that reads another from the same
/// bytes (two parsers disagreeing about a crafted header) must not decode it.
fn same_size(info: &ImageInfo, decoder: (u64, u64)) -> Result<(), PipelineError> {
    if decoder == (u64::from(info.width), u64::from(info.height)) {
        return Ok(());
    }
    Err(PipelineError::Undecodable(format!(
        "the decoder reads {}x{} where the header said {}x{}",
        decoder.0, decoder.1, info.width, info.height
    )))
}

fn decode_jpeg(
    src: &[u8],
    info: &ImageInfo,
    numerator: u8,
    profile: Option<&[u8]>,
) -> Result<Pixels, PipelineError> {
    // libjpeg reports errors by unwinding out of the C code (the mozjpeg crate's contract).
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Pixels, PipelineError> {
        if numerator == 1 {
            // `None`: not progressive, so the DC values are interleaved with everything else.
            if let Some(pixels) = progressive_dc_only(src, info)? {
                return Ok(pixels);
            }
        }
        let mut decoder = Decompress::with_err(strict_error_mgr())
            .from_mem(src)
            .map_err(undecodable)?;
        let (width, height) = decoder.size();
        same_size(
            info,
            (
                u64::try_from(width).unwrap_or(u64::MAX),
                u64::try_from(height).unwrap_or(u64::MAX),
            ),
        )?;
        decoder.scale(numerator);
        let cmyk = matches!(
            decoder.color_space(),
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
        );
        let layout = match decoder.color_space() {
            ColorSpace::JCS_GRAYSCALE => Layout::Gray,
            _ => Layout::Rgb,
        };
        let mut started = match decoder.color_space() {
            ColorSpace::JCS_GRAYSCALE => decoder.grayscale(),
            // libjpeg turns YCCK into CMYK; the rest is ours (see `cmyk`).
            _ if cmyk => decoder.to_colorspace(ColorSpace::JCS_CMYK),
            _ => decoder.rgb(),
        }
        .map_err(undecodable)?;
        let (width, height) = (started.width(), started.height());
        let data = started.read_scanlines::<u8>().map_err(undecodable)?;
        started.finish().map_err(undecodable)?;
        let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
            return Err(PipelineError::Undecodable("dimensions out of range".into()));
        };
        let channels = if cmyk { 4 } else { layout.channels() };
        if data.len() != width as usize * height as usize * channels {
            return Err(PipelineError::Undecodable(
                "fewer scanlines than the header announced".into(),
            ));
        }
        let data = if cmyk {
            super::cmyk::to_rgb(data, super::cmyk::adobe_inverted(src), profile)
        } else {
            data
        };
        Ok(Pixels {
            width,
            height,
            layout,
            data,
        })
    }));
    result.unwrap_or_else(|panic| Err(PipelineError::Undecodable(panic_message(panic))))
}

/// At 1/8 scale every 8x8 block becomes one pixel, its DC coefficient: nothing else is read. A progressive
/// JPEG sends the DC coefficients of the whole image in its first scan(s), so libjpeg's buffered-image mode
/// can output the 1/8 image as soon as those arrive and skip the AC scans, most of the file. (A DC scan
/// sent with a point transform lacks the lowest bit of each DC value until its refinement scan, an error
/// of at most one step of the DC quantiser, invisible at thumbnail size.)
///
/// `None` when the file is not progressive. Must run inside `catch_unwind` (libjpeg errors unwind).
fn progressive_dc_only(src: &[u8], info: &ImageInfo) -> Result<Option<Pixels>, PipelineError> {
    use mozjpeg_sys::*;
    const JPEG_REACHED_EOI: i32 = 2;
    const JPEG_SCAN_COMPLETED: i32 = 4;

    /// Frees libjpeg's memory also when an error unwinds through here.
    struct Decompressor {
        cinfo: Box<jpeg_decompress_struct>,
        _err: Box<jpeg_error_mgr>,
    }
    impl Drop for Decompressor {
        fn drop(&mut self) {
            // SAFETY: created by jpeg_create_decompress below; destroy is valid in any state.
            unsafe { jpeg_destroy_decompress(&mut self.cinfo) };
        }
    }

    let size = std::os::raw::c_ulong::try_from(src.len())
        .map_err(|_| PipelineError::Undecodable("too large".into()))?;
    // SAFETY: the structs are zeroed then initialised by libjpeg itself; `src` outlives the decompressor;
    // the scanline pointers handed to jpeg_read_scanlines point into `data`, one row of output_width *
    // output_components bytes each, which is the size libjpeg writes.
    unsafe {
        let mut err = Box::new(strict_error_mgr());
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(std::mem::zeroed());
        cinfo.common.err = &mut *err;
        jpeg_create_decompress(&mut *cinfo);
        let mut d = Decompressor { cinfo, _err: err };
        let cinfo = &mut *d.cinfo;
        jpeg_mem_src(cinfo, src.as_ptr(), size);
        jpeg_read_header(cinfo, 1);
        same_size(info, (cinfo.image_width.into(), cinfo.image_height.into()))?;
        if jpeg_has_multiple_scans(cinfo) == 0 {
            return Ok(None);
        }
        let layout = match cinfo.jpeg_color_space {
            J_COLOR_SPACE::JCS_GRAYSCALE => Layout::Gray,
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => return Ok(None),
            _ => Layout::Rgb,
        };
        cinfo.out_color_space = if layout == Layout::Gray {
            J_COLOR_SPACE::JCS_GRAYSCALE
        } else {
            J_COLOR_SPACE::JCS_RGB
        };
        cinfo.scale_num = 1;
        cinfo.scale_denom = 8;
        cinfo.buffered_image = 1;
        cinfo.do_block_smoothing = 0;
        jpeg_start_decompress(cinfo);
        // coef_bits[c][k] is -1 until some scan has delivered coefficient k of component c; it exists
        // only for progressive files (multi-scan sequential files have none: not our case).
        let coef_bits = cinfo.coef_bits as *const [std::os::raw::c_int; 64];
        if coef_bits.is_null() {
            return Ok(None);
        }
        let components = usize::try_from(cinfo.num_components).unwrap_or(0);
        let dc_complete = || (0..components).all(|c| (*coef_bits.add(c))[0] >= 0);
        loop {
            match jpeg_consume_input(cinfo) {
                JPEG_REACHED_EOI => break,
                JPEG_SCAN_COMPLETED if dc_complete() => break,
                _ => {}
            }
        }
        if !dc_complete() {
            return Err(PipelineError::Undecodable(
                "progressive JPEG without DC coefficients".into(),
            ));
        }
        jpeg_start_output(cinfo, cinfo.input_scan_number);
        let (width, height) = (cinfo.output_width, cinfo.output_height);
        let row = width as usize * layout.channels();
        let mut data = vec![0u8; row * height as usize];
        while cinfo.output_scanline < height {
            let start = cinfo.output_scanline as usize * row;
            let mut line = data[start..].as_mut_ptr();
            if jpeg_read_scanlines(cinfo, &mut line, 1) != 1 {
                return Err(PipelineError::Undecodable("short read of scanlines".into()));
            }
        }
        // The rest of the file (the AC scans) is deliberately not read.
        jpeg_abort_decompress(cinfo);
        Ok(Some(Pixels {
            width,
            height,
            layout,
            data,
        }))
    }
}

/// libjpeg's standard error manager, but warnings unwind like errors instead of being printed.
fn strict_error_mgr() -> mozjpeg_sys::jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is a plain C struct for which all-zero is a valid state, and jpeg_std_error
    // fills in every field it uses before we override the two handlers.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a live, writable jpeg_error_mgr; jpeg_std_error only stores into it.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(unwind_on_warning);
    err
}

unsafe extern "C-unwind" fn unwind_on_error(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(libjpeg_message(cinfo)));
}

unsafe extern "C-unwind" fn unwind_on_warning(
    cinfo: &mut mozjpeg_sys::jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    // level < 0 is a warning ("corrupt data", "premature end of data"); >= 0 are trace messages.
    // SAFETY: `err` points at the error manager we installed.
    let code = unsafe { cinfo.err.as_ref() }.map_or(-1, |e| e.msg_code);
    if level < 0 && !is_benign_warning(code) {
        std::panic::resume_unwind(Box::new(libjpeg_message(cinfo)));
    }
}

/// libjpeg warnings about data that is complete but oddly framed, which every browser shows: stray bytes
/// between segments or before the end marker (cameras, scanners and MJPEG frames write them), an unknown
/// JFIF revision or Adobe transform code, a malformed ICC marker (profiles are read by `colour`, which
/// ignores a bad one). Every other warning means data is missing or damaged (premature end of file or of
/// a segment, a bad Huffman or arithmetic code, a broken progression) and stays an error: a truncated
/// file must never become a half-grey variant a CDN keeps for a year.
fn is_benign_warning(code: mozjpeg_sys::J_MESSAGE_CODE) -> bool {
    matches!(
        code,
        mozjpeg_sys::JWRN_EXTRANEOUS_DATA
            | mozjpeg_sys::JWRN_JFIF_MAJOR
            | mozjpeg_sys::JWRN_ADOBE_XFORM
            | mozjpeg_sys::JWRN_BOGUS_ICC
    )
}

fn libjpeg_message(cinfo: &mut mozjpeg_sys::jpeg_common_struct) -> String {
    type FormatFn = unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, &[u8; 80]);
    type FormatFnMut =
        unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, &mut [u8; 80]);
    let mut buffer = [0u8; 80];
    // SAFETY: `err` points at the error manager we installed. The binding declares the buffer `&[u8; 80]`
    // but libjpeg writes into it (at most JMSG_LENGTH_MAX = 80 bytes, NUL-terminated), so it is called
    // through the same ABI with a mutable reference, as the mozjpeg crate itself does.
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "libjpeg error".into();
        };
        let code = err.msg_code;
        let Some(format) = err.format_message else {
            return format!("libjpeg error {code}");
        };
        let format = std::mem::transmute::<FormatFn, FormatFnMut>(format);
        format(cinfo, &mut buffer);
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

pub(super) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "decoder failed".into(), |s| (*s).to_string()),
    }
}

fn undecodable(e: std::io::Error) -> PipelineError {
    PipelineError::Undecodable(e.to_string())
}

/// Size libwebp decodes to: twice the target, so the final Lanczos3 step still has detail to work with
/// (libwebp's own rescaler is an area average), or the full size when that is smaller.
pub fn webp_decode_size(src_w: u32, src_h: u32, target_w: u32, target_h: u32) -> (u32, u32) {
    let (w, h) = (target_w.saturating_mul(2), target_h.saturating_mul(2));
    if w >= src_w || h >= src_h {
        (src_w, src_h)
    } else {
        (w, h)
    }
}

fn decode_webp(
    src: &[u8],
    info: &ImageInfo,
    (width, height): (u32, u32),
) -> Result<Pixels, PipelineError> {
    use libwebp_sys as webp;
    let status_error = |what: &str, status: webp::VP8StatusCode| {
        PipelineError::Undecodable(format!("webp {what}: {status:?}"))
    };
    // SAFETY: plain C structs, initialised by libwebp's own init function before use; `src` outlives the
    // calls; the output buffer is ours (`is_external_memory`), sized exactly for stride * height bytes.
    unsafe {
        let mut config: webp::WebPDecoderConfig = std::mem::zeroed();
        if webp::WebPInitDecoderConfigInternal(&mut config, webp::WEBP_DECODER_ABI_VERSION as i32)
            == 0
        {
            return Err(PipelineError::Undecodable(
                "libwebp version mismatch".into(),
            ));
        }
        let status = webp::WebPGetFeatures(src.as_ptr(), src.len(), &mut config.input);
        if status != webp::VP8StatusCode::VP8_STATUS_OK {
            return Err(status_error("header", status));
        }
        same_size(
            info,
            (
                u64::try_from(config.input.width).unwrap_or(0),
                u64::try_from(config.input.height).unwrap_or(0),
            ),
        )?;
        if config.input.has_animation != 0 {
            return decode_with_image(src, info, image::ImageFormat::WebP);
        }
        let layout = if config.input.has_alpha != 0 {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        let full = (
            u32::try_from(config.input.width).unwrap_or(0),
            u32::try_from(config.input.height).unwrap_or(0),
        );
        if (width, height) != full {
            config.options.use_scaling = 1;
            config.options.scaled_width = width as i32;
            config.options.scaled_height = height as i32;
        }
        let stride = width as usize * layout.channels();
        let mut data = vec![0u8; stride * height as usize];
        config.output.colorspace = if layout == Layout::Rgba {
            webp::WEBP_CSP_MODE::MODE_RGBA
        } else {
            webp::WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA = webp::WebPRGBABuffer {
            rgba: data.as_mut_ptr(),
            stride: stride as i32,
            size: data.len(),
        };
        let status = webp::WebPDecode(src.as_ptr(), src.len(), &mut config);
        webp::WebPFreeDecBuffer(&mut config.output);
        if status != webp::VP8StatusCode::VP8_STATUS_OK {
            return Err(status_error("data", status));
        }
        Ok(Pixels {
            width,
            height,
            layout,
            data,
        })
    }
}

/// What a decoder may allocate beyond the pixels its header declares: room for an ICC profile, text and
/// the codec's own state, not for a bomb hidden in them.
const METADATA_ALLOWANCE: u64 = 16 << 20;

fn decode_with_image(
    src: &[u8],
    info: &ImageInfo,
    format: image::ImageFormat,
) -> Result<Pixels, PipelineError> {
    // The decoder must see the size the limits were checked against, and may allocate what that size needs
    // at 16 bits per RGBA channel plus the allowance (the image crate's default, 512 MiB, stays the
    // ceiling): a GIF frame larger than its screen or an iCCP chunk inflating to hundreds of megabytes is
    // refused (the profile is dropped) instead of allocated.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(info.width);
    limits.max_image_height = Some(info.height);
    let declared = u64::from(info.width) * u64::from(info.height) * 8;
    limits.max_alloc = limits
        .max_alloc
        .map(|ceiling| ceiling.min(declared + METADATA_ALLOWANCE));
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(src), format);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Unsupported(u) => PipelineError::UnsupportedVariant(u.to_string()),
        image::ImageError::Limits(l) => {
            PipelineError::Undecodable(format!("{l} for a {}x{} image", info.width, info.height))
        }
        other => PipelineError::Undecodable(other.to_string()),
    })?;
    let (width, height) = (image.width(), image.height());
    let (layout, data) = match image {
        DynamicImage::ImageLuma8(buf) => (Layout::Gray, buf.into_raw()),
        DynamicImage::ImageRgb8(buf) => (Layout::Rgb, buf.into_raw()),
        DynamicImage::ImageRgba8(buf) => (Layout::Rgba, buf.into_raw()),
        other if other.color().has_alpha() => (Layout::Rgba, other.into_rgba8().into_raw()),
        other if other.color().has_color() => (Layout::Rgb, other.into_rgb8().into_raw()),
        other => (Layout::Gray, other.into_luma8().into_raw()),
    };
    Ok(Pixels {
        width,
        height,
        layout,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A progressive JPEG of a smooth gradient, through libjpeg's own encoder.
    fn progressive_jpeg(width: usize, height: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                [
                    (i % width * 255 / width) as u8,
                    (i / width * 255 / height) as u8,
                    90,
                ]
            })
            .collect();
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        compress.set_size(width, height);
        compress.set_quality(85.0);
        compress.set_progressive_mode();
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&data).unwrap();
        started.finish().unwrap()
    }

    fn full_scan_decode_at_eighth(src: &[u8]) -> Vec<u8> {
        let mut d = Decompress::with_err(strict_error_mgr())
            .from_mem(src)
            .unwrap();
        d.scale(1);
        let mut s = d.rgb().unwrap();
        let v: Vec<u8> = s.read_scanlines().unwrap();
        s.finish().unwrap();
        v
    }

    #[test]
    fn progressive_dc_only_matches_a_full_decode_at_an_eighth() {
        let src = progressive_jpeg(640, 480);
        let info = crate::pipeline::probe::probe(&src).unwrap();
        let fast = catch_unwind(|| progressive_dc_only(&src, &info))
            .unwrap()
            .unwrap()
            .expect("progressive");
        assert_eq!(
            (fast.width, fast.height, fast.layout),
            (80, 60, Layout::Rgb)
        );
        let reference = full_scan_decode_at_eighth(&src);
        let worst = fast
            .data
            .iter()
            .zip(&reference)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 6,
            "DC-only output differs from the full decode by up to {worst}"
        );
    }

    #[test]
    fn progressive_dc_only_leaves_baseline_files_alone() {
        let baseline = crate::pipeline::flat_image(Format::Jpeg, 64, 64, 100);
        let info = crate::pipeline::probe::probe(&baseline).unwrap();
        assert!(
            catch_unwind(|| progressive_dc_only(&baseline, &info))
                .unwrap()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_ac_scans_are_not_read_at_an_eighth() {
        // Cut in the AC scans: the full-scan decoder reports the truncation, the DC-only path never gets there.
        let src = progressive_jpeg(640, 480);
        let cut = &src[..src.len() * 6 / 10];
        let info = crate::pipeline::probe::probe(&src).unwrap();
        assert!(catch_unwind(|| full_scan_decode_at_eighth(cut)).is_err());
        let fast = catch_unwind(|| progressive_dc_only(cut, &info))
            .unwrap()
            .unwrap()
            .expect("progressive");
        assert_eq!((fast.width, fast.height), (80, 60));
    }

    #[test]
    fn decode_takes_the_dc_only_path_for_progressive_thumbnails() {
        // Through the public entry point: a file cut in its AC scans still decodes at 1/8 ...
        let src = progressive_jpeg(640, 480);
        let cut = &src[..src.len() * 6 / 10];
        let info = crate::pipeline::probe::probe(&src).unwrap();
        // (A 64x48 target: with the headroom, 1/8 = 80x60 is the scale that covers it.)
        assert_eq!(
            decode(cut, &info, scale_for(&info, 64, 48), None)
                .unwrap()
                .width,
            80
        );
        // ... and is refused as soon as a larger scale needs the AC coefficients it lacks.
        assert!(matches!(
            decode(cut, &info, scale_for(&info, 160, 120), None),
            Err(PipelineError::Undecodable(_))
        ));
    }

    #[test]
    fn progressive_file_cut_before_its_dc_scan_ends_is_undecodable() {
        let src = progressive_jpeg(640, 480);
        let info = crate::pipeline::probe::probe(&src).unwrap();
        // Keep the headers and a sliver of the first scan only.
        let cut = &src[..src.len() / 20];
        assert!(matches!(
            decode(cut, &info, scale_for(&info, 80, 60), None),
            Err(PipelineError::Undecodable(_))
        ));
    }

    /// A baseline JPEG of a gradient.
    fn baseline_jpeg(width: usize, height: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..width * height)
            .flat_map(|i| [(i % width * 255 / width) as u8, 120, (i / width) as u8])
            .collect();
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        compress.set_size(width, height);
        compress.set_quality(85.0);
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&data).unwrap();
        started.finish().unwrap()
    }

    /// The offset of the first occurrence of marker `m` (0xFF m).
    fn marker_at(jpeg: &[u8], m: u8) -> usize {
        jpeg.windows(2).position(|w| w == [0xFF, m]).unwrap()
    }

    #[test]
    fn stray_bytes_between_segments_are_served_but_missing_data_is_not() {
        let src = baseline_jpeg(320, 240);
        let info = crate::pipeline::probe::probe(&src).unwrap();
        let decodes = |bytes: &[u8]| decode(bytes, &info, Scale::Eighths(8), None);
        // Padding before the quantisation tables and before the end marker, as cameras write it.
        let mut padded = src.clone();
        let eoi = padded.len() - 2;
        padded.splice(eoi..eoi, [0u8, 0, 0, 0x17]);
        let dqt = marker_at(&padded, 0xDB);
        padded.splice(dqt..dqt, [0u8; 5]);
        let pixels = decodes(&padded).expect("complete but oddly framed data is served");
        assert_eq!((pixels.width, pixels.height), (320, 240));
        assert_eq!(pixels.data, decodes(&src).unwrap().data, "same pixels");
        // Missing data stays an error: the scan cut short, or its entropy-coded data damaged.
        assert!(matches!(
            decodes(&src[..src.len() * 3 / 4]),
            Err(PipelineError::Undecodable(_))
        ));
        let mut damaged = src.clone();
        let sos = marker_at(&damaged, 0xDA);
        for b in &mut damaged[sos + 40..sos + 400] {
            *b ^= 0xFF;
        }
        assert!(matches!(
            decodes(&damaged),
            Err(PipelineError::Undecodable(_))
        ));
    }

    #[test]
    fn webp_decodes_at_twice_the_target_or_full_size() {
        assert_eq!(webp_decode_size(2056, 3088, 600, 901), (1200, 1802));
        assert_eq!(webp_decode_size(1000, 500, 600, 300), (1000, 500));
    }

    #[test]
    fn truncated_webp_is_undecodable() {
        let bytes = crate::pipeline::flat_image(Format::WebP, 64, 64, 120);
        let info = crate::pipeline::probe::probe(&bytes).unwrap();
        assert_eq!(
            decode(&bytes, &info, scale_for(&info, 32, 32), None)
                .unwrap()
                .width,
            64
        );
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(
            decode(cut, &info, scale_for(&info, 32, 32), None),
            Err(PipelineError::Undecodable(_))
        ));
    }

    #[test]
    fn a_decoder_reading_another_size_than_the_probe_decodes_nothing() {
        // Every decoder checks the size it reads against the one the limits were checked on.
        let progressive = progressive_jpeg(64, 48);
        for format in [Format::Jpeg, Format::Png, Format::WebP, Format::Gif] {
            let small = crate::pipeline::flat_image(format, 64, 48, 90);
            for src in [&small, &progressive] {
                if crate::pipeline::probe::probe(src).unwrap().format != format {
                    continue;
                }
                let mut info = crate::pipeline::probe::probe(src).unwrap();
                assert!(decode(src, &info, scale_for(&info, 8, 6), None).is_ok());
                info.width = 16;
                info.height = 12;
                for scale in [scale_for(&info, 2, 2), Scale::Full] {
                    assert!(
                        matches!(decode(src, &info, scale, None), Err(PipelineError::Undecodable(m)) if m.contains("16x12")),
                        "{format:?} at {scale}"
                    );
                }
            }
        }
    }

    #[test]
    fn content_scale_is_the_dct_scale_not_the_rounded_size() {
        let jpeg = ImageInfo {
            format: Format::Jpeg,
            width: 2000,
            height: 1250,
            orientation: crate::pipeline::orient::Orientation::Normal,
        };
        // 1/4: 500x313 decoded, of which 312.5 rows are picture.
        assert_eq!(content_scale(&jpeg, 500, 313), (0.25, 0.25));
        assert_eq!(content_scale(&jpeg, 250, 157), (0.125, 0.125));
        assert_eq!(content_scale(&jpeg, 2000, 1250), (1.0, 1.0));
        // Not a DCT scale of this image: the ratio of the sizes.
        assert_eq!(content_scale(&jpeg, 1000, 500), (0.5, 0.4));
        let webp = ImageInfo {
            format: Format::WebP,
            ..jpeg
        };
        assert_eq!(content_scale(&webp, 500, 313), (0.25, 313.0 / 1250.0));
        // Under 8 px on both sides the scaled sizes repeat (4 at 7/8 and 8/8): the ratio, as before.
        let tiny = ImageInfo {
            width: 4,
            height: 4,
            ..jpeg
        };
        assert_eq!(content_scale(&tiny, 4, 4), (1.0, 1.0));
        // One side of 8 px or more is enough to tell the scales apart.
        let strip = ImageInfo {
            width: 4,
            height: 16,
            ..jpeg
        };
        assert_eq!(content_scale(&strip, 4, 14), (0.875, 0.875));
    }

    #[test]
    fn scale_is_the_smallest_that_covers_the_target() {
        // 6028x3391 -> 600 wide: 1/8 gives 754x424, enough.
        assert_eq!(jpeg_scale_numerator(6028, 3391, 600, 338), 1);
        // 3264x2448 -> 900 wide: needs 1350 above 1/8; 3/8 gives 1224, too small; 4/8 gives 1632.
        assert_eq!(jpeg_scale_numerator(3264, 2448, 900, 675), 4);
        // 4224x3168 -> 1600: needs 2400; 4/8 gives 2112, too small; 5/8 gives 2640.
        assert_eq!(jpeg_scale_numerator(4224, 3168, 1600, 1200), 5);
        // Same size or larger: full decode.
        assert_eq!(jpeg_scale_numerator(100, 100, 100, 100), 8);
        assert_eq!(jpeg_scale_numerator(100, 100, 200, 200), 8);
        // Headroom: 639 wide from 2560 is not decoded at 1/4 (640) but at 3/8 (960).
        assert_eq!(jpeg_scale_numerator(2560, 1600, 639, 400), 3);
    }
}
