//! What an original is, read from its first bytes and headers only: format (by magic bytes, never by
//! file name), stored dimensions and EXIF orientation. Runs before any decoding so limits are cheap.
//!
//! AVIF is recognised and probed (the service reads back the AVIF variants it wrote) but not decoded:
//! [`super::decode`] refuses AVIF originals.

use std::io::Cursor;

use super::PipelineError;
use super::orient::Orientation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    /// Output only: AVIF originals are probed but not decoded.
    Avif,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
            Format::Gif => "image/gif",
            Format::Avif => "image/avif",
        }
    }

    /// The format a user names (`jpeg`/`jpg`, `png`, `webp`, `gif`, `avif`), as the CLI and the workloads
    /// spell it.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            "webp" => Some(Format::WebP),
            "gif" => Some(Format::Gif),
            "avif" => Some(Format::Avif),
            _ => None,
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
            Format::Avif => "avif",
        }
    }

    /// Recognises an encoded image by its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Format::Png),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Format::WebP),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Format::Gif),
            _ if is_avif(bytes) => Some(Format::Avif),
            _ => None,
        }
    }
}

/// An ISO-BMFF file whose leading `ftyp` box names `avif` (a still image) or `avis` (a sequence), as its
/// major brand or among its compatible brands: encoders differ (libavif writes `avif` first, others
/// `mif1` with `avif` among the compatible brands), and a HEIC file (`heic`, `mif1`) is not AVIF.
fn is_avif(bytes: &[u8]) -> bool {
    // ftyp: size (u32 BE), "ftyp", major brand, minor version (u32), compatible brands (4 bytes each).
    let &[s0, s1, s2, s3, b'f', b't', b'y', b'p', ..] = bytes else {
        return false;
    };
    let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
    // Below 16 the box cannot hold a brand and a version (0 and 1 mean "to the end" and "64-bit size",
    // neither of which a real ftyp uses).
    if size < 16 {
        return false;
    }
    let end = size.min(bytes.len());
    let major = bytes.get(8..12);
    let compatible = bytes.get(16..end).unwrap_or_default().chunks_exact(4);
    major
        .into_iter()
        .chain(compatible)
        .any(|brand| brand == b"avif" || brand == b"avis")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: Format,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

impl ImageInfo {
    /// Dimensions as displayed, after orientation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.orientation.swaps_axes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

pub fn probe(src: &[u8]) -> Result<ImageInfo, PipelineError> {
    let format = Format::sniff(src).ok_or(PipelineError::Unsupported)?;
    let (width, height) = match format {
        // The frame header libjpeg will decode, found the way libjpeg finds it (see `jpeg_frame`).
        Format::Jpeg => {
            let frame = jpeg_frame(src)?;
            (u32::from(frame.width), u32::from(frame.height))
        }
        // imagesize reads the size at a fixed offset without looking at the chunk there.
        Format::Png if src.get(12..16) != Some(b"IHDR") => {
            return Err(PipelineError::Undecodable(
                "PNG without an IHDR chunk first".into(),
            ));
        }
        _ => {
            let size = imagesize::blob_size(src)
                .map_err(|e| PipelineError::Undecodable(format!("unreadable header: {e}")))?;
            let (Ok(width), Ok(height)) = (u32::try_from(size.width), u32::try_from(size.height))
            else {
                return Err(PipelineError::Undecodable("dimensions out of range".into()));
            };
            (width, height)
        }
    };
    if width == 0 || height == 0 {
        return Err(PipelineError::Undecodable(format!(
            "image has no pixels ({width}x{height})"
        )));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
        orientation: exif_orientation(src),
    })
}

/// A JPEG frame header (SOF): what libjpeg will decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegFrame {
    width: u16,
    height: u16,
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
fn jpeg_frame(src: &[u8]) -> Result<JpegFrame, PipelineError> {
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

/// EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF); absent or unreadable EXIF means upright.
fn exif_orientation(src: &[u8]) -> Orientation {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(src)) else {
        return Orientation::Normal;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .map_or(Orientation::Normal, Orientation::from_exif)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_sniffed_from_magic_bytes() {
        assert_eq!(Format::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(Format::sniff(b"<html>"), None);
        assert_eq!(Format::sniff(b""), None);
    }

    #[test]
    fn formats_are_named_as_users_spell_them() {
        assert_eq!(Format::from_name("JPG"), Some(Format::Jpeg));
        assert_eq!(Format::from_name("webp"), Some(Format::WebP));
        assert_eq!(Format::from_name("tiff"), None);
        assert_eq!(Format::from_name("AVIF"), Some(Format::Avif));
        for f in [
            Format::Jpeg,
            Format::Png,
            Format::WebP,
            Format::Gif,
            Format::Avif,
        ] {
            assert_eq!(Format::from_name(f.extension()), Some(f));
        }
        assert_eq!(Format::Avif.content_type(), "image/avif");
    }

    /// An `ftyp` box: size, "ftyp", major brand, minor version 0, compatible brands.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut b = size.to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0; 4]);
        compatible.iter().for_each(|c| b.extend_from_slice(*c));
        b
    }

    #[test]
    fn avif_is_sniffed_from_its_ftyp_brands() {
        // libavif and ravif: `avif` first; others: `mif1` first, `avif` among the compatible brands.
        assert_eq!(
            Format::sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            Some(Format::Avif)
        );
        assert_eq!(
            Format::sniff(&ftyp(b"mif1", &[b"mif1", b"avif", b"miaf"])),
            Some(Format::Avif)
        );
        assert_eq!(
            Format::sniff(&ftyp(b"avis", &[b"msf1"])),
            Some(Format::Avif)
        );
        assert_eq!(
            Format::sniff(&ftyp(b"msf1", &[b"avis"])),
            Some(Format::Avif)
        );
        // HEIC and plain MP4 are ISO-BMFF too, but not AVIF.
        assert_eq!(Format::sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), None);
        assert_eq!(Format::sniff(&ftyp(b"isom", &[b"mp41"])), None);
    }

    #[test]
    fn avif_brands_outside_the_ftyp_box_do_not_count() {
        // The box is 20 bytes (one compatible brand); "avif" in whatever follows it is not a brand.
        let mut bytes = ftyp(b"mif1", &[b"miaf"]);
        bytes.extend_from_slice(b"\0\0\0\x0cavif");
        assert_eq!(Format::sniff(&bytes), None);
        // A box too short to hold its brands, or cut short: no AVIF, and no panic.
        let mut tiny = ftyp(b"avif", &[]);
        tiny[3] = 12;
        assert_eq!(Format::sniff(&tiny), None);
        assert_eq!(Format::sniff(b"\0\0\0\x18ftypav"), None);
        assert_eq!(
            Format::sniff(&ftyp(b"mif1", &[b"miaf", b"avif"])[..22]),
            None
        );
    }

    #[test]
    fn our_avif_output_probes_to_its_size() {
        let avif = crate::pipeline::flat_image(Format::Avif, 33, 21, 90);
        let info = probe(&avif).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (Format::Avif, 33, 21)
        );
        assert_eq!(info.orientation, Orientation::Normal);
    }

    #[test]
    fn a_truncated_or_damaged_avif_header_is_an_error_never_a_panic() {
        let avif = crate::pipeline::flat_image(Format::Avif, 33, 21, 90);
        for cut in 0..avif.len() {
            if let Ok(info) = probe(&avif[..cut]) {
                assert_eq!((info.width, info.height), (33, 21), "cut at {cut}");
            }
        }
        for at in 0..avif.len().min(400) {
            let mut damaged = avif.clone();
            damaged[at] ^= 0xA5;
            let _ = probe(&damaged);
        }
    }

    #[test]
    fn an_avif_ftyp_without_the_rest_is_undecodable() {
        assert!(matches!(
            probe(&ftyp(b"avif", &[b"mif1"])),
            Err(PipelineError::Undecodable(_))
        ));
    }

    /// `jpeg` with its frame header (the first SOF0) edited.
    fn with_sof(jpeg: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let at = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline frame header");
        let mut out = jpeg.to_vec();
        edit(&mut out[at..]);
        out
    }

    #[test]
    fn jpeg_kinds_libjpeg_cannot_decode_are_refused_before_decoding() {
        let jpeg = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        assert_eq!(
            (probe(&jpeg).unwrap().width, probe(&jpeg).unwrap().height),
            (64, 48)
        );
        for (marker, kind) in [
            (0xC9, "arithmetic-coded JPEG (SOF9)"),
            (0xCA, "arithmetic-coded JPEG (SOF10)"),
            (0xC3, "lossless JPEG (SOF3)"),
            (0xCB, "lossless JPEG (SOF11)"),
            (0xC5, "hierarchical JPEG (SOF5)"),
            (0xCF, "hierarchical JPEG (SOF15)"),
        ] {
            let edited = with_sof(&jpeg, |sof| sof[1] = marker);
            assert_eq!(
                probe(&edited),
                Err(PipelineError::UnsupportedVariant(kind.into()))
            );
        }
        for precision in [12, 16] {
            let edited = with_sof(&jpeg, |sof| sof[4] = precision);
            assert_eq!(
                probe(&edited),
                Err(PipelineError::UnsupportedVariant(format!(
                    "{precision}-bit JPEG"
                )))
            );
        }
    }

    #[test]
    fn a_decoy_jpeg_frame_behind_a_fill_byte_does_not_hide_the_real_one() {
        // libjpeg skips the 0xFF fill byte after SOI and reads APP1 (length 0xFFFF), then the real frame.
        // A reader that takes `FF FF` for a marker takes `E1 FF` for a length and lands in the APP1
        // payload, on a 16x16 decoy frame.
        let real = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        let mut payload = vec![0u8; 0xFFFF - 2];
        let decoy_at = 4 + 0xE1FF - 7;
        payload[decoy_at..decoy_at + 9]
            .copy_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10]);
        let mut disguised = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xE1, 0xFF, 0xFF];
        disguised.extend_from_slice(&payload);
        disguised.extend_from_slice(&real[2..]);
        let info = probe(&disguised).unwrap();
        assert_eq!((info.width, info.height), (64, 48));
    }

    #[test]
    fn jpeg_headers_that_end_or_break_before_the_frame_are_undecodable() {
        let jpeg = crate::pipeline::flat_image(Format::Jpeg, 64, 48, 90);
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        for cut in 3..sof + 9 {
            assert!(
                matches!(probe(&jpeg[..cut]), Err(PipelineError::Undecodable(_))),
                "cut at {cut}"
            );
        }
        let two_soi = [&jpeg[..2], &jpeg[..]].concat();
        assert!(matches!(
            probe(&two_soi),
            Err(PipelineError::Undecodable(_))
        ));
        let mut zero_length = jpeg.clone();
        zero_length[4..6].copy_from_slice(&[0, 0]);
        assert!(matches!(
            probe(&zero_length),
            Err(PipelineError::Undecodable(_))
        ));
    }

    #[test]
    fn a_png_signature_without_ihdr_is_undecodable() {
        let html = b"\x89PNG\r\n\x1a\n<!DOCTYPE html><html><script></script></html>";
        assert!(matches!(probe(html), Err(PipelineError::Undecodable(_))));
    }

    #[test]
    fn non_images_are_unsupported() {
        assert_eq!(
            probe(b"hello, world").unwrap_err(),
            PipelineError::Unsupported
        );
    }

    #[test]
    fn a_bare_magic_number_is_undecodable() {
        assert!(matches!(
            probe(&[0xFF, 0xD8, 0xFF]),
            Err(PipelineError::Undecodable(_))
        ));
    }
}
