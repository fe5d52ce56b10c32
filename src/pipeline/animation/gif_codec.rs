//! Animated GIF: frames composited as browsers show them, and written back with frame differencing.
//!
//! Reading: the `gif` crate gives each frame's own rectangle; it is drawn over the canvas (transparent
//! pixels leave what is under them), shown, then disposed of as the frame says (keep, clear its rectangle,
//! or restore what was under it). A frame larger than the screen is a 422, as it is for a still GIF; one
//! that only sticks out is clipped, as browsers do.
//!
//! Writing: GIF keeps one bit of alpha, so alpha is cut at half. Each frame is quantised on its own
//! ([`palette::quantize_binary_alpha`]: exact up to 255 colours, NeuQuant above) and, when the frame
//! before it can stay on screen, only the rectangle that changed is written, with unchanged pixels
//! transparent: a talking head over a still background costs its face, not the whole canvas. When a pixel
//! must turn transparent, the frame before is written whole and cleared after it is shown. Frames are
//! therefore written one step late.

use std::borrow::Cow;
use std::num::NonZeroU64;

use ::gif::{ColorOutput, DecodeOptions, DisposalMethod, MemoryLimit, Repeat};

use super::super::palette;
use super::{Frame, Loop};
use crate::pipeline::{Layout, PipelineError, Pixels};

/// Room for extensions, palettes and comments besides the frame buffers.
const METADATA_ALLOWANCE: u64 = 16 << 20;

pub struct GifFrames<'a> {
    decoder: ::gif::Decoder<&'a [u8]>,
    width: usize,
    height: usize,
    canvas: Vec<u8>,
    /// What the last frame asks to happen to its rectangle once shown, and the canvas to restore.
    disposal: Option<(DisposalMethod, Rect, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

impl<'a> GifFrames<'a> {
    /// `size` is the logical screen the limits were checked on.
    pub fn open(src: &'a [u8], (width, height): (u32, u32)) -> Result<Self, PipelineError> {
        let mut options = DecodeOptions::new();
        options.set_color_output(ColorOutput::RGBA);
        let canvas_bytes = u64::from(width) * u64::from(height) * 4;
        options.set_memory_limit(MemoryLimit::Bytes(
            NonZeroU64::new(canvas_bytes + METADATA_ALLOWANCE).unwrap_or(NonZeroU64::MIN),
        ));
        let decoder = options.read_info(src).map_err(undecodable)?;
        if (u32::from(decoder.width()), u32::from(decoder.height())) != (width, height) {
            return Err(PipelineError::Undecodable(
                "the GIF decoder read another size than the header".into(),
            ));
        }
        let (width, height) = (width as usize, height as usize);
        Ok(GifFrames {
            decoder,
            width,
            height,
            canvas: vec![0; width * height * 4],
            disposal: None,
        })
    }

    /// How often the animation plays (GIF stores the repeats after the first play).
    pub fn looping(&self) -> Loop {
        match self.decoder.repeat() {
            Repeat::Infinite => Loop::Forever,
            Repeat::Finite(repeats) => Loop::Times(repeats.saturating_add(1)),
        }
    }

    pub fn next(&mut self) -> Result<Option<Frame>, PipelineError> {
        if let Some((method, rect, saved)) = self.disposal.take() {
            match method {
                DisposalMethod::Background => self.clear(rect),
                DisposalMethod::Previous => {
                    if let Some(saved) = saved {
                        self.canvas = saved;
                    }
                }
                DisposalMethod::Any | DisposalMethod::Keep => {}
            }
        }
        let Some(frame) = self.decoder.read_next_frame().map_err(undecodable)? else {
            return Ok(None);
        };
        let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
        if fw > self.width || fh > self.height {
            return Err(PipelineError::Undecodable(format!(
                "a {fw}x{fh} GIF frame on a {}x{} screen",
                self.width, self.height
            )));
        }
        // Clipped to the screen, as browsers draw it; a frame wholly off the screen draws nothing (and
        // its rectangle must not point past the canvas: the empty one at the origin).
        let (left, top) = (usize::from(frame.left), usize::from(frame.top));
        let rect = if left < self.width && top < self.height {
            Rect {
                left,
                top,
                width: fw.min(self.width - left),
                height: fh.min(self.height - top),
            }
        } else {
            Rect {
                left: 0,
                top: 0,
                width: 0,
                height: 0,
            }
        };
        let saved = (frame.dispose == DisposalMethod::Previous).then(|| self.canvas.clone());
        for y in 0..rect.height {
            let src = &frame.buffer[y * fw * 4..][..rect.width * 4];
            let start = ((rect.top + y) * self.width + rect.left) * 4;
            let dst = &mut self.canvas[start..start + rect.width * 4];
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                if s[3] != 0 {
                    d.copy_from_slice(s);
                }
            }
        }
        self.disposal = Some((frame.dispose, rect, saved));
        Ok(Some(Frame {
            pixels: Pixels {
                width: self.width as u32,
                height: self.height as u32,
                layout: Layout::Rgba,
                data: self.canvas.clone(),
            },
            delay_ms: u32::from(frame.delay) * 10,
        }))
    }

    fn clear(&mut self, rect: Rect) {
        for y in rect.top..rect.top + rect.height {
            let start = (y * self.width + rect.left) * 4;
            self.canvas[start..start + rect.width * 4].fill(0);
        }
    }
}

fn undecodable(e: ::gif::DecodingError) -> PipelineError {
    match e {
        ::gif::DecodingError::MemoryLimit => {
            PipelineError::Undecodable("the GIF needs more memory than its size allows".into())
        }
        e => PipelineError::Undecodable(format!("gif: {e}")),
    }
}

/// A frame waiting for the next one, which decides how it is written.
struct Pending {
    /// The whole frame, alpha cut to 0 or 255.
    rgba: Vec<u8>,
    delay_cs: u16,
}

pub struct GifWriter {
    encoder: ::gif::Encoder<Vec<u8>>,
    width: usize,
    height: usize,
    /// What a viewer has on screen before the pending frame is drawn.
    shown: Vec<u8>,
    pending: Option<Pending>,
}

impl GifWriter {
    pub fn new((width, height): (u32, u32), looping: Loop) -> Result<Self, PipelineError> {
        let (w, h) = (
            u16::try_from(width).map_err(|_| too_wide(width, height))?,
            u16::try_from(height).map_err(|_| too_wide(width, height))?,
        );
        let mut encoder = ::gif::Encoder::new(Vec::new(), w, h, &[]).map_err(encode_error)?;
        match looping {
            Loop::Forever => encoder.set_repeat(Repeat::Infinite).map_err(encode_error)?,
            Loop::Times(1) => {}
            Loop::Times(n) => encoder
                .set_repeat(Repeat::Finite(n - 1))
                .map_err(encode_error)?,
        }
        let (width, height) = (width as usize, height as usize);
        Ok(GifWriter {
            encoder,
            width,
            height,
            shown: vec![0; width * height * 4],
            pending: None,
        })
    }

    /// Adds a frame of the output's size (RGBA) shown for `delay_ms`.
    pub fn add(&mut self, frame: &Pixels, delay_ms: u32) -> Result<(), PipelineError> {
        let mut rgba = frame.data_as(Layout::Rgba);
        for p in rgba.chunks_exact_mut(4) {
            if p[3] < 128 {
                p.copy_from_slice(&[0; 4]);
            } else {
                p[3] = 255;
            }
        }
        let next = Pending {
            rgba,
            delay_cs: u16::try_from(delay_ms.div_ceil(10)).unwrap_or(u16::MAX),
        };
        if let Some(pending) = self.pending.take() {
            // Keeping the pending frame on screen would leave its pixels where the next one has none.
            let clear = pending
                .rgba
                .chunks_exact(4)
                .zip(next.rgba.chunks_exact(4))
                .any(|(a, b)| a[3] == 255 && b[3] == 0);
            self.write(pending, clear)?;
        }
        self.pending = Some(next);
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<u8>, PipelineError> {
        if let Some(pending) = self.pending.take() {
            self.write(pending, false)?;
        }
        self.encoder.into_inner().map_err(encode_error)
    }

    /// Writes `frame` whole and cleared after it is shown (`clear`), or as the rectangle that differs
    /// from what is on screen, kept.
    fn write(&mut self, frame: Pending, clear: bool) -> Result<(), PipelineError> {
        let full = Rect {
            left: 0,
            top: 0,
            width: self.width,
            height: self.height,
        };
        let rect = if clear {
            full
        } else {
            changed(&self.shown, &frame.rgba, self.width).unwrap_or(Rect {
                width: 1,
                height: 1,
                ..full
            })
        };
        let mut pixels = Vec::with_capacity(rect.width * rect.height * 4);
        for y in rect.top..rect.top + rect.height {
            let start = (y * self.width + rect.left) * 4;
            let row = &frame.rgba[start..start + rect.width * 4];
            let under = &self.shown[start..start + rect.width * 4];
            for (p, u) in row.chunks_exact(4).zip(under.chunks_exact(4)) {
                // Unchanged pixels stay as the screen has them.
                if !clear && p == u {
                    pixels.extend_from_slice(&[0; 4]);
                } else {
                    pixels.extend_from_slice(p);
                }
            }
        }
        let indexed = palette::quantize_binary_alpha(&pixels);
        let transparent = indexed
            .palette
            .iter()
            .position(|c| c[3] == 0)
            .and_then(|i| u8::try_from(i).ok());
        let colours: Vec<u8> = indexed
            .palette
            .iter()
            .flat_map(|c| [c[0], c[1], c[2]])
            .collect();
        // Every size fits in u16: the writer was created with this canvas.
        let side = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
        let gif_frame = ::gif::Frame {
            delay: frame.delay_cs,
            dispose: if clear {
                DisposalMethod::Background
            } else {
                DisposalMethod::Keep
            },
            transparent,
            left: side(rect.left),
            top: side(rect.top),
            width: side(rect.width),
            height: side(rect.height),
            palette: Some(colours),
            buffer: Cow::Owned(indexed.indices),
            ..::gif::Frame::default()
        };
        self.encoder.write_frame(&gif_frame).map_err(encode_error)?;
        if clear {
            self.shown.fill(0);
        } else {
            self.shown = frame.rgba;
        }
        Ok(())
    }
}

/// The smallest rectangle holding every pixel where `a` and `b` differ; `None` if they are equal.
fn changed(a: &[u8], b: &[u8], width: usize) -> Option<Rect> {
    let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
    for (y, (ra, rb)) in a
        .chunks_exact(width * 4)
        .zip(b.chunks_exact(width * 4))
        .enumerate()
    {
        if ra == rb {
            continue;
        }
        let first = ra
            .chunks_exact(4)
            .zip(rb.chunks_exact(4))
            .position(|(p, q)| p != q)?;
        let last = width
            - 1
            - ra.chunks_exact(4)
                .rev()
                .zip(rb.chunks_exact(4).rev())
                .position(|(p, q)| p != q)?;
        left = left.min(first);
        right = right.max(last);
        top = top.min(y);
        bottom = y;
    }
    (top != usize::MAX).then(|| Rect {
        left,
        top,
        width: right - left + 1,
        height: bottom - top + 1,
    })
}

fn too_wide(width: u32, height: u32) -> PipelineError {
    PipelineError::Encode(format!(
        "gif: {width}x{height} is above GIF's 65535 pixels a side"
    ))
}

fn encode_error(e: ::gif::EncodingError) -> PipelineError {
    PipelineError::Encode(format!("gif: {e}"))
}
