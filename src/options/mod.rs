//! URL options as data, before any work: the path grammar ([`grammar`]), signatures ([`signing`]),
//! presets ([`presets`]) and `Accept` negotiation ([`accept`]) end in a plain [`Options`] value, each
//! value parsed and range-checked on its own. Cross-option rules, limits and the one canonical variant
//! key are [`crate::spec`]'s.
//!
//! Never touches a store or an image, and never allocates in proportion to anything but the path.

pub mod accept;
pub mod grammar;
pub mod presets;
pub mod signing;

use crate::pipeline::{Fit, Format, Gravity, Rgb};

/// The option names of the grammar, as they appear in paths and in `[presets.NAME]` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionName {
    Width,
    Height,
    Fit,
    Gravity,
    Dpr,
    Quality,
    Format,
    Background,
    Preset,
    Signature,
    Expires,
}

impl OptionName {
    const ALL: &[(&str, OptionName)] = &[
        ("w", OptionName::Width),
        ("h", OptionName::Height),
        ("fit", OptionName::Fit),
        ("g", OptionName::Gravity),
        ("dpr", OptionName::Dpr),
        ("q", OptionName::Quality),
        ("f", OptionName::Format),
        ("bg", OptionName::Background),
        ("p", OptionName::Preset),
        ("s", OptionName::Signature),
        ("exp", OptionName::Expires),
    ];

    pub fn from_segment(segment: &str) -> Option<OptionName> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == segment)
            .map(|&(_, o)| o)
    }

    /// The name as written in URLs.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map_or("?", |&(n, _)| n)
    }
}

/// `f/`: a fixed format, or the best the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatOption {
    Fixed(Format),
    Auto,
}

/// A device pixel ratio in tenths (`dpr/1.5` is 15), 10 and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dpr(pub u16);

impl Dpr {
    pub const ONE: Dpr = Dpr(10);

    /// Multiplies a dimension, rounding to the nearest pixel.
    pub fn apply(self, px: u32) -> u64 {
        (u64::from(px) * u64::from(self.0) + 5) / 10
    }
}

impl std::fmt::Display for Dpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 % 10 {
            0 => write!(f, "{}", self.0 / 10),
            tenths => write!(f, "{}.{tenths}", self.0 / 10),
        }
    }
}

/// The options of one URL (or one preset), each parsed; unset ones are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Option<Fit>,
    pub gravity: Option<Gravity>,
    pub dpr: Option<Dpr>,
    pub quality: Option<u8>,
    pub format: Option<FormatOption>,
    pub background: Option<Rgb>,
    pub preset: Option<String>,
    pub expires: Option<u64>,
}

/// Everything wrong a URL can be, each naming what to fix. Statuses are mapped in `http::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("no such route: image URLs look like /w/{{width}}/{{key}}")]
    NoRoute,
    #[error("option '{0}' has no value: options are name/value pairs, e.g. /w/600/{{key}}")]
    MissingValue(&'static str),
    #[error("option '{0}' is given twice")]
    Repeated(&'static str),
    #[error("option '{option}': '{value}' is not {expected}")]
    BadValue {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("option '{option}': {value} is above the maximum of {max}")]
    AboveMax {
        option: &'static str,
        value: String,
        max: String,
    },
    #[error("option '{option}': {value} is not allowed; allowed: {allowed}")]
    NotAllowed {
        option: &'static str,
        value: String,
        allowed: String,
    },
    #[error("the signature segment s/... must come first in the path")]
    SignatureNotFirst,
    #[error("this server only serves signed URLs: /s/{{signature}}/...")]
    SignatureRequired,
    #[error("the URL signature does not match")]
    SignatureInvalid,
    #[error("the signed URL expired at {0} (unix seconds)")]
    Expired(u64),
    #[error("unsigned URLs may only name a preset: /p/{{name}}/{{key}}")]
    OnlyPresets,
    #[error("option 'p': no preset named '{0}'")]
    UnknownPreset(String),
    #[error("option '{0}' is set by preset '{1}' and cannot be given again")]
    PresetConflict(&'static str, String),
    #[error(
        "options 'w' and 'h' ask for {width}x{height} = {pixels} pixels, above the limit of {limit}"
    )]
    OutputTooLarge {
        width: u64,
        height: u64,
        pixels: u64,
        limit: u64,
    },
    #[error("missing key: image URLs look like /w/{{width}}/{{key}}")]
    MissingKey,
    #[error("invalid key: {0}")]
    BadKey(&'static str),
    #[error(
        "{what} is {bytes} bytes long, above the limit of {limit} bytes (UTF-8, once percent-decoded)"
    )]
    KeyTooLong {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    #[error("'{0}' is under the variant prefix '{1}' and cannot be used as an original")]
    UnderCopyPrefix(String, String),
    #[error("'{0}' is outside the source prefixes ({1})")]
    OutsideSources(String, String),
}

/// Longest value echoed back in an error message.
const ECHO_CHARS: usize = 32;

fn bad(option: OptionName, value: &str, expected: &'static str) -> UrlError {
    UrlError::BadValue {
        option: option.as_str(),
        value: value.chars().take(ECHO_CHARS).collect(),
        expected,
    }
}

/// A whole number in its one spelling: digits only, no sign, no leading zero. `None` past `u64`.
fn canonical_number(raw: &str) -> Option<Result<u64, ()>> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    if !canonical {
        return None;
    }
    Some(raw.parse::<u64>().map_err(|_| ()))
}

impl Options {
    /// Parses one `name/value` pair into its field. Repetition is the grammar's to refuse.
    pub fn set(&mut self, name: OptionName, value: &str) -> Result<(), UrlError> {
        match name {
            OptionName::Width => self.width = Some(dimension(name, value)?),
            OptionName::Height => self.height = Some(dimension(name, value)?),
            OptionName::Fit => {
                self.fit = Some(
                    Fit::from_name(value)
                        .ok_or_else(|| bad(name, value, "one of inside, cover, contain, fill"))?,
                );
            }
            OptionName::Gravity => {
                let value = if value == "center" { "centre" } else { value };
                self.gravity = Some(Gravity::from_name(value).ok_or_else(|| {
                    bad(
                        name,
                        value,
                        "one of centre, north, south, east, west, northeast, northwest, southeast, southwest, smart",
                    )
                })?);
            }
            OptionName::Dpr => self.dpr = Some(dpr(value)?),
            OptionName::Quality => {
                let q = match canonical_number(value) {
                    Some(Ok(q)) if (1..=100).contains(&q) => q,
                    _ => return Err(bad(name, value, "a quality from 1 to 100")),
                };
                self.quality = Some(u8::try_from(q).unwrap_or(100));
            }
            OptionName::Format => {
                self.format = Some(match value {
                    "auto" => FormatOption::Auto,
                    "jpeg" | "jpg" => FormatOption::Fixed(Format::Jpeg),
                    "png" => FormatOption::Fixed(Format::Png),
                    "webp" => FormatOption::Fixed(Format::WebP),
                    "avif" => FormatOption::Fixed(Format::Avif),
                    "gif" => FormatOption::Fixed(Format::Gif),
                    _ => return Err(bad(name, value, "one of jpeg, png, webp, avif, gif, auto")),
                });
            }
            OptionName::Background => {
                self.background = Some(
                    Rgb::from_hex(value)
                        .ok_or_else(|| bad(name, value, "a colour as six hex digits (rrggbb)"))?,
                );
            }
            OptionName::Preset => {
                if !presets::valid_name(value) {
                    return Err(bad(
                        name,
                        value,
                        "a preset name (a-z, 0-9, '-' and '_', at most 64)",
                    ));
                }
                self.preset = Some(value.to_string());
            }
            OptionName::Expires => match canonical_number(value) {
                Some(Ok(t)) => self.expires = Some(t),
                _ => return Err(bad(name, value, "a time in unix seconds")),
            },
            // The grammar takes the signature out before options are parsed.
            OptionName::Signature => return Err(UrlError::SignatureNotFirst),
        }
        Ok(())
    }

    /// The names of the options that are set, in grammar order.
    pub fn names(&self) -> Vec<OptionName> {
        let mut names = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                names.push(name);
            }
        };
        add(self.width.is_some(), OptionName::Width);
        add(self.height.is_some(), OptionName::Height);
        add(self.fit.is_some(), OptionName::Fit);
        add(self.gravity.is_some(), OptionName::Gravity);
        add(self.dpr.is_some(), OptionName::Dpr);
        add(self.quality.is_some(), OptionName::Quality);
        add(self.format.is_some(), OptionName::Format);
        add(self.background.is_some(), OptionName::Background);
        add(self.preset.is_some(), OptionName::Preset);
        add(self.expires.is_some(), OptionName::Expires);
        names
    }
}

/// A pixel dimension: 1 or more, canonical digits. The maximum is `spec`'s to check (after `dpr`).
fn dimension(name: OptionName, value: &str) -> Result<u32, UrlError> {
    match canonical_number(value) {
        Some(Ok(0)) => Err(bad(name, value, "a size of at least 1 pixel")),
        Some(Ok(v)) => u32::try_from(v).map_err(|_| UrlError::AboveMax {
            option: name.as_str(),
            value: value.chars().take(ECHO_CHARS).collect(),
            max: u32::MAX.to_string(),
        }),
        Some(Err(())) => Err(UrlError::AboveMax {
            option: name.as_str(),
            value: value.chars().take(ECHO_CHARS).collect(),
            max: u32::MAX.to_string(),
        }),
        None => Err(bad(
            name,
            value,
            "a whole number of pixels (digits only, no sign, no leading zero)",
        )),
    }
}

/// `1`, `1.5`, `2`: one digit 1-9, at most one decimal. The configured maximum is `spec`'s.
fn dpr(value: &str) -> Result<Dpr, UrlError> {
    let expected = "a pixel ratio from 1 with at most one decimal (1, 1.5, 2)";
    let b = value.as_bytes();
    let tenths = match b {
        [d @ b'1'..=b'9'] => u16::from(d - b'0') * 10,
        [d @ b'1'..=b'9', b'.', t @ b'0'..=b'9'] => u16::from(d - b'0') * 10 + u16::from(t - b'0'),
        _ => return Err(bad(OptionName::Dpr, value, expected)),
    };
    Ok(Dpr(tenths))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: &str) -> Result<Options, UrlError> {
        let mut o = Options::default();
        o.set(OptionName::from_segment(name).unwrap(), value)?;
        Ok(o)
    }

    #[test]
    fn each_option_parses_its_one_spelling() {
        assert_eq!(set("w", "600").unwrap().width, Some(600));
        assert_eq!(set("h", "1").unwrap().height, Some(1));
        assert_eq!(set("fit", "cover").unwrap().fit, Some(Fit::Cover));
        assert_eq!(set("g", "smart").unwrap().gravity, Some(Gravity::Smart));
        assert_eq!(set("g", "center").unwrap().gravity, Some(Gravity::Centre));
        assert_eq!(set("dpr", "1.5").unwrap().dpr, Some(Dpr(15)));
        assert_eq!(set("dpr", "2").unwrap().dpr, Some(Dpr(20)));
        assert_eq!(set("q", "100").unwrap().quality, Some(100));
        assert_eq!(
            set("f", "avif").unwrap().format,
            Some(FormatOption::Fixed(Format::Avif))
        );
        assert_eq!(set("f", "auto").unwrap().format, Some(FormatOption::Auto));
        assert_eq!(
            set("bg", "FF0000").unwrap().background,
            Some(Rgb([255, 0, 0]))
        );
        assert_eq!(set("p", "thumb").unwrap().preset.as_deref(), Some("thumb"));
        assert_eq!(
            set("exp", "1700000000").unwrap().expires,
            Some(1_700_000_000)
        );
    }

    #[test]
    fn signs_exponents_leading_zeros_and_junk_are_refused_naming_the_option() {
        for (name, value) in [
            ("w", "-1"),
            ("w", "+600"),
            ("w", "6e2"),
            ("w", "0600"),
            ("w", "0"),
            ("w", "600.0"),
            ("w", ""),
            ("h", " 1"),
            ("q", "0"),
            ("q", "101"),
            ("q", "080"),
            ("dpr", "0.5"),
            ("dpr", "1.25"),
            ("dpr", "01"),
            ("dpr", "1."),
            ("dpr", "2e0"),
            ("dpr", "10"),
            ("fit", "Cover"),
            ("g", "up"),
            ("f", "tiff"),
            ("bg", "fff"),
            ("p", "../x"),
            ("exp", "-5"),
        ] {
            let err = set(name, value).unwrap_err();
            assert!(
                err.to_string().contains(&format!("'{name}'")),
                "{name}/{value}: {err}"
            );
        }
        assert!(matches!(
            set("w", "99999999999999999999999"),
            Err(UrlError::AboveMax { option: "w", .. })
        ));
    }

    #[test]
    fn dpr_prints_canonically_and_multiplies_with_rounding() {
        assert_eq!(Dpr(20).to_string(), "2");
        assert_eq!(Dpr(15).to_string(), "1.5");
        assert_eq!(Dpr(15).apply(301), 452);
        assert_eq!(Dpr(20).apply(300), 600);
    }
}
