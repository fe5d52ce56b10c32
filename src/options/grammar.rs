//! The path grammar, syntax only:
//!
//! ```text
//! path    = "/" ["s/" signature "/"] option* ["-/"] key
//! option  = name "/" value     ; name in w h fit g dpr q f bg p exp, each at most once, any order
//! key     = segment ("/" segment)*   ; still percent-encoded here
//! ```
//! Options come first as `name/value` pairs; the key starts at the first segment that is not an option
//! name. A literal `-` segment ends the options early, for keys whose first segment is an option name
//! (`/w/600/-/w/photo.jpg` reads `w/photo.jpg`). The signature, when there is one, covers everything
//! after its own segment exactly as the client sent it (`signed`), so it is cut out here and nowhere else.

use super::{OptionName, Options, UrlError};

const END_OF_OPTIONS: &str = "-";
/// The signature's segment name: first in the path or nowhere, so no key may start with it either.
pub const SIGNATURE: &str = "s";

/// A path split into its parts; nothing is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPath<'a> {
    /// The `s/{signature}` value, if the path starts with one.
    pub signature: Option<&'a str>,
    /// What the signature covers: the path after the signature segment, leading `/` included
    /// (the whole path when unsigned).
    pub signed: &'a str,
    pub options: Options,
    /// The key, still percent-encoded.
    pub raw_key: String,
}

/// Splits a raw (percent-encoded) request path.
pub fn parse(path: &str) -> Result<ParsedPath<'_>, UrlError> {
    let (signature, signed) = split_signature(path)?;
    let mut segments = signed
        .strip_prefix('/')
        .unwrap_or(signed)
        .split('/')
        .peekable();
    let mut options = Options::default();
    let mut seen: Vec<OptionName> = Vec::new();
    while let Some(&segment) = segments.peek() {
        if segment == END_OF_OPTIONS && (!seen.is_empty() || signature.is_some()) {
            segments.next();
            break;
        }
        if segment == SIGNATURE {
            return Err(UrlError::SignatureNotFirst);
        }
        let Some(name) = OptionName::from_segment(segment) else {
            break;
        };
        segments.next();
        if seen.contains(&name) {
            return Err(UrlError::Repeated(name.as_str()));
        }
        seen.push(name);
        let value = segments
            .next()
            .ok_or(UrlError::MissingValue(name.as_str()))?;
        options.set(name, value)?;
    }
    if seen.is_empty() && signature.is_none() {
        return Err(UrlError::NoRoute);
    }
    let raw_key = segments.collect::<Vec<_>>().join("/");
    Ok(ParsedPath {
        signature,
        signed,
        options,
        raw_key,
    })
}

/// `("sig", "/rest")` for `/s/sig/rest`; `(None, path)` otherwise.
pub fn split_signature(path: &str) -> Result<(Option<&str>, &str), UrlError> {
    let Some(after) = path.strip_prefix("/s/") else {
        return Ok((None, path));
    };
    match after.find('/') {
        Some(end) if end > 0 => Ok((Some(&after[..end]), &after[end..])),
        _ => Err(UrlError::SignatureInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Fit;

    #[test]
    fn options_in_any_order_then_the_key() {
        let p = parse("/fit/cover/h/200/w/300/images/a.jpg").unwrap();
        assert_eq!(p.options.width, Some(300));
        assert_eq!(p.options.height, Some(200));
        assert_eq!(p.options.fit, Some(Fit::Cover));
        assert_eq!(p.raw_key, "images/a.jpg");
        assert_eq!(p.signature, None);
        assert_eq!(p.signed, "/fit/cover/h/200/w/300/images/a.jpg");
    }

    #[test]
    fn the_signature_is_the_first_segment_and_covers_the_rest() {
        let p = parse("/s/abc_-/w/300/images/a.jpg").unwrap();
        assert_eq!(p.signature, Some("abc_-"));
        assert_eq!(p.signed, "/w/300/images/a.jpg");
        assert_eq!(
            parse("/w/300/s/abc/images/a.jpg"),
            Err(UrlError::SignatureNotFirst)
        );
        assert_eq!(parse("/s//w/300/a.jpg"), Err(UrlError::SignatureInvalid));
        assert_eq!(parse("/s/abc"), Err(UrlError::SignatureInvalid));
        // A signed path may carry no options at all: the original, re-encoded.
        assert_eq!(parse("/s/abc/a.jpg").unwrap().raw_key, "a.jpg");
    }

    #[test]
    fn repeats_and_missing_values_are_refused() {
        assert_eq!(parse("/w/1/w/2/a.jpg"), Err(UrlError::Repeated("w")));
        assert_eq!(parse("/w"), Err(UrlError::MissingValue("w")));
        assert!(parse("/w/600/h/600/w/600/a.jpg").is_err());
    }

    #[test]
    fn the_end_marker_allows_keys_named_like_options() {
        assert_eq!(
            parse("/w/600/-/w/photo.jpg").unwrap().raw_key,
            "w/photo.jpg"
        );
        assert_eq!(parse("/-/w/600/a.jpg"), Err(UrlError::NoRoute));
    }

    #[test]
    fn other_paths_are_not_image_urls() {
        assert_eq!(parse("/favicon.ico"), Err(UrlError::NoRoute));
        assert_eq!(parse("/"), Err(UrlError::NoRoute));
        assert_eq!(parse(""), Err(UrlError::NoRoute));
    }
}
