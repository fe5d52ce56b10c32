//! AVIF through libaom, the AV1 encoder sharp (libheif) uses, with libheif's still-image settings: the
//! `aom` cargo feature (libaom is built from source by `libaom-sys`, which needs `cmake` and `nasm`;
//! the Dockerfile and CI turn it on). Issue 22 measured why: at equal bytes rav1e stays up to 0.026
//! SSIM below libaom, most at thumbnails, while libaom fed sizer's resized pixels is level with sharp
//! or above it at every width (BENCHMARKS.md, "AVIF with libaom").
//!
//! - All-intra usage, constant quality (`AOM_Q`) with quantizers 0-63 free, tuned for SSIM, post-
//!   processing filters skipped for a still picture: libheif's defaults. The quality scale is libheif's,
//!   `cq-level = ((100 - q) × 63 + 50) / 100`, with sizer's 80 at libheif's 50 (sharp's default), so
//!   sizer's default AVIF is sharp's default AVIF ([`heif_quality`]).
//! - Speed (`cpu-used`) [`CPU_USED`], one step slower at thumbnail sizes ([`cpu_used`]).
//! - 8 bits, 4:4:4, BT.601 full range (as the rav1e path, and as sharp writes by default).
//! - Alpha is its own monochrome AV1 item, written only when some pixel is not opaque, at a quality a
//!   little above the colour's (cavif's rule on libheif's scale): alpha artefacts show as halos.
//! - One thread: the service runs each encode on its own CPU pool, one image per worker.
#![allow(unsafe_code)] // FFI: libaom (libaom-sys).

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint};
use std::ptr::NonNull;

use libaom_sys as aom;

use crate::pipeline::{Layout, PipelineError, Pixels, is_opaque};

/// libaom's speed, 0 (slowest) to 9 for still images.
const CPU_USED: c_int = 5;
/// Outputs of at most this many pixels (256x256) encode at [`CPU_USED_SMALL`].
const SMALL_PIXELS: u64 = 65_536;
/// The speed for small outputs. The corpus sweep (BENCHMARKS.md, 79 files) found the floor's only miss
/// at 5 in a thumbnail (−0.0054 at 83 px); on its six worst photos at 64-238 px, 4 gives a worst of
/// −0.0028 (was −0.0054) at 0.995x sharp's bytes (was 0.993x), for 211 ms against 144 ms a 256 px AVIF
/// (sharp: 241 ms). 3 gives −0.0020 but takes 368 ms.
const CPU_USED_SMALL: c_int = 4;

/// libaom's speed for an output of `pixels` pixels.
fn cpu_used(pixels: u64) -> c_int {
    if pixels <= SMALL_PIXELS {
        CPU_USED_SMALL
    } else {
        CPU_USED
    }
}

/// The libheif quality sizer's default stands for (sharp's AVIF default).
const AT_DEFAULT: u32 = 50;

/// libheif's quality (1-100) for sizer's `quality` (1-100): [`AT_DEFAULT`] at sizer's default, 1 at 1,
/// 100 at 100, linear in between and rounded.
fn heif_quality(quality: u8) -> u32 {
    super::on_scale(quality, AT_DEFAULT as f32).round() as u32
}

/// libaom's constant-quality level (0 best, 63 worst) for a libheif quality, as libheif computes it.
fn cq_level(heif_quality: u32) -> c_uint {
    ((100 - heif_quality.min(100)) * 63 + 50) / 100
}

/// The alpha plane's libheif quality for the colour's ([`super::alpha_quality`], rounded down).
fn alpha_quality(color: u32) -> u32 {
    super::alpha_quality(color as f32) as u32
}

/// Encodes pixels whose buffer [`super::encode_avif`] has checked.
pub(super) fn encode(pixels: &Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let (width, height) = (pixels.width, pixels.height);
    let color_quality = heif_quality(quality);

    let mut colour = Image::new(aom::AOM_IMG_FMT_I444, width, height)?;
    colour.fill_ycbcr(pixels);
    let colour = encode_frame(&colour, cq_level(color_quality), Planes::Colour)?;

    let alpha = match pixels.layout {
        Layout::Rgba if !is_opaque(&pixels.data) => {
            let mut alpha = Image::new(aom::AOM_IMG_FMT_I420, width, height)?;
            alpha.fill_alpha(pixels);
            Some(encode_frame(
                &alpha,
                cq_level(alpha_quality(color_quality)),
                Planes::Alpha,
            )?)
        }
        _ => None,
    };

    // The container's defaults are what the AV1 headers say: BT.709 primaries, sRGB transfer, BT.601
    // matrix, full range, 4:4:4 at profile 1 (and the alpha item monochrome at profile 0).
    let mut file = Vec::new();
    avif_serialize::Aviffy::new()
        .write(&mut file, &colour, alpha.as_deref(), width, height, 8)
        .map_err(|e| PipelineError::Encode(format!("avif: container: {e}")))?;
    Ok(file)
}

/// What an AV1 frame carries: the colour (three planes, 4:4:4) or the alpha (one plane).
#[derive(Clone, Copy, PartialEq)]
enum Planes {
    Colour,
    Alpha,
}

/// An image libaom allocated, freed on drop.
struct Image(NonNull<aom::aom_image_t>);

impl Image {
    fn new(format: aom::aom_img_fmt_t, width: u32, height: u32) -> Result<Self, PipelineError> {
        // SAFETY: a null descriptor asks libaom to allocate one; the format is a planar 8-bit one and
        // the caller's sizes are non-zero and within the output limits (far below libaom's 2^27).
        let image = unsafe { aom::aom_img_alloc(std::ptr::null_mut(), format, width, height, 1) };
        NonNull::new(image).map(Image).ok_or_else(|| {
            PipelineError::Encode("avif: libaom could not allocate the image".into())
        })
    }

    /// Row `y` of `plane` (0 Y, 1 U, 2 V): `width` bytes for Y and for 4:4:4 chroma, half (rounded up)
    /// for 4:2:0 chroma.
    fn row(&mut self, plane: usize, y: usize) -> &mut [u8] {
        // SAFETY: the descriptor is libaom's and lives as long as `self`.
        let image = unsafe { self.0.as_mut() };
        let shift = if plane == 0 { 0 } else { image.x_chroma_shift };
        let width = ((image.d_w + (1 << shift) - 1) >> shift) as usize;
        // SAFETY: aom_img_alloc gave each plane `stride` bytes per row for every row of the plane, and
        // the caller asks only for rows it has (`y` below the plane's height); the rows do not overlap
        // and `&mut self` makes this the only borrow.
        unsafe {
            let start = image.planes[plane].offset(image.stride[plane] as isize * y as isize);
            std::slice::from_raw_parts_mut(start, width)
        }
    }

    /// Full-range BT.601 Y'CbCr of 8-bit Gray, RGB or RGBA pixels (alpha ignored), 4:4:4.
    fn fill_ycbcr(&mut self, pixels: &Pixels) {
        let width = pixels.width as usize;
        let channels = pixels.layout.channels();
        // One row of chroma at a time, written after the luma row (the rows are borrowed one by one).
        let (mut cbs, mut crs) = (vec![0; width], vec![0; width]);
        for (y, row) in pixels.data.chunks_exact(width * channels).enumerate() {
            if pixels.layout == Layout::Gray {
                self.row(0, y).copy_from_slice(row);
                self.row(1, y).fill(128);
                self.row(2, y).fill(128);
                continue;
            }
            let luma = self.row(0, y);
            for (x, p) in row.chunks_exact(channels).enumerate() {
                (luma[x], cbs[x], crs[x]) = ycbcr(p[0], p[1], p[2]);
            }
            self.row(1, y).copy_from_slice(&cbs);
            self.row(2, y).copy_from_slice(&crs);
        }
    }

    /// The alpha channel of RGBA pixels as the luma plane of a 4:2:0 image, neutral chroma (which a
    /// monochrome encode does not code).
    fn fill_alpha(&mut self, pixels: &Pixels) {
        let width = pixels.width as usize;
        let chroma_rows = (pixels.height as usize).div_ceil(2);
        for (y, row) in pixels.data.chunks_exact(width * 4).enumerate() {
            for (dst, p) in self.row(0, y).iter_mut().zip(row.chunks_exact(4)) {
                *dst = p[3];
            }
        }
        for y in 0..chroma_rows {
            self.row(1, y).fill(128);
            self.row(2, y).fill(128);
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: allocated by aom_img_alloc, freed once.
        unsafe { aom::aom_img_free(self.0.as_ptr()) }
    }
}

/// Full-range BT.601 Y'CbCr of one sRGB pixel, rounded (ravif's arithmetic, so both encoders start from
/// the same planes).
fn ycbcr(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = (b - y) * (0.5 / (1.0 - 0.114)) + 128.0;
    let cr = (r - y) * (0.5 / (1.0 - 0.299)) + 128.0;
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    (clamp(y), clamp(cb), clamp(cr))
}

/// An encoder context, destroyed on drop.
struct Encoder(aom::aom_codec_ctx_t);

impl Encoder {
    fn error(&self, what: &str) -> PipelineError {
        // SAFETY: the context was initialised; libaom's detail string is static or owned by the context,
        // and is copied here before the context goes.
        let detail = unsafe { aom::aom_codec_error_detail(&self.0) };
        let detail = if detail.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null detail is a NUL-terminated C string.
            unsafe { CStr::from_ptr(detail) }
                .to_string_lossy()
                .into_owned()
        };
        PipelineError::Encode(format!("avif: libaom {what}: {detail}"))
    }

    fn control(&mut self, id: aom::aome_enc_control_id, value: c_int) -> Result<(), PipelineError> {
        // SAFETY: an initialised encoder context; every control sizer sets takes an int (or an unsigned
        // int, passed the same way through C varargs).
        let status = unsafe { aom::aom_codec_control(&mut self.0, id as c_int, value) };
        if status == aom::AOM_CODEC_OK {
            Ok(())
        } else {
            Err(self.error(&format!("control {id}")))
        }
    }

    /// Appends every compressed-frame packet waiting in the encoder to `out`.
    fn drain(&mut self, out: &mut Vec<u8>) {
        let mut iter: aom::aom_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: an initialised context and its iterator; the packet stays valid until the next
            // call into the codec, and its bytes are copied out before that.
            let packet = unsafe { aom::aom_codec_get_cx_data(&mut self.0, &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: non-null packets point at libaom's packet structure.
            let packet = unsafe { &*packet };
            if packet.kind == aom::AOM_CODEC_CX_FRAME_PKT {
                // SAFETY: for a frame packet the union holds `frame`, whose `buf` has `sz` bytes.
                let frame = unsafe { packet.data.frame };
                if !frame.buf.is_null() && frame.sz > 0 {
                    // SAFETY: as above.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(frame.buf.cast::<u8>(), frame.sz) };
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised by aom_codec_enc_init_ver (an Encoder is only built after it succeeded),
        // destroyed once.
        unsafe { aom::aom_codec_destroy(&mut self.0) };
    }
}

/// One still AV1 frame (a sequence header and a frame OBU, the `av01` item's payload) of `image`.
fn encode_frame(image: &Image, cq: c_uint, planes: Planes) -> Result<Vec<u8>, PipelineError> {
    // SAFETY: the returned interface is a static descriptor.
    let iface = unsafe { aom::aom_codec_av1_cx() };
    let mut cfg = std::mem::MaybeUninit::<aom::aom_codec_enc_cfg_t>::uninit();
    // SAFETY: fills the whole configuration structure for the usage.
    let status = unsafe {
        aom::aom_codec_enc_config_default(iface, cfg.as_mut_ptr(), aom::AOM_USAGE_ALL_INTRA)
    };
    if status != aom::AOM_CODEC_OK {
        return Err(PipelineError::Encode(
            "avif: libaom has no all-intra configuration".into(),
        ));
    }
    // SAFETY: initialised by aom_codec_enc_config_default just above.
    let mut cfg = unsafe { cfg.assume_init() };
    // SAFETY: the descriptor is valid while `image` lives.
    let (width, height) = unsafe { (image.0.as_ref().d_w, image.0.as_ref().d_h) };
    cfg.g_w = width;
    cfg.g_h = height;
    // One frame: libaom then writes a still-picture, reduced sequence header.
    cfg.g_limit = 1;
    cfg.g_lag_in_frames = 0;
    cfg.kf_mode = aom::AOM_KF_DISABLED;
    cfg.kf_max_dist = 0;
    // 4:4:4 needs the high profile; a monochrome 4:2:0 alpha plane is main profile.
    cfg.g_profile = if planes == Planes::Colour { 1 } else { 0 };
    cfg.g_bit_depth = aom::AOM_BITS_8;
    cfg.g_input_bit_depth = 8;
    cfg.rc_end_usage = aom::AOM_Q;
    cfg.rc_min_quantizer = 0;
    cfg.rc_max_quantizer = 63;
    cfg.g_threads = 1;
    cfg.monochrome = c_uint::from(planes == Planes::Alpha);

    // SAFETY: zeroed is a valid "not yet initialised" context (plain pointers and integers), which
    // aom_codec_enc_init_ver fills in.
    let mut ctx: aom::aom_codec_ctx_t = unsafe { std::mem::zeroed() };
    // SAFETY: the context, interface and configuration are valid; the ABI version is the bindings'.
    let status = unsafe {
        aom::aom_codec_enc_init_ver(
            &mut ctx,
            iface,
            &cfg,
            0,
            aom::AOM_ENCODER_ABI_VERSION as c_int,
        )
    };
    if status != aom::AOM_CODEC_OK {
        return Err(PipelineError::Encode(format!(
            "avif: libaom could not start an encoder (error {status})"
        )));
    }
    let mut encoder = Encoder(ctx);
    encoder.control(
        aom::AOME_SET_CPUUSED,
        cpu_used(u64::from(width) * u64::from(height)),
    )?;
    encoder.control(aom::AOME_SET_CQ_LEVEL, cq as c_int)?;
    encoder.control(aom::AV1E_SET_COLOR_RANGE, 1)?;
    if planes == Planes::Colour {
        encoder.control(
            aom::AV1E_SET_CHROMA_SAMPLE_POSITION,
            aom::AOM_CSP_COLOCATED as c_int,
        )?;
        encoder.control(
            aom::AV1E_SET_COLOR_PRIMARIES,
            aom::AOM_CICP_CP_BT_709 as c_int,
        )?;
        encoder.control(
            aom::AV1E_SET_TRANSFER_CHARACTERISTICS,
            aom::AOM_CICP_TC_SRGB as c_int,
        )?;
        encoder.control(
            aom::AV1E_SET_MATRIX_COEFFICIENTS,
            aom::AOM_CICP_MC_BT_601 as c_int,
        )?;
    }
    encoder.control(aom::AOME_SET_TUNING, aom::AOM_TUNE_SSIM as c_int)?;
    encoder.control(aom::AV1E_SET_SKIP_POSTPROC_FILTERING, 1)?;

    let mut out = Vec::new();
    // SAFETY: an initialised encoder and an image of the configured size and format.
    let status = unsafe { aom::aom_codec_encode(&mut encoder.0, image.0.as_ptr(), 0, 1, 0) };
    if status != aom::AOM_CODEC_OK {
        return Err(encoder.error("encode"));
    }
    encoder.drain(&mut out);
    // SAFETY: a null image flushes the encoder.
    let status = unsafe { aom::aom_codec_encode(&mut encoder.0, std::ptr::null(), 0, 0, 0) };
    if status != aom::AOM_CODEC_OK {
        return Err(encoder.error("flush"));
    }
    encoder.drain(&mut out);
    if out.is_empty() {
        return Err(PipelineError::Encode(
            "avif: libaom returned no frame".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_onto_libheif_scale_in_order() {
        assert_eq!(heif_quality(1), 1);
        assert_eq!(heif_quality(80), AT_DEFAULT);
        assert_eq!(heif_quality(100), 100);
        assert_eq!(heif_quality(0), 1);
        assert_eq!(heif_quality(255), 100);
        // sharp's default, libheif's quality 50, is libaom's cq-level 32.
        assert_eq!(cq_level(heif_quality(80)), 32);
        assert_eq!(cq_level(100), 0);
        let levels: Vec<c_uint> = (1..=100).map(|q| cq_level(heif_quality(q))).collect();
        assert!(levels.windows(2).all(|l| l[0] >= l[1]), "{levels:?}");
        assert!(levels.iter().all(|&l| l <= 63));
        assert!((1..=100).all(|q| alpha_quality(heif_quality(q)) >= heif_quality(q)));
    }

    #[test]
    fn thumbnails_encode_one_step_slower() {
        assert_eq!(cpu_used(64 * 43), CPU_USED_SMALL);
        assert_eq!(cpu_used(256 * 256), CPU_USED_SMALL);
        assert_eq!(cpu_used(256 * 256 + 1), CPU_USED);
        const { assert!(CPU_USED_SMALL < CPU_USED) };
    }

    #[test]
    fn ycbcr_is_full_range_bt601() {
        assert_eq!(ycbcr(0, 0, 0), (0, 128, 128));
        assert_eq!(ycbcr(255, 255, 255), (255, 128, 128));
        assert_eq!(ycbcr(255, 0, 0), (76, 85, 255));
        assert_eq!(ycbcr(0, 0, 255), (29, 255, 107));
    }
}
