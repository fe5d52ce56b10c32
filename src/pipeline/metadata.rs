//! What of an original's metadata may reach a variant: by default nothing (no EXIF, XMP, IPTC or GPS: a
//! phone photo's location must never leak through a thumbnail; orientation is applied to the pixels and
//! dropped). With `output.keep_copyright`, the EXIF `Artist` and `Copyright` fields, and only those, are
//! written into JPEG (APP1), PNG (`eXIf`) and WebP (`EXIF`) variants as a fresh two-field EXIF block.

use std::io::Cursor;

/// The credit fields of an original's EXIF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credits {
    pub artist: Option<String>,
    pub copyright: Option<String>,
}

/// Longest credit kept; anything longer is cut (a credit line is a few dozen bytes).
const MAX_CREDIT_BYTES: usize = 1024;

/// The original's `Artist` and `Copyright` (IFD0), when it has either.
pub fn credits(src: &[u8]) -> Option<Credits> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(src))
        .ok()?;
    let text = |tag| {
        let field = exif.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Ascii(parts) = &field.value else {
            return None;
        };
        let joined: Vec<u8> = parts
            .iter()
            .flatten()
            .copied()
            .take(MAX_CREDIT_BYTES)
            .collect();
        let text = String::from_utf8_lossy(&joined)
            .trim_end_matches('\0')
            .trim()
            .to_string();
        (!text.is_empty() && text.is_ascii()).then_some(text)
    };
    let credits = Credits {
        artist: text(exif::Tag::Artist),
        copyright: text(exif::Tag::Copyright),
    };
    (credits.artist.is_some() || credits.copyright.is_some()).then_some(credits)
}

/// A TIFF-structured EXIF block (as PNG `eXIf` and WebP `EXIF` carry it) holding only the credits.
pub fn exif_block(credits: &Credits) -> Option<Vec<u8>> {
    let field = |tag, text: &Option<String>| {
        text.as_ref().map(|t| exif::Field {
            tag,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![t.as_bytes().to_vec()]),
        })
    };
    let fields: Vec<exif::Field> = [
        field(exif::Tag::Artist, &credits.artist),
        field(exif::Tag::Copyright, &credits.copyright),
    ]
    .into_iter()
    .flatten()
    .collect();
    if fields.is_empty() {
        return None;
    }
    let mut writer = exif::experimental::Writer::new();
    fields.iter().for_each(|f| writer.push_field(f));
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_round_trip_through_a_fresh_exif_block() {
        let credits = Credits {
            artist: Some("Ada Photographer".into()),
            copyright: Some("(c) 2026 Ada".into()),
        };
        let tiff = exif_block(&credits).unwrap();
        let parsed = exif::Reader::new().read_raw(tiff).unwrap();
        let get = |tag| {
            parsed
                .get_field(tag, exif::In::PRIMARY)
                .map(|f| f.display_value().to_string())
        };
        assert_eq!(
            get(exif::Tag::Artist).as_deref(),
            Some("\"Ada Photographer\"")
        );
        assert_eq!(
            get(exif::Tag::Copyright).as_deref(),
            Some("\"(c) 2026 Ada\"")
        );
        assert_eq!(parsed.fields().count(), 2, "nothing else");
        assert_eq!(exif_block(&Credits::default()), None);
    }
}
