//! The two sides of a format: what sizer writes ([`Format`], its outputs) and what it reads
//! ([`InputFormat`], its originals). They differ: TIFF, BMP and ICO are read and never written, so an
//! original in one of them is written in the format [`InputFormat::written_as`] names; what each input
//! format needs to be probed and decoded is its codec in [`super::decode`].

use super::orient::Orientation;

/// A format sizer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
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

    /// Recognises an image sizer could have written (a stored variant) by its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        InputFormat::sniff(bytes).and_then(InputFormat::output)
    }
}

/// A format sizer reads, recognised by its magic bytes (never by a file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jpeg,
    Png,
    WebP,
    Gif,
    /// Probed (sizer reads back the AVIF variants it wrote) but not decoded.
    Avif,
    /// Baseline and BigTIFF, first page only.
    Tiff,
    Bmp,
    /// Windows icons: the largest image of the directory.
    Ico,
    /// JPEG XL, bare codestream or ISO-BMFF container; the first frame.
    Jxl,
    /// SVG, rasterised (never served as SVG).
    Svg,
}

impl InputFormat {
    /// Recognises an encoded image by its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<InputFormat> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(InputFormat::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(InputFormat::Png),
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
            ] => Some(InputFormat::WebP),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(InputFormat::Gif),
            // Little- and big-endian TIFF (version 42) and BigTIFF (43).
            [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => Some(InputFormat::Tiff),
            // A BITMAPFILEHEADER, then a DIB header size of one of the known versions (12 core, 40 info,
            // 52/56 with masks, 64 OS/2, 108 v4, 124 v5): "BM" alone starts too many other files.
            [
                b'B',
                b'M',
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                12 | 40 | 52 | 56 | 64 | 108 | 124,
                0,
                0,
                0,
                ..,
            ] => Some(InputFormat::Bmp),
            // A bare codestream (FF 0A), or the container's signature box (its size and type: the rest of
            // it is fixed too, but 8 bytes tell it from anything else).
            [0xFF, 0x0A, ..] => Some(InputFormat::Jxl),
            [0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', ..] => Some(InputFormat::Jxl),
            _ if is_avif(bytes) => Some(InputFormat::Avif),
            _ if is_svg(bytes) => Some(InputFormat::Svg),
            // ICONDIR: reserved 0, type 1 (icon), at least one image.
            [0, 0, 1, 0, n0, n1, ..] if (*n0, *n1) != (0, 0) => Some(InputFormat::Ico),
            _ => None,
        }
    }

    /// The format an original in this format is written back as, where sizer writes it.
    pub fn output(self) -> Option<Format> {
        match self {
            InputFormat::Jpeg => Some(Format::Jpeg),
            InputFormat::Png => Some(Format::Png),
            InputFormat::WebP => Some(Format::WebP),
            InputFormat::Gif => Some(Format::Gif),
            InputFormat::Avif => Some(Format::Avif),
            InputFormat::Tiff
            | InputFormat::Bmp
            | InputFormat::Ico
            | InputFormat::Jxl
            | InputFormat::Svg => None,
        }
    }

    /// What "the original's format" means for an output of this original: its own where sizer writes
    /// it; otherwise PNG for an image with an alpha channel and for formats of drawn graphics (BMP, ICO:
    /// screenshots, icons, lossless), JPEG for the rest (TIFF without alpha: scans and photographs), as
    /// imgproxy picks its first preferred format, PNG when the image has alpha. JPEG XL likewise.
    pub fn written_as(self, alpha: bool) -> Format {
        match self.output() {
            Some(format) => format,
            None if alpha => Format::Png,
            None => match self {
                InputFormat::Bmp | InputFormat::Ico | InputFormat::Svg => Format::Png,
                _ => Format::Jpeg,
            },
        }
    }

    /// Its name in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "JPEG",
            InputFormat::Png => "PNG",
            InputFormat::WebP => "WebP",
            InputFormat::Gif => "GIF",
            InputFormat::Avif => "AVIF",
            InputFormat::Tiff => "TIFF",
            InputFormat::Bmp => "BMP",
            InputFormat::Ico => "ICO",
            InputFormat::Jxl => "JPEG XL",
            InputFormat::Svg => "SVG",
        }
    }
}

/// What an original is, from its header: see `probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: InputFormat,
    /// Whether the header declares an alpha channel (where the format says so before decoding; it
    /// decides what "the original's format" is for a format sizer does not write).
    pub alpha: bool,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

impl ImageInfo {
    /// The format "the original's format" means for an output of it (see [`InputFormat::written_as`]).
    pub fn written_as(&self) -> Format {
        self.format.written_as(self.alpha)
    }

    /// Dimensions as displayed, after orientation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.orientation.swaps_axes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Every format sizer writes, it reads.
impl From<Format> for InputFormat {
    fn from(format: Format) -> InputFormat {
        match format {
            Format::Jpeg => InputFormat::Jpeg,
            Format::Png => InputFormat::Png,
            Format::WebP => InputFormat::WebP,
            Format::Gif => InputFormat::Gif,
            Format::Avif => InputFormat::Avif,
        }
    }
}

/// An XML document whose root element is `<svg`: after an optional byte-order mark and white space, the
/// root itself, or an XML declaration, comments and a DOCTYPE before it within the first 4 kB. HTML and
/// other XML are not SVG.
fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut rest = head;
    loop {
        rest = rest.trim_ascii_start();
        if rest.starts_with(b"<svg") {
            return rest
                .get(4)
                .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>');
        }
        let skip = |open: &[u8], close: &[u8], rest: &[u8]| -> Option<usize> {
            rest.strip_prefix(open)?;
            rest.windows(close.len())
                .position(|w| w == close)
                .map(|at| at + close.len())
        };
        let Some(at) = skip(b"<?", b"?>", rest)
            .or_else(|| skip(b"<!--", b"-->", rest))
            .or_else(|| {
                // A DOCTYPE may hold an internal subset in brackets.
                rest.strip_prefix(b"<!DOCTYPE")?;
                let close = if rest.contains(&b'[') {
                    b"]>".as_slice()
                } else {
                    b">"
                };
                skip(b"<!DOCTYPE", close, rest)
            })
        else {
            return false;
        };
        rest = &rest[at..];
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn formats_are_sniffed_from_magic_bytes() {
        let sniff = InputFormat::sniff;
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(InputFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(InputFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(InputFormat::WebP));
        assert_eq!(sniff(b"GIF89a"), Some(InputFormat::Gif));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(InputFormat::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(InputFormat::Tiff));
        assert_eq!(sniff(b"II+\0\x08\0\0\0"), Some(InputFormat::Tiff));
        assert_eq!(
            sniff(b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0"),
            Some(InputFormat::Bmp)
        );
        // "BM" followed by anything but a DIB header is not a bitmap.
        assert_eq!(sniff(b"BMP is a format\0\0\0\0\0\0\0"), None);
        assert_eq!(sniff(b"\0\0\x01\0\x01\0\x10\x10"), Some(InputFormat::Ico));
        assert_eq!(
            sniff(b"\0\0\x01\0\0\0"),
            None,
            "an icon directory of no images"
        );
        assert_eq!(sniff(b"\0\0\x02\0\x01\0"), None, "a cursor is not an icon");
        assert_eq!(sniff(b"\xFF\x0A\xFA\x7F"), Some(InputFormat::Jxl));
        assert_eq!(
            sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "),
            Some(InputFormat::Jxl)
        );
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            Some(InputFormat::Svg)
        );
        assert_eq!(
            sniff(b"\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- made by hand -->\n<!DOCTYPE svg [<!ENTITY a 'b'>]>\n<svg>"),
            Some(InputFormat::Svg)
        );
        assert_eq!(sniff(b"<svgfoo>"), None);
        assert_eq!(
            sniff(b"<?xml version='1.0'?><html><svg>"),
            None,
            "SVG inside HTML"
        );
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn only_formats_sizer_writes_sniff_as_outputs() {
        assert_eq!(Format::sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(Format::sniff(b"II*\0\x08\0\0\0"), None);
    }

    #[test]
    fn an_original_sizer_cannot_write_is_written_as_png_or_jpeg() {
        assert_eq!(InputFormat::Tiff.written_as(false), Format::Jpeg);
        assert_eq!(InputFormat::Tiff.written_as(true), Format::Png);
        assert_eq!(InputFormat::Bmp.written_as(false), Format::Png);
        assert_eq!(InputFormat::Ico.written_as(true), Format::Png);
        assert_eq!(InputFormat::Gif.written_as(true), Format::Gif);
        assert_eq!(InputFormat::Jpeg.written_as(false), Format::Jpeg);
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
    pub(crate) fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
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
        let avif = Some(InputFormat::Avif);
        // libavif and ravif: `avif` first; others: `mif1` first, `avif` among the compatible brands.
        assert_eq!(
            InputFormat::sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            avif
        );
        assert_eq!(
            InputFormat::sniff(&ftyp(b"mif1", &[b"mif1", b"avif", b"miaf"])),
            avif
        );
        assert_eq!(InputFormat::sniff(&ftyp(b"avis", &[b"msf1"])), avif);
        assert_eq!(InputFormat::sniff(&ftyp(b"msf1", &[b"avis"])), avif);
        // HEIC and plain MP4 are ISO-BMFF too, but not AVIF.
        assert_eq!(
            InputFormat::sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            None
        );
        assert_eq!(InputFormat::sniff(&ftyp(b"isom", &[b"mp41"])), None);
    }

    #[test]
    fn avif_brands_outside_the_ftyp_box_do_not_count() {
        // The box is 20 bytes (one compatible brand); "avif" in whatever follows it is not a brand.
        let mut bytes = ftyp(b"mif1", &[b"miaf"]);
        bytes.extend_from_slice(b"\0\0\0\x0cavif");
        assert_eq!(InputFormat::sniff(&bytes), None);
        // A box too short to hold its brands, or cut short: no AVIF, and no panic.
        let mut tiny = ftyp(b"avif", &[]);
        tiny[3] = 12;
        assert_eq!(InputFormat::sniff(&tiny), None);
        assert_eq!(InputFormat::sniff(b"\0\0\0\x18ftypav"), None);
        assert_eq!(
            InputFormat::sniff(&ftyp(b"mif1", &[b"miaf", b"avif"])[..22]),
            None
        );
    }
}
