//! URL grammar: a request path becomes a [`VariantSpec`], and a spec has exactly one canonical variant key.
//!
//! ```text
//! path    = "/" option* ["-/"] key
//! option  = "w/" width            ; more options (h, fit, f, q, dpr, s) join this closed set later
//! width   = "1".."9" digit*       ; no sign, no leading zero, within the configured maximum
//! key     = segment ("/" segment)* ; percent-decoded; no empty, "." or ".." segments
//! ```
//! Options come first as `name/value` pairs; the key starts at the first segment that is not an option
//! name. A literal `-` segment ends the options early, for keys whose first segment is an option name
//! (`/w/600/-/w/photo.jpg` reads `w/photo.jpg`).
//!
//! Never touches a store or an image; everything downstream trusts a `VariantSpec` as already valid.

use crate::config::Config;
use crate::pipeline::PngMode;

/// Everything that determines a variant's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    /// Key of the original in the store, relative to the store root.
    pub source: String,
    /// Requested output width in pixels.
    pub width: u32,
    /// Encoder quality (from configuration today; a URL option later).
    pub quality: u8,
    /// PNG output mode (from configuration).
    pub png: PngMode,
}

/// The parts of the configuration the grammar enforces.
#[derive(Debug, Clone)]
pub struct SpecRules {
    pub copy_prefix: String,
    pub source_prefixes: Vec<String>,
    pub allowed_widths: Vec<u32>,
    pub max_width: u32,
    pub quality: u8,
    pub png: PngMode,
}

impl SpecRules {
    pub fn from_config(config: &Config) -> Self {
        SpecRules {
            copy_prefix: config.keys.copy_prefix.clone(),
            source_prefixes: config.keys.source_prefixes.clone(),
            allowed_widths: config.widths.allowed.clone(),
            max_width: config.widths.max,
            quality: config.output.quality,
            png: config.output.png,
        }
    }
}

/// Longest key S3 accepts.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("no such route: image URLs look like /w/{{width}}/{{key}}")]
    NoRoute,
    #[error("missing width: image URLs look like /w/{{width}}/{{key}}")]
    MissingWidth,
    #[error("option '{0}' is given twice")]
    Repeated(&'static str),
    #[error("width '{0}' is not a whole number of pixels (digits only, no sign, no leading zero)")]
    WidthNotNumber(String),
    #[error("width must be at least 1")]
    WidthZero,
    #[error("width {0} is above the maximum of {1}")]
    WidthAboveMax(u64, u32),
    #[error("width {0} is not allowed; allowed widths: {1}")]
    WidthNotAllowed(u32, String),
    #[error("missing key: image URLs look like /w/{{width}}/{{key}}")]
    MissingKey,
    #[error("invalid key: {0}")]
    BadKey(&'static str),
    #[error("'{0}' is under the variant prefix '{1}' and cannot be used as an original")]
    UnderCopyPrefix(String, String),
    #[error("'{0}' is outside the source prefixes ({1})")]
    OutsideSources(String, String),
}

/// Names of the options the grammar knows. A first path segment outside this set is not an image URL.
const OPTION_NAMES: &[&str] = &["w"];
const END_OF_OPTIONS: &str = "-";

impl VariantSpec {
    /// Parses a raw (still percent-encoded) request path.
    pub fn parse(path: &str, rules: &SpecRules) -> Result<VariantSpec, SpecError> {
        let mut segments = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
        let mut width: Option<&str> = None;
        let mut saw_option = false;
        while let Some(&name) = segments.peek() {
            if name == END_OF_OPTIONS && saw_option {
                segments.next();
                break;
            }
            if !OPTION_NAMES.contains(&name) {
                break;
            }
            segments.next();
            saw_option = true;
            let value = segments.next().ok_or(SpecError::MissingWidth)?;
            match name {
                "w" if width.is_some() => return Err(SpecError::Repeated("w")),
                "w" => width = Some(value),
                _ => unreachable!("OPTION_NAMES lists only options handled here"),
            }
        }
        if !saw_option {
            return Err(SpecError::NoRoute);
        }
        let width = parse_width(width.ok_or(SpecError::MissingWidth)?, rules)?;
        let raw_key = segments.collect::<Vec<_>>().join("/");
        let source = parse_key(&raw_key, rules)?;
        Ok(VariantSpec {
            source,
            width,
            quality: rules.quality,
            png: rules.png,
        })
    }

    /// The one key this variant is stored under: `<copy_prefix><source>/w<width>_q<quality>`, with `_p`
    /// appended in palette PNG mode (whatever the original's format: the mode is a setting, and a
    /// setting that changes bytes must change the key, or a stored variant would outlive it).
    /// All variants of an original share the prefix `<copy_prefix><source>/`, so they list and purge together.
    pub fn variant_key(&self, copy_prefix: &str) -> String {
        let png = match self.png {
            PngMode::Lossless => "",
            PngMode::Palette => "_p",
        };
        format!(
            "{copy_prefix}{}/w{}_q{}{png}",
            self.source, self.width, self.quality
        )
    }
}

fn parse_width(raw: &str, rules: &SpecRules) -> Result<u32, SpecError> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    if !canonical {
        return Err(SpecError::WidthNotNumber(truncate(raw, 32)));
    }
    // Digits only, so the only failure left is overflow: report it as above the maximum.
    let width: u64 = raw.parse().unwrap_or(u64::MAX);
    if width == 0 {
        return Err(SpecError::WidthZero);
    }
    if width > u64::from(rules.max_width) {
        return Err(SpecError::WidthAboveMax(width, rules.max_width));
    }
    let width =
        u32::try_from(width).map_err(|_| SpecError::WidthAboveMax(width, rules.max_width))?;
    if !rules.allowed_widths.is_empty() && !rules.allowed_widths.contains(&width) {
        let allowed = rules
            .allowed_widths
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SpecError::WidthNotAllowed(width, allowed));
    }
    Ok(width)
}

fn parse_key(raw: &str, rules: &SpecRules) -> Result<String, SpecError> {
    if raw.is_empty() {
        return Err(SpecError::MissingKey);
    }
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| SpecError::BadKey("not valid UTF-8 once percent-decoded"))?
        .into_owned();
    if key.len() > MAX_KEY_BYTES {
        return Err(SpecError::BadKey("longer than 1024 bytes"));
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(SpecError::BadKey(
            "control characters and backslashes are not allowed",
        ));
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(SpecError::BadKey(
            "empty, '.' and '..' path segments are not allowed",
        ));
    }
    // The loop guard: our own output is never an input. `copy` alone is refused too, since in a directory
    // store a file of that name would collide with the variant directory.
    let copy = rules.copy_prefix.as_str();
    if key.starts_with(copy) || key == copy.trim_end_matches('/') {
        return Err(SpecError::UnderCopyPrefix(key, copy.to_string()));
    }
    if !rules.source_prefixes.is_empty()
        && !rules
            .source_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    {
        return Err(SpecError::OutsideSources(
            key,
            rules.source_prefixes.join(", "),
        ));
    }
    Ok(key)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SpecRules {
        SpecRules::from_config(&Config::default())
    }

    fn parse(path: &str) -> Result<VariantSpec, SpecError> {
        VariantSpec::parse(path, &rules())
    }

    #[test]
    fn width_and_key_are_read() {
        let spec = parse("/w/600/images/x.jpg").unwrap();
        assert_eq!(
            spec,
            VariantSpec {
                source: "images/x.jpg".into(),
                width: 600,
                quality: 80,
                png: PngMode::Lossless,
            }
        );
    }

    #[test]
    fn variant_key_is_canonical_and_groups_by_original() {
        let spec = parse("/w/600/images/x.jpg").unwrap();
        assert_eq!(spec.variant_key("copy/"), "copy/images/x.jpg/w600_q80");
        let other = parse("/w/300/images/x.jpg").unwrap();
        assert!(other.variant_key("copy/").starts_with("copy/images/x.jpg/"));
    }

    #[test]
    fn invalid_widths_are_refused() {
        assert_eq!(parse("/w/0/a.jpg"), Err(SpecError::WidthZero));
        for bad in ["-1", "+600", "abc", "6e2", "600.0", "", "0600", " 600"] {
            assert!(
                matches!(
                    parse(&format!("/w/{bad}/a.jpg")),
                    Err(SpecError::WidthNotNumber(_))
                ),
                "width {bad:?} must be refused"
            );
        }
        assert_eq!(
            parse("/w/4097/a.jpg"),
            Err(SpecError::WidthAboveMax(4097, 4096))
        );
        assert!(matches!(
            parse("/w/99999999999999999999999/a.jpg"),
            Err(SpecError::WidthAboveMax(..))
        ));
    }

    #[test]
    fn allow_list_is_enforced() {
        let mut r = rules();
        r.allowed_widths = vec![300, 600, 900];
        assert!(VariantSpec::parse("/w/600/a.jpg", &r).is_ok());
        assert_eq!(
            VariantSpec::parse("/w/601/a.jpg", &r),
            Err(SpecError::WidthNotAllowed(601, "300, 600, 900".into()))
        );
    }

    #[test]
    fn copy_prefix_is_never_an_original() {
        assert!(matches!(
            parse("/w/600/copy/images/x.jpg/w300_q80"),
            Err(SpecError::UnderCopyPrefix(..))
        ));
        assert!(matches!(
            parse("/w/600/copy"),
            Err(SpecError::UnderCopyPrefix(..))
        ));
        // Percent-encoding cannot smuggle it in either.
        assert!(matches!(
            parse("/w/600/%63opy/x.jpg"),
            Err(SpecError::UnderCopyPrefix(..))
        ));
        assert!(parse("/w/600/copyright/x.jpg").is_ok());
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        for bad in [
            "../etc/passwd",
            "a/../b",
            "a//b",
            "./a",
            "a/%2e%2e/b",
            "a\\b",
            "a%00b",
            "%2Fetc/passwd",
            "a/",
        ] {
            assert!(
                matches!(parse(&format!("/w/600/{bad}")), Err(SpecError::BadKey(_))),
                "key {bad:?} must be refused"
            );
        }
        assert_eq!(parse("/w/600/"), Err(SpecError::MissingKey));
        assert_eq!(parse("/w/600"), Err(SpecError::MissingKey));
        assert_eq!(parse("/w"), Err(SpecError::MissingWidth));
        assert!(matches!(parse("/w/600/%ff.jpg"), Err(SpecError::BadKey(_))));
    }

    #[test]
    fn source_prefixes_are_enforced() {
        let mut r = rules();
        r.source_prefixes = vec!["images/".into()];
        assert!(VariantSpec::parse("/w/600/images/a.jpg", &r).is_ok());
        assert!(matches!(
            VariantSpec::parse("/w/600/private/a.jpg", &r),
            Err(SpecError::OutsideSources(..))
        ));
    }

    #[test]
    fn percent_encoded_keys_are_decoded() {
        assert_eq!(
            parse("/w/600/images/my%20photo.jpg").unwrap().source,
            "images/my photo.jpg"
        );
    }

    #[test]
    fn options_end_marker_allows_keys_named_like_options() {
        assert_eq!(parse("/w/600/-/w/photo.jpg").unwrap().source, "w/photo.jpg");
        assert_eq!(parse("/w/600/w/1/a.jpg"), Err(SpecError::Repeated("w")));
    }

    #[test]
    fn other_paths_are_not_image_urls() {
        assert_eq!(parse("/favicon.ico"), Err(SpecError::NoRoute));
        assert_eq!(parse("/"), Err(SpecError::NoRoute));
        assert_eq!(parse("/-/w/600/a.jpg"), Err(SpecError::NoRoute));
    }
}
