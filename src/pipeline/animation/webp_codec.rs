//! Animated WebP: read with `image-webp` (frames blended and disposed on its canvas), written with
//! libwebp's `WebPAnimEncoder` (already compiled into `libwebp-sys`), which finds each frame's changed
//! rectangle itself.
#![allow(unsafe_code)] // FFI: libwebp's animation encoder (libwebp-sys).

use std::ffi::c_int;
use std::io::Cursor;
use std::ptr::NonNull;

use image_webp::{DecodingError, LoopCount, WebPDecoder};
use libwebp_sys as w;

use super::{Frame, Loop};
use crate::pipeline::{Layout, PipelineError, Pixels};

/// Room for metadata chunks besides the canvas and one frame.
const METADATA_ALLOWANCE: u64 = 16 << 20;

/// Browsers show a frame of 10 ms or less for 100 ms (GIF and WebP alike), and libwebp refuses a frame
/// without duration: such frames are written as what viewers see.
const SHORTEST_SHOWN_MS: u32 = 10;
const SHOWN_INSTEAD_MS: u32 = 100;

pub struct WebPFrames<'a> {
    decoder: WebPDecoder<Cursor<&'a [u8]>>,
    width: u32,
    height: u32,
    buffer_len: usize,
    layout: Layout,
    read: u32,
}

impl<'a> WebPFrames<'a> {
    /// `size` is the canvas the limits were checked on.
    pub fn open(src: &'a [u8], (width, height): (u32, u32)) -> Result<Self, PipelineError> {
        let mut decoder = WebPDecoder::new(Cursor::new(src)).map_err(undecodable)?;
        let canvas = u64::from(width) * u64::from(height) * 4;
        decoder.set_memory_limit(
            usize::try_from(2 * canvas + METADATA_ALLOWANCE).unwrap_or(usize::MAX),
        );
        if decoder.dimensions() != (width, height) {
            return Err(PipelineError::Undecodable(
                "the WebP decoder read another size than the header".into(),
            ));
        }
        if !decoder.is_animated() {
            return Err(PipelineError::Undecodable(
                "the WebP is not animated".into(),
            ));
        }
        let buffer_len = decoder
            .output_buffer_size()
            .ok_or_else(|| PipelineError::Undecodable("the WebP canvas is too large".into()))?;
        let layout = if decoder.has_alpha() {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        Ok(WebPFrames {
            decoder,
            width,
            height,
            buffer_len,
            layout,
            read: 0,
        })
    }

    pub fn looping(&self) -> Loop {
        match self.decoder.loop_count() {
            LoopCount::Forever => Loop::Forever,
            LoopCount::Times(n) => Loop::Times(n.get()),
        }
    }

    pub fn next(&mut self) -> Result<Option<Frame>, PipelineError> {
        if self.read == self.decoder.num_frames() {
            return Ok(None);
        }
        let mut data = vec![0; self.buffer_len];
        let delay_ms = match self.decoder.read_frame(&mut data) {
            Ok(delay) => delay,
            Err(DecodingError::NoMoreFrames) => return Ok(None),
            Err(e) => return Err(undecodable(e)),
        };
        self.read += 1;
        Ok(Some(Frame {
            pixels: Pixels {
                width: self.width,
                height: self.height,
                layout: self.layout,
                data,
            },
            delay_ms,
        }))
    }
}

fn undecodable(e: DecodingError) -> PipelineError {
    PipelineError::Undecodable(format!("webp: {e}"))
}

pub struct WebPWriter {
    encoder: NonNull<w::WebPAnimEncoder>,
    config: w::WebPConfig,
    width: u32,
    height: u32,
    /// When the next frame starts, in ms.
    timestamp: c_int,
}

impl WebPWriter {
    pub fn new(
        (width, height): (u32, u32),
        quality: u8,
        looping: Loop,
    ) -> Result<Self, PipelineError> {
        let config =
            w::WebPConfig::new_with_preset(w::WebPPreset::WEBP_PRESET_DEFAULT, f32::from(quality))
                .map_err(|()| failed("configuration"))?;
        let (cw, ch) = (
            c_int::try_from(width).map_err(|_| failed("width"))?,
            c_int::try_from(height).map_err(|_| failed("height"))?,
        );
        // SAFETY: the options are plain data initialised by libwebp before use; the encoder pointer is
        // checked for null and owned by the writer, which deletes it on drop.
        let encoder = unsafe {
            let mut options: w::WebPAnimEncoderOptions = std::mem::zeroed();
            if w::WebPAnimEncoderOptionsInitInternal(&mut options, w::WEBP_MUX_ABI_VERSION as c_int)
                == 0
            {
                return Err(failed("options"));
            }
            options.anim_params.loop_count = match looping {
                Loop::Forever => 0,
                Loop::Times(n) => c_int::from(n),
            };
            // Transparent: what browsers clear to, whatever the hint.
            options.anim_params.bgcolor = 0;
            w::WebPAnimEncoderNewInternal(cw, ch, &options, w::WEBP_MUX_ABI_VERSION as c_int)
        };
        let encoder = NonNull::new(encoder).ok_or_else(|| failed("a new encoder"))?;
        Ok(WebPWriter {
            encoder,
            config,
            width,
            height,
            timestamp: 0,
        })
    }

    /// Adds a frame of the output's size shown for `delay_ms`.
    pub fn add(&mut self, frame: &Pixels, delay_ms: u32) -> Result<(), PipelineError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(failed("a frame of another size"));
        }
        let rgba = frame.data_as(Layout::Rgba);
        let mut picture = w::WebPPicture::new().map_err(|()| failed("a picture"))?;
        picture.use_argb = 1;
        picture.width = self.width as c_int;
        picture.height = self.height as c_int;
        // SAFETY: `rgba` holds width × height RGBA pixels with the stride given; the picture copies them
        // and is freed before returning; the encoder and configuration are valid for the writer's life.
        let added = unsafe {
            let imported =
                w::WebPPictureImportRGBA(&mut picture, rgba.as_ptr(), self.width as c_int * 4);
            let added = imported != 0
                && w::WebPAnimEncoderAdd(
                    self.encoder.as_ptr(),
                    &mut picture,
                    self.timestamp,
                    &self.config,
                ) != 0;
            w::WebPPictureFree(&mut picture);
            added
        };
        if !added {
            return Err(self.error("adding a frame"));
        }
        let shown = if delay_ms <= SHORTEST_SHOWN_MS {
            SHOWN_INSTEAD_MS
        } else {
            delay_ms
        };
        self.timestamp = self
            .timestamp
            .saturating_add(c_int::try_from(shown).unwrap_or(c_int::MAX));
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, PipelineError> {
        // SAFETY: a null frame ends the animation at `timestamp`; the assembled data is libwebp's,
        // copied out and then freed with WebPDataClear.
        unsafe {
            let encoder = self.encoder.as_ptr();
            if w::WebPAnimEncoderAdd(
                encoder,
                std::ptr::null_mut(),
                self.timestamp,
                std::ptr::null(),
            ) == 0
            {
                return Err(self.error("ending the animation"));
            }
            let mut data: w::WebPData = std::mem::zeroed();
            if w::WebPAnimEncoderAssemble(encoder, &mut data) == 0 || data.bytes.is_null() {
                return Err(self.error("assembling"));
            }
            let bytes = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
            w::WebPDataClear(&mut data);
            Ok(bytes)
        }
    }

    fn error(&self, doing: &str) -> PipelineError {
        // SAFETY: the encoder is valid; its error string, when there is one, is a NUL-terminated string
        // it owns, copied here.
        let message = unsafe {
            let text = w::WebPAnimEncoderGetError(self.encoder.as_ptr());
            if text.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(text)
                    .to_string_lossy()
                    .into_owned()
            }
        };
        PipelineError::Encode(format!("webp animation, {doing}: {message}"))
    }
}

impl Drop for WebPWriter {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimEncoderNewInternal, deleted once, here.
        unsafe { w::WebPAnimEncoderDelete(self.encoder.as_ptr()) }
    }
}

fn failed(what: &str) -> PipelineError {
    PipelineError::Encode(format!("webp animation: {what}"))
}
