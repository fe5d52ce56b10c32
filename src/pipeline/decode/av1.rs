//! AV1 still pictures through rav1d (the Rust port of dav1d, BSD-2-Clause), by its dav1d-compatible
//! API: one thread (the CPU pool's worker is the parallelism), one frame of delay, film grain applied,
//! and a frame size limit so that a bitstream larger than its container said is refused by the decoder
//! before it allocates. The planes are lent to the caller's closure while the picture is alive, so
//! they are never copied.

#![allow(unsafe_code)] // FFI: rav1d's dav1d API (extern "C" functions over raw pointers).

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444, Dav1dSequenceHeader,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_parse_sequence_header, dav1d_picture_unref, dav1d_send_data,
};

use crate::pipeline::PipelineError;

/// How the chroma planes are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subsampling {
    /// Luma only.
    Mono,
    Yuv420,
    Yuv422,
    Yuv444,
}

impl Subsampling {
    fn from_dav1d(layout: u32) -> Result<Subsampling, PipelineError> {
        Ok(match layout {
            DAV1D_PIXEL_LAYOUT_I400 => Subsampling::Mono,
            DAV1D_PIXEL_LAYOUT_I420 => Subsampling::Yuv420,
            DAV1D_PIXEL_LAYOUT_I422 => Subsampling::Yuv422,
            DAV1D_PIXEL_LAYOUT_I444 => Subsampling::Yuv444,
            other => return Err(undecodable(format!("pixel layout {other}"))),
        })
    }

    /// The chroma planes' size for a `width`×`height` luma plane.
    pub(super) fn chroma_size(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Subsampling::Mono => (0, 0),
            Subsampling::Yuv420 => (width.div_ceil(2), height.div_ceil(2)),
            Subsampling::Yuv422 => (width.div_ceil(2), height),
            Subsampling::Yuv444 => (width, height),
        }
    }
}

/// The colour description in an AV1 sequence header (ITU-T H.273 code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cicp {
    pub primaries: u8,
    pub transfer: u8,
    pub matrix: u8,
    pub full_range: bool,
}

/// What an AV1 sequence header says before any frame is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sequence {
    pub max_width: u32,
    pub max_height: u32,
    pub subsampling: Subsampling,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    pub cicp: Cicp,
}

/// Samples of one plane: bytes at 8 bits, 16-bit words at 10 and 12.
pub(super) enum Samples<'a> {
    Eight(&'a [u8]),
    Sixteen(&'a [u16]),
}

/// One plane: its samples, `stride` samples a row.
pub(super) struct Plane<'a> {
    pub samples: Samples<'a>,
    pub stride: usize,
}

/// A decoded picture's planes, lent for the time of a closure.
pub(super) struct Planes<'a> {
    pub width: usize,
    pub height: usize,
    pub subsampling: Subsampling,
    pub bit_depth: u8,
    pub cicp: Cicp,
    pub y: Plane<'a>,
    /// Empty for [`Subsampling::Mono`].
    pub u: Plane<'a>,
    pub v: Plane<'a>,
}

fn undecodable(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Undecodable(format!("AV1: {what}"))
}

const EAGAIN: i32 = -libc::EAGAIN;

/// The sequence header at the start of `obus` (an AVIF item's AV1 data).
pub(super) fn sequence(obus: &[u8]) -> Result<Sequence, PipelineError> {
    let data = NonNull::new(obus.as_ptr().cast_mut()).filter(|_| !obus.is_empty());
    let mut header = MaybeUninit::<Dav1dSequenceHeader>::uninit();
    // SAFETY: `header` is valid to write a `Dav1dSequenceHeader` to; `data` is the start of `obus`,
    // `obus.len()` bytes long, which the function only reads (the cast to `*mut` is its signature's).
    let result = unsafe {
        dav1d_parse_sequence_header(Some(NonNull::from(&mut header).cast()), data, obus.len())
    };
    if result.0 != 0 {
        return Err(undecodable("no sequence header"));
    }
    // SAFETY: the call returned 0, so it wrote a whole header to `header`.
    let header = unsafe { header.assume_init() };
    Ok(Sequence {
        max_width: u32::try_from(header.max_width).map_err(|_| undecodable("width"))?,
        max_height: u32::try_from(header.max_height).map_err(|_| undecodable("height"))?,
        subsampling: Subsampling::from_dav1d(header.layout)?,
        bit_depth: match header.hbd {
            0 => 8,
            1 => 10,
            _ => 12,
        },
        cicp: Cicp {
            primaries: u8::try_from(header.pri).unwrap_or(2),
            transfer: u8::try_from(header.trc).unwrap_or(2),
            matrix: u8::try_from(header.mtrx).unwrap_or(2),
            full_range: header.color_range != 0,
        },
    })
}

/// A decoder context, closed when dropped.
struct Decoder(Option<Dav1dContext>);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from `dav1d_open` and is closed once, here (which also sets it to
        // `None`).
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

/// Data handed to the decoder, released when dropped.
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: `self.0` was filled by `dav1d_data_create` (or is empty), and is released once.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// A decoded picture, released when dropped.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `self.0` was written by `dav1d_get_picture` (or is the empty default), released once.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// Decodes the one frame in `obus` and lends its planes to `use_planes`. A frame of more than
/// `max_pixels` pixels is refused by the decoder before it allocates.
pub(super) fn decode<R>(
    obus: &[u8],
    max_pixels: u64,
    use_planes: impl FnOnce(&Planes<'_>) -> Result<R, PipelineError>,
) -> Result<R, PipelineError> {
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: `settings` is valid to write a `Dav1dSettings` to, which the call does in whole.
    unsafe { dav1d_default_settings(NonNull::from(&mut settings).cast()) };
    // SAFETY: written in whole just above.
    let mut settings = unsafe { settings.assume_init() };
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    settings.frame_size_limit = u32::try_from(max_pixels.max(1)).unwrap_or(u32::MAX);
    // An AVIF item is one operating point's frame; other layers are not shown.
    settings.all_layers = 0;
    let mut decoder = Decoder(None);
    // SAFETY: both pointers are to live locals; `dav1d_open` reads `settings` and writes the context.
    let opened = unsafe {
        dav1d_open(
            Some(NonNull::from(&mut decoder.0)),
            Some(NonNull::from(&mut settings)),
        )
    };
    if opened.0 != 0 || decoder.0.is_none() {
        return Err(undecodable("the decoder could not be opened"));
    }

    let mut data = Data(Dav1dData::default());
    // SAFETY: `data.0` is valid to write to; on success the call points it at `obus.len()` fresh bytes.
    let buffer = unsafe { dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len()) };
    if buffer.is_null() {
        return Err(undecodable("no memory for the bitstream"));
    }
    // SAFETY: `buffer` is `obus.len()` writable bytes that `dav1d_data_create` just allocated, which
    // cannot overlap `obus`.
    unsafe { std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len()) };

    let mut picture = Picture(Dav1dPicture::default());
    let mut drains = 0;
    // Feed until the decoder has taken every byte, then ask for the picture (draining the decoder).
    loop {
        if data.0.sz > 0 {
            // SAFETY: the context is open; `data.0` is the decoder's own buffer, which it advances.
            let sent = unsafe { dav1d_send_data(decoder.0, Some(NonNull::from(&mut data.0))) };
            if sent.0 != 0 && sent.0 != EAGAIN {
                return Err(undecodable(format!("corrupt bitstream ({})", sent.0)));
            }
        }
        // SAFETY: the context is open; `picture.0` is valid to write to (its empty default holds
        // nothing to leak).
        let got = unsafe { dav1d_get_picture(decoder.0, Some(NonNull::from(&mut picture.0))) };
        if got.0 == 0 {
            break;
        }
        if got.0 != EAGAIN {
            return Err(undecodable(format!("corrupt frame ({})", got.0)));
        }
        if data.0.sz == 0 {
            // Everything sent: a few more asks drain what the decoder holds, then there is no frame.
            drains += 1;
            if drains > 4 {
                return Err(undecodable("the bitstream holds no frame"));
            }
        }
    }
    planes_of(&picture.0).and_then(|planes| use_planes(&planes))
}

/// Safe views of `picture`'s planes, which live as long as `picture`.
fn planes_of(picture: &Dav1dPicture) -> Result<Planes<'_>, PipelineError> {
    let width = usize::try_from(picture.p.w).map_err(|_| undecodable("width"))?;
    let height = usize::try_from(picture.p.h).map_err(|_| undecodable("height"))?;
    let subsampling = Subsampling::from_dav1d(picture.p.layout)?;
    let bit_depth = u8::try_from(picture.p.bpc).map_err(|_| undecodable("bit depth"))?;
    let Some(seq) = picture.seq_hdr else {
        return Err(undecodable("picture without a sequence header"));
    };
    // SAFETY: a picture from `dav1d_get_picture` points at its sequence header, which it keeps alive.
    let seq = unsafe { seq.as_ref() };
    let cicp = Cicp {
        primaries: u8::try_from(seq.pri).unwrap_or(2),
        transfer: u8::try_from(seq.trc).unwrap_or(2),
        matrix: u8::try_from(seq.mtrx).unwrap_or(2),
        full_range: seq.color_range != 0,
    };
    let (chroma_w, chroma_h) = subsampling.chroma_size(width, height);
    let plane = |index: usize, stride_bytes: isize, w: usize, h: usize| -> Result<Plane<'_>, _> {
        if w == 0 || h == 0 {
            return Ok(Plane {
                samples: Samples::Eight(&[]),
                stride: 0,
            });
        }
        let stride_bytes = usize::try_from(stride_bytes).map_err(|_| undecodable("stride"))?;
        let Some(ptr) = picture.data[index] else {
            return Err(undecodable("picture without a plane"));
        };
        let bytes_a_sample = if bit_depth > 8 { 2 } else { 1 };
        if stride_bytes < w * bytes_a_sample || stride_bytes % bytes_a_sample != 0 {
            return Err(undecodable("stride shorter than a row"));
        }
        // The last row need only be as long as the image is wide.
        let len = stride_bytes * (h - 1) + w * bytes_a_sample;
        let stride = stride_bytes / bytes_a_sample;
        Ok(Plane {
            samples: if bytes_a_sample == 1 {
                // SAFETY: the decoder allocated the plane as `h` rows `stride_bytes` apart, each at
                // least `w` samples long; it stays allocated and unchanged while `picture` lives.
                Samples::Eight(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast(), len) })
            } else {
                if ptr.as_ptr().align_offset(2) != 0 {
                    return Err(undecodable("misaligned plane"));
                }
                // SAFETY: as above, in 16-bit samples (aligned, checked just above).
                Samples::Sixteen(unsafe {
                    std::slice::from_raw_parts(ptr.as_ptr().cast(), len / 2)
                })
            },
            stride,
        })
    };
    Ok(Planes {
        width,
        height,
        subsampling,
        bit_depth,
        cicp,
        y: plane(0, picture.stride[0], width, height)?,
        u: plane(1, picture.stride[1], chroma_w, chroma_h)?,
        v: plane(2, picture.stride[1], chroma_w, chroma_h)?,
    })
}
