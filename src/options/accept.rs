//! `f/auto`: the request's `Accept` header reduced to one token, the best format the client takes.
//!
//! Only the presence of `image/avif` and `image/webp` counts: q-values are ignored (browsers list what
//! they decode; nobody sends `image/webp;q=0`), wildcards never select a modern format (curl's `*/*`
//! gets the original's format), and only the first [`MAX_ACCEPT_BYTES`] are read. A format that cannot
//! animate (AVIF) is chosen only for a client that also takes the first listed format that can (WebP),
//! which an animated original is given instead. A CDN that keys its
//! cache on a normalised header instead of `Accept` sends the same token in [`TOKEN_HEADER`], which
//! wins when it is valid.

use crate::pipeline::{Format, animation_fallback, can_animate};

/// The header a CDN (e.g. a CloudFront Function) sets to the token it derived from `Accept`:
/// `avif`, `webp` or `none`.
pub const TOKEN_HEADER: &str = "sizer-accept";

/// The header carrying `output.accept_token_secret`: a token in [`TOKEN_HEADER`] is honoured only with it.
pub const SECRET_HEADER: &str = "sizer-cdn-secret";

/// Whether a request's `presented` secret is the configured one (compared in constant time); never
/// when none is configured.
pub fn token_trusted(configured: &str, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    !configured.is_empty()
        && presented.is_some_and(|p| bool::from(p.trim().as_bytes().ct_eq(configured.as_bytes())))
}

/// How much of `Accept` is read. Real browsers send under 200 bytes.
pub const MAX_ACCEPT_BYTES: usize = 1024;

/// Formats `f/auto` may choose, the only ones that need `Accept` to be known.
pub const NEGOTIABLE: &[Format] = &[Format::Avif, Format::WebP];

/// The first format of `preference` the client takes, or `None` for the original's format.
pub fn negotiate(
    accept: Option<&str>,
    token: Option<&str>,
    preference: &[Format],
) -> Option<Format> {
    if let Some(token) = token.map(str::trim) {
        if token.eq_ignore_ascii_case("none") {
            return None;
        }
        if let Some(format) = preference
            .iter()
            .copied()
            .find(|f| token.eq_ignore_ascii_case(f.extension()))
        {
            return Some(format);
        }
    }
    let accept = accept.map(bounded)?;
    // A format that cannot animate is granted only with the one an animated original would get instead
    // (see `OutputFormat::negotiated`), so that every client given this outcome decodes either.
    let animating = animation_fallback(preference);
    preference.iter().copied().find(|&format| {
        accepts(accept, format)
            && (can_animate(format) || animating.is_none_or(|other| accepts(accept, other)))
    })
}

/// Whether `accept` lists `format`'s media type explicitly.
fn accepts(accept: &str, format: Format) -> bool {
    let wanted = format.content_type();
    accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case(wanted)
    })
}

/// The first `MAX_ACCEPT_BYTES` of `accept`, cut at a character boundary.
fn bounded(accept: &str) -> &str {
    if accept.len() <= MAX_ACCEPT_BYTES {
        return accept;
    }
    let mut end = MAX_ACCEPT_BYTES;
    while !accept.is_char_boundary(end) {
        end -= 1;
    }
    &accept[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const FIREFOX: &str = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const SAFARI_17: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const SAFARI_15: &str =
        "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
    const CURL: &str = "*/*";
    const ORDER: &[Format] = &[Format::Avif, Format::WebP];

    #[test]
    fn real_browsers_get_their_best_format() {
        assert_eq!(negotiate(Some(CHROME), None, ORDER), Some(Format::Avif));
        assert_eq!(negotiate(Some(FIREFOX), None, ORDER), Some(Format::Avif));
        assert_eq!(negotiate(Some(SAFARI_17), None, ORDER), Some(Format::Avif));
        assert_eq!(negotiate(Some(SAFARI_15), None, ORDER), Some(Format::WebP));
        assert_eq!(negotiate(Some(CURL), None, ORDER), None);
        assert_eq!(negotiate(None, None, ORDER), None);
    }

    #[test]
    fn avif_needs_webp_too_when_webp_is_negotiable() {
        // An animated original given AVIF gets WebP instead: a client that cannot take WebP is not
        // given AVIF either, unless WebP is not on the list.
        assert_eq!(negotiate(Some("image/avif"), None, ORDER), None);
        assert_eq!(
            negotiate(Some("image/avif,image/webp"), None, ORDER),
            Some(Format::Avif)
        );
        assert_eq!(
            negotiate(Some("image/avif"), None, &[Format::Avif]),
            Some(Format::Avif)
        );
    }

    #[test]
    fn the_configured_order_decides() {
        let webp_first = &[Format::WebP, Format::Avif];
        assert_eq!(
            negotiate(Some(CHROME), None, webp_first),
            Some(Format::WebP)
        );
        assert_eq!(negotiate(Some(CHROME), None, &[]), None);
    }

    #[test]
    fn q_values_wildcards_and_case_are_handled_and_length_is_bounded() {
        assert_eq!(
            negotiate(Some("IMAGE/WEBP;q=0.1"), None, ORDER),
            Some(Format::WebP)
        );
        assert_eq!(negotiate(Some("image/*"), None, ORDER), None);
        assert_eq!(negotiate(Some("image/avifx"), None, ORDER), None);
        let long = format!("{},image/avif", "x".repeat(4000));
        assert_eq!(negotiate(Some(&long), None, ORDER), None);
        let multibyte = "é".repeat(800);
        assert_eq!(negotiate(Some(&multibyte), None, ORDER), None);
    }

    #[test]
    fn a_cdn_token_wins_when_valid() {
        assert_eq!(
            negotiate(Some(CHROME), Some("webp"), ORDER),
            Some(Format::WebP)
        );
        assert_eq!(negotiate(Some(CHROME), Some("none"), ORDER), None);
        assert_eq!(
            negotiate(Some(CURL), Some("avif"), ORDER),
            Some(Format::Avif)
        );
        // Junk falls back to Accept.
        assert_eq!(
            negotiate(Some(CHROME), Some("jpeg2000"), ORDER),
            Some(Format::Avif)
        );
    }
}
