//! Animated GIF and WebP, kept animated: every frame composited on the canvas as a browser shows it
//! (GIF disposal, WebP blending), resized with one geometry for all (a smart crop is chosen on the first
//! frame and kept), and written as an animated GIF or WebP with the original's delays and loop count.
//!
//! - Caps ([`Limits`]) are checked on the container before any frame is decoded: more frames than
//!   `limits.max_frames`, or frames × canvas pixels above `limits.max_animation_pixels`, is a 413.
//! - Frames are streamed: one canvas is decoded, resized and handed to the encoder at a time, so memory is a
//!   few canvases and the encoder's output, whatever the frame count.
//! - `output.first_frame_only` (or a format that cannot animate: JPEG, PNG, AVIF) gives the first frame,
//!   through the still pipeline.
//!
//! Decoders and encoders per format: [`gif_codec`] (the `gif` crate, our palette quantiser, frame
//! differencing) and [`webp_codec`] (`image-webp` to read, libwebp's `WebPAnimEncoder` to write).

mod gif_codec;
mod webp_codec;

use std::time::{Duration, Instant};

use super::format::{Format, InputFormat};
use super::{Encoded, Job, Original, PipelineError, Pixels, Planned, Timings};

/// Caps on animations, and whether they are kept at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Keep animations animated (`false`: the first frame only).
    pub animate: bool,
    /// Most frames an animation may have.
    pub max_frames: u32,
    /// Most pixels over all frames (frames × canvas).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            animate: true,
            max_frames: 1000,
            max_pixels: 300_000_000,
        }
    }
}

/// How many times an animation plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    Forever,
    /// In all, at least once.
    Times(u16),
}

/// One frame as displayed: the whole canvas, RGBA.
pub struct Frame {
    pub pixels: Pixels,
    pub delay_ms: u32,
}

/// Whether `src` (already sniffed as `format`) holds more than one frame.
pub fn is_animated(format: InputFormat, src: &[u8]) -> bool {
    frame_count(format, src, 2) >= 2
}

/// Frames in `src` counted on its container without decoding, stopping at `limit` (each codec says
/// whether its format can animate: see `decode::Codec::frames`).
pub fn frame_count(format: InputFormat, src: &[u8], limit: usize) -> usize {
    super::decode::codec(format).frames(src, limit)
}

/// Refuses an animation above `limits` before anything is decoded.
pub fn check_limits(
    format: InputFormat,
    src: &[u8],
    (width, height): (u32, u32),
    limits: &Limits,
) -> Result<usize, PipelineError> {
    let cap = usize::try_from(limits.max_frames).unwrap_or(usize::MAX);
    let frames = frame_count(format, src, cap.saturating_add(1));
    if frames > cap {
        return Err(PipelineError::TooManyFrames {
            limit: limits.max_frames,
        });
    }
    let pixels = (frames as u64).saturating_mul(u64::from(width) * u64::from(height));
    if pixels > limits.max_pixels {
        return Err(PipelineError::AnimationTooLarge {
            frames,
            pixels,
            limit: limits.max_pixels,
        });
    }
    Ok(frames)
}

/// Frames of an animated original, one at a time.
enum Frames<'a> {
    // Boxed: the decoders' states are hundreds of bytes, and there is one per animation.
    Gif(Box<gif_codec::GifFrames<'a>>),
    WebP(Box<webp_codec::WebPFrames<'a>>),
}

impl<'a> Frames<'a> {
    fn open(format: InputFormat, src: &'a [u8], size: (u32, u32)) -> Result<Self, PipelineError> {
        match format {
            InputFormat::Gif => {
                gif_codec::GifFrames::open(src, size).map(|f| Frames::Gif(Box::new(f)))
            }
            InputFormat::WebP => {
                webp_codec::WebPFrames::open(src, size).map(|f| Frames::WebP(Box::new(f)))
            }
            _ => Err(PipelineError::Unsupported),
        }
    }

    fn next(&mut self) -> Result<Option<Frame>, PipelineError> {
        match self {
            Frames::Gif(f) => f.next(),
            Frames::WebP(f) => f.next(),
        }
    }

    /// The loop count, known once the first frame was read.
    fn looping(&self) -> Loop {
        match self {
            Frames::Gif(f) => f.looping(),
            Frames::WebP(f) => f.looping(),
        }
    }
}

/// An animated output being written.
enum Writer {
    Gif(gif_codec::GifWriter),
    WebP(webp_codec::WebPWriter),
}

impl Writer {
    fn new(
        format: Format,
        size: (u32, u32),
        quality: u8,
        looping: Loop,
    ) -> Result<Self, PipelineError> {
        match format {
            Format::Gif => gif_codec::GifWriter::new(size, looping).map(Writer::Gif),
            Format::WebP => webp_codec::WebPWriter::new(size, quality, looping).map(Writer::WebP),
            _ => Err(PipelineError::Unsupported),
        }
    }

    fn add(&mut self, frame: &Pixels, delay_ms: u32) -> Result<(), PipelineError> {
        match self {
            Writer::Gif(w) => w.add(frame, delay_ms),
            Writer::WebP(w) => w.add(frame, delay_ms),
        }
    }

    fn finish(self) -> Result<Vec<u8>, PipelineError> {
        match self {
            Writer::Gif(w) => w.finish(),
            Writer::WebP(w) => w.finish(),
        }
    }
}

/// Makes `job`'s output of an animated `src` as an animation in `format` (GIF or WebP).
pub(super) fn render(
    src: &[u8],
    original: &Original,
    planned: &Planned,
    job: &Job,
    format: Format,
) -> Result<Encoded, PipelineError> {
    let info = &original.info;
    check_limits(info.format, src, (info.width, info.height), &job.animation)?;
    let started = Instant::now();
    let mut frames = Frames::open(info.format, src, (info.width, info.height))?;
    // A profile kept (`output.keep_profile`) travels in an animated WebP; otherwise, and in a GIF, the
    // frames are converted to sRGB.
    let kept = original.kept_profile(job, format);
    let mut writer = None;
    let mut region = None;
    let mut count = 0u32;
    let (mut decode, mut encode) = (Duration::ZERO, Duration::ZERO);
    let mut size = (0, 0);
    loop {
        let decoding = Instant::now();
        let Some(frame) = frames.next()? else { break };
        decode += decoding.elapsed();
        count += 1;
        if count > job.animation.max_frames {
            // The container was counted before decoding; a decoder that finds more is not trusted.
            return Err(PipelineError::TooManyFrames {
                limit: job.animation.max_frames,
            });
        }
        super::check(job.deadline)?;
        let region =
            *region.get_or_insert_with(|| super::decoded_region(&frame.pixels, info, planned));
        let mut image = super::finish_frame(&frame.pixels, region, original, planned, job, format)?;
        // Converted after resizing: the same colours at a fraction of the pixels.
        if let Some(p) = original.rgb_profile().filter(|_| kept.is_none()) {
            super::colour::to_srgb(&mut image, p);
        }
        size = (image.width, image.height);
        let writer = match &mut writer {
            Some(w) => w,
            None => writer.insert(Writer::new(format, size, job.quality, frames.looping())?),
        };
        let encoding = Instant::now();
        writer.add(&image, frame.delay_ms)?;
        encode += encoding.elapsed();
    }
    let writer =
        writer.ok_or_else(|| PipelineError::Undecodable("an animation without frames".into()))?;
    let now = Instant::now();
    let mut bytes = writer.finish()?;
    if format == Format::WebP {
        let exif = original.carried_exif(job);
        let carried = super::encode::Carried {
            profile: kept,
            exif: exif.as_deref(),
        };
        bytes = super::encode::tag_webp(bytes, carried)?;
    }
    encode += now.elapsed();
    let total = started.elapsed();
    Ok(Encoded {
        bytes,
        format,
        width: size.0,
        height: size.1,
        timings: Timings {
            decode,
            resize: total.saturating_sub(decode + encode),
            encode,
        },
    })
}

/// Counts GIF image descriptors, stopping at `limit` (or at the trailer, or at anything malformed).
pub(crate) fn gif_frames(src: &[u8], limit: usize) -> usize {
    // Header (6) + logical screen descriptor (7), then an optional global colour table.
    let Some(&packed) = src.get(10) else { return 0 };
    let mut pos = 13usize;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 0x07) + 1);
    }
    let mut frames = 0;
    while frames < limit {
        match src.get(pos) {
            // Image descriptor: 9 bytes after the separator, an optional local colour table, the LZW
            // minimum code size, then data sub-blocks.
            Some(0x2C) => {
                frames += 1;
                let Some(&local) = src.get(pos + 9) else {
                    break;
                };
                pos += 10;
                if local & 0x80 != 0 {
                    pos += 3 << ((local & 0x07) + 1);
                }
                pos += 1;
                let Some(next) = skip_sub_blocks(src, pos) else {
                    break;
                };
                pos = next;
            }
            // Extension: label, then sub-blocks.
            Some(0x21) => {
                let Some(next) = skip_sub_blocks(src, pos + 2) else {
                    break;
                };
                pos = next;
            }
            _ => break,
        }
    }
    frames
}

/// The position after a chain of GIF data sub-blocks starting at `pos`; `None` if it runs off the end.
fn skip_sub_blocks(src: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*src.get(pos)?);
        pos += 1;
        if len == 0 {
            return Some(pos);
        }
        pos += len;
    }
}

/// `RIFF....WEBPVP8X` with the animation bit (0x02) of its flags byte set.
pub(crate) fn webp_animation_flag(src: &[u8]) -> bool {
    src.get(12..16) == Some(b"VP8X") && src.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// Counts the `ANMF` chunks of a WebP's RIFF body, stopping at `limit` (or at anything malformed).
pub(crate) fn webp_frames(src: &[u8], limit: usize) -> usize {
    let mut pos = 12usize;
    let mut frames = 0;
    while frames < limit {
        let (Some(fourcc), Some(size)) = (src.get(pos..pos + 4), src.get(pos + 4..pos + 8)) else {
            break;
        };
        if fourcc == b"ANMF" {
            frames += 1;
        }
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        // Chunks are padded to an even size.
        pos = match pos.checked_add(8 + size + (size & 1)) {
            Some(next) => next,
            None => break,
        };
    }
    frames
}

#[cfg(test)]
mod tests;
