//! What an original is, read from its first bytes and headers only: format (by magic bytes, never by
//! file name), stored dimensions and EXIF orientation. Runs before any decoding so limits are cheap.

use std::io::Cursor;

use super::PipelineError;
use super::orient::Orientation;

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

    /// The format a user names (`jpeg`/`jpg`, `png`, `webp`, `gif`), as the CLI and the workloads spell it.
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
            _ => None,
        }
    }
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
    let size = imagesize::blob_size(src)
        .map_err(|e| PipelineError::Undecodable(format!("unreadable header: {e}")))?;
    let (width, height) = (u32::try_from(size.width), u32::try_from(size.height));
    let (Ok(width), Ok(height)) = (width, height) else {
        return Err(PipelineError::Undecodable("dimensions out of range".into()));
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
        for f in [Format::Jpeg, Format::Png, Format::WebP, Format::Gif] {
            assert_eq!(Format::from_name(f.extension()), Some(f));
        }
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
