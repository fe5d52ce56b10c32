//! A JPEG's headers, read the way libjpeg reads them, before anything is decoded: the frame (its size,
//! its kind, its sampling), the scans, and what the decoder will hold for them.

use crate::pipeline::PipelineError;

/// A JPEG frame header (SOF): what libjpeg will decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JpegFrame {
    pub(super) width: u16,
    pub(super) height: u16,
    progressive: bool,
    /// Each component's sampling factors (horizontal, vertical); at most four are kept.
    sampling: [(u8, u8); 4],
    components: u8,
}

/// Bytes libjpeg holds for a JPEG's coefficients beyond its pixels: a progressive file's whole-image
/// coefficient arrays (64 two-byte coefficients per 8x8 block of every component, at full resolution
/// whatever the output scale), or a few rows of blocks for a sequential one. `None` when `header` holds
/// no readable frame header.
pub fn jpeg_decoder_bytes(header: &[u8]) -> Option<u64> {
    let frame = jpeg_frame(header).ok()?;
    let used = &frame.sampling[..usize::from(frame.components.clamp(1, 4))];
    let h_max = u64::from(used.iter().map(|s| s.0).max().unwrap_or(1).max(1));
    let v_max = u64::from(used.iter().map(|s| s.1).max().unwrap_or(1).max(1));
    let (w, h) = (u64::from(frame.width), u64::from(frame.height));
    let blocks = |(hs, vs): (u8, u8)| {
        let cw = (w * u64::from(hs.max(1))).div_ceil(h_max);
        let ch = (h * u64::from(vs.max(1))).div_ceil(v_max);
        // Padded to whole MCUs.
        cw.div_ceil(8).next_multiple_of(u64::from(hs.max(1)))
            * ch.div_ceil(8).next_multiple_of(u64::from(vs.max(1)))
    };
    let rows_of_blocks = |(hs, vs): (u8, u8)| {
        let cw = (w * u64::from(hs.max(1))).div_ceil(h_max);
        cw.div_ceil(8) * u64::from(vs.max(1)) * 2
    };
    let count: u64 = if frame.progressive {
        used.iter().copied().map(blocks).sum()
    } else {
        used.iter().copied().map(rows_of_blocks).sum()
    };
    Some(count * 64 * 2)
}

/// How many colour components a JPEG's frame has (3 for YCbCr, 4 for CMYK and YCCK).
pub fn jpeg_components(header: &[u8]) -> Option<u8> {
    jpeg_frame(header).ok().map(|f| f.components)
}

/// Whether a JPEG's frame is progressive (SOF2): the only kind whose scans each cost a pass over the
/// whole image (a sequential file has at most one scan per component).
pub fn jpeg_progressive(header: &[u8]) -> bool {
    jpeg_frame(header).is_ok_and(|f| f.progressive)
}

/// The most scans a JPEG may have: a progressive file's cost grows with each (libjpeg sets no limit),
/// and real encoders write at most a few dozen (libjpeg's default script 10, mozjpeg's about as many).
pub const MAX_JPEG_SCANS: usize = 100;

/// How many scans (SOS markers) a JPEG holds, walking its segments and entropy-coded data as libjpeg
/// does; stops counting past `cap` (the count is then `cap + 1`) or where the data ends.
pub fn jpeg_scans(src: &[u8], cap: usize) -> usize {
    let mut pos = 2;
    let mut scans = 0;
    loop {
        // A marker: 0xFF, any fill bytes, then its code.
        if src.get(pos) != Some(&0xFF) {
            return scans;
        }
        while src.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = src.get(pos) else {
            return scans;
        };
        pos += 1;
        match marker {
            0xD9 => return scans,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(length) = src.get(pos..pos + 2) else {
            return scans;
        };
        pos += usize::from(u16::from_be_bytes([length[0], length[1]]).max(2));
        if marker != 0xDA {
            continue;
        }
        scans += 1;
        if scans > cap {
            return scans;
        }
        // Entropy-coded data up to the next marker: 0xFF then anything but a stuffed zero or RSTn.
        while let Some(offset) = src.get(pos..).and_then(memchr_ff) {
            pos += offset;
            match src.get(pos + 1) {
                Some(0x00 | 0xD0..=0xD7) => pos += 2,
                Some(_) => break,
                None => return scans,
            }
        }
        if pos >= src.len() {
            return scans;
        }
    }
}

fn memchr_ff(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0xFF)
}

/// Walks a JPEG's marker segments from SOI to the first frame header exactly as libjpeg does (any number of
/// 0xFF fill bytes before a marker; RSTn and TEM carry no length; every other marker is skipped by its
/// length), so the size checked against the limits is the size libjpeg decodes: a lax reader can be led to
/// a small decoy frame hidden in a segment libjpeg skips. Refuses, before any decoding, the kinds this
/// build of libjpeg-turbo cannot decode: arithmetic coding, lossless and hierarchical frames, precisions
/// other than 8 bits.
pub(super) fn jpeg_frame(src: &[u8]) -> Result<JpegFrame, PipelineError> {
    let corrupt = |what: &str| PipelineError::Undecodable(format!("JPEG header: {what}"));
    let byte = |at: usize| src.get(at).copied().ok_or_else(|| corrupt("cut short"));
    let u16_at = |at: usize| Ok::<_, PipelineError>(u16::from_be_bytes([byte(at)?, byte(at + 1)?]));
    // After SOI.
    let mut pos = 2;
    loop {
        if byte(pos)? != 0xFF {
            return Err(corrupt("data where a marker should be"));
        }
        while byte(pos)? == 0xFF {
            pos += 1;
        }
        let marker = byte(pos)?;
        pos += 1;
        match marker {
            // TEM and RST0-7 stand alone.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => return Err(corrupt("two SOI markers")),
            0xD9 | 0xDA => return Err(corrupt("no frame header before the image data")),
            0x00 => return Err(corrupt("a stuffed zero where a marker should be")),
            // DHT, JPG and DAC are not frame headers.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let kind = match marker {
                    0xC0..=0xC2 => None,
                    0xC9 | 0xCA => Some("arithmetic-coded"),
                    0xC3 | 0xCB => Some("lossless"),
                    _ => Some("hierarchical"),
                };
                if let Some(kind) = kind {
                    return Err(PipelineError::UnsupportedVariant(format!(
                        "{kind} JPEG (SOF{})",
                        marker - 0xC0
                    )));
                }
                let precision = byte(pos + 2)?;
                if precision != 8 {
                    return Err(PipelineError::UnsupportedVariant(format!(
                        "{precision}-bit JPEG"
                    )));
                }
                let components = byte(pos + 7)?;
                let mut sampling = [(1, 1); 4];
                for (c, slot) in sampling
                    .iter_mut()
                    .enumerate()
                    .take(usize::from(components))
                {
                    let factors = byte(pos + 9 + 3 * c)?;
                    *slot = (factors >> 4, factors & 15);
                }
                return Ok(JpegFrame {
                    height: u16_at(pos + 3)?,
                    width: u16_at(pos + 5)?,
                    progressive: marker == 0xC2,
                    sampling,
                    components,
                });
            }
            _ => {
                let length = usize::from(u16_at(pos)?);
                if length < 2 {
                    return Err(corrupt("a segment shorter than its length field"));
                }
                pos += length;
            }
        }
    }
}
