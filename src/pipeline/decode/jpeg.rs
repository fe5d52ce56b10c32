//! JPEG through libjpeg-turbo (mozjpeg), decoded directly at the smallest DCT scale (n/8) that still
//! covers the target with headroom; a progressive file wanted at 1/8 is decoded from its DC scans only.
//! libjpeg's warnings about missing or damaged data abort the decode (see `is_benign_warning`).
#![allow(unsafe_code)] // FFI: libjpeg (mozjpeg-sys).

use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, Decompress};

use super::jpeg_header::{jpeg_components, jpeg_decoder_bytes, jpeg_frame};
use super::{Codec, Header, Scale, same_size, undecodable};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels};
use crate::pipeline::{cmyk, colour};

/// A side of `size` pixels decoded by libjpeg at n/8: rounded up, ceil(size * n / 8).
pub fn jpeg_scaled_size(size: u32, n: u8) -> u64 {
    (u64::from(size) * u64::from(n)).div_ceil(8)
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

/// JPEG's codec.
pub(super) struct Jpeg;

impl Codec for Jpeg {
    /// The frame header libjpeg will decode, found the way libjpeg finds it (see `jpeg_frame`).
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        let frame = jpeg_frame(src)?;
        Ok(Header {
            width: u32::from(frame.width),
            height: u32::from(frame.height),
            alpha: false,
        })
    }

    fn scale_for(&self, info: &ImageInfo, target_w: u32, target_h: u32) -> Scale {
        Scale::Eighths(jpeg_scale_numerator(
            info.width,
            info.height,
            target_w,
            target_h,
        ))
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        scale: Scale,
        profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        let eighths = match scale {
            Scale::Eighths(n) => n.clamp(1, 8),
            _ => 8,
        };
        decode_jpeg(src, info, eighths, profile)
    }

    /// The coefficient buffers (a progressive file's whole-image arrays); a CMYK JPEG is decoded to four
    /// channels, then converted.
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64 {
        let (w, h) = (u64::from(info.width), u64::from(info.height));
        let cmyk = if jpeg_components(header) == Some(4) {
            w * h * 4
        } else {
            0
        };
        jpeg_decoder_bytes(header).unwrap_or(w * h * 6) + cmyk
    }

    fn profile(&self, src: &[u8]) -> Option<Vec<u8>> {
        colour::jpeg_profile(src)
    }

    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}

pub(super) fn decode_jpeg(
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
            cmyk::to_rgb(data, cmyk::adobe_inverted(src), profile)
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
pub(super) fn progressive_dc_only(
    src: &[u8],
    info: &ImageInfo,
) -> Result<Option<Pixels>, PipelineError> {
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
pub(super) fn strict_error_mgr() -> mozjpeg_sys::jpeg_error_mgr {
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

pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "decoder failed".into(), |s| (*s).to_string()),
    }
}
