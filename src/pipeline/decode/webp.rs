//! WebP through libwebp, whose decoder rescales while it decodes, so the full-size image is never held;
//! animated WebP (first frame) goes through the `image` crate.
#![allow(unsafe_code)] // FFI: libwebp (libwebp-sys).

use super::image_crate::{decode_with_image, imagesize_header};
use super::{Codec, Header, Scale, same_size};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::{Layout, PipelineError, Pixels, animation, colour};

/// WebP's codec.
pub(super) struct WebP;

impl Codec for WebP {
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        imagesize_header(src, false)
    }

    fn scale_for(&self, info: &ImageInfo, target_w: u32, target_h: u32) -> Scale {
        let size = webp_decode_size(info.width, info.height, target_w, target_h);
        if size == (info.width, info.height) {
            Scale::Full
        } else {
            Scale::Exact(size.0, size.1)
        }
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        let size = match scale {
            Scale::Exact(w, h) => (w, h),
            _ => (info.width, info.height),
        };
        decode_webp(src, info, size)
    }

    /// libwebp writes straight into the returned buffer.
    fn decoder_bytes(&self, _header: &[u8], _info: &ImageInfo) -> u64 {
        0
    }

    fn profile(&self, src: &[u8]) -> Option<Vec<u8>> {
        colour::webp_profile(src)
    }

    fn frames(&self, src: &[u8], limit: usize) -> usize {
        if animation::webp_animation_flag(src) {
            animation::webp_frames(src, limit)
        } else {
            1
        }
    }
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
