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

/// What an option does to a request, which decides where it may appear and whether it is in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Changes the output's bytes: part of the variant key (where it matters), settable by a preset.
    Output,
    /// `p`: names a preset, which expands to `Output` options.
    Preset,
    /// `exp`: bounds how long the URL is valid; changes no byte, so it has no key part.
    Validity,
}

/// Two values of an option that make different outputs, and the options that make the difference
/// visible (`g` changes nothing without a `cover` crop): what the tests that enumerate the table use.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    pub values: [&'static str; 2],
    pub context: &'static str,
}

/// THE option table. Each row is one URL option: its enum variant, its `Options` field and type, its
/// name in paths and `[presets.NAME]` tables, its value parser, its role, and two sample values in a
/// context where they change the output. The grammar's names, the parser's dispatch, the set-option
/// list behind the only-presets rule, the preset merge and the option list the tests enumerate (variant
/// key, only-presets, README table, fuzz dictionary) are all generated from it, so an option cannot be
/// known to one of them and missing from another. (`s/`, the signature, is not an option: the grammar
/// cuts it out first; see [`grammar`].)
macro_rules! option_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $field:ident: $ty:ty = $name:literal, $parse:path, $role:ident,
            [$a:literal, $b:literal] in $context:literal;
    )*) => {
        /// The option names of the grammar, as they appear in paths and in `[presets.NAME]` tables.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OptionName {
            $($(#[$doc])* $variant,)*
        }

        impl OptionName {
            /// Every option, in grammar (and key) order.
            pub const ALL: &[OptionName] = &[$(OptionName::$variant),*];

            pub fn from_segment(segment: &str) -> Option<OptionName> {
                match segment {
                    $($name => Some(OptionName::$variant),)*
                    _ => None,
                }
            }

            /// The name as written in URLs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(OptionName::$variant => $name,)*
                }
            }

            pub fn role(self) -> Role {
                match self {
                    $(OptionName::$variant => Role::$role,)*
                }
            }

            pub fn samples(self) -> Samples {
                match self {
                    $(OptionName::$variant => Samples { values: [$a, $b], context: $context },)*
                }
            }
        }

        /// The options of one URL (or one preset), each parsed; unset ones are `None`.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Options {
            $($(#[$doc])* pub $field: Option<$ty>,)*
        }

        impl Options {
            /// Parses one `name/value` pair into its field. Repetition is the grammar's to refuse.
            pub fn set(&mut self, name: OptionName, value: &str) -> Result<(), UrlError> {
                match name {
                    $(OptionName::$variant => self.$field = Some($parse(name, value)?),)*
                }
                Ok(())
            }

            /// The names of the options that are set, in grammar order.
            pub fn names(&self) -> Vec<OptionName> {
                let mut names = Vec::new();
                $(if self.$field.is_some() {
                    names.push(OptionName::$variant);
                })*
                names
            }

            /// Adds every option `preset` sets; one this value sets too is a conflict, named.
            pub fn merge(&mut self, preset: &Options) -> Result<(), OptionName> {
                $(if let Some(value) = &preset.$field {
                    if self.$field.is_some() {
                        return Err(OptionName::$variant);
                    }
                    self.$field = Some(value.clone());
                })*
                Ok(())
            }
        }
    };
}

option_table! {
    /// `w/{px}`: output width.
    Width width: u32 = "w", dimension, Output, ["300", "400"] in "";
    /// `h/{px}`: output height.
    Height height: u32 = "h", dimension, Output, ["200", "300"] in "";
    /// `fit/{mode}`: how a `w` x `h` box is met.
    Fit fit: Fit = "fit", fit, Output, ["cover", "contain"] in "w/300/h/200";
    /// `g/{gravity}`: what a crop keeps, where padding goes.
    Gravity gravity: Gravity = "g", gravity, Output, ["north", "south"] in "w/300/h/200/fit/cover";
    /// `dpr/{x}`: multiplies `w` and `h`.
    Dpr dpr: Dpr = "dpr", dpr, Output, ["1.5", "2"] in "w/300";
    /// `q/{1-100}`: lossy encoders' quality.
    Quality quality: u8 = "q", quality, Output, ["50", "60"] in "w/300";
    /// `f/{format}`: output format, or `auto`.
    Format format: FormatOption = "f", format, Output, ["webp", "png"] in "w/300";
    /// `bg/{rrggbb}`: padding and flattening colour.
    Background background: Rgb = "bg", background, Output, ["ff0000", "00ff00"]
        in "w/300/h/200/fit/contain";
    /// `p/{name}`: a configured preset.
    Preset preset: String = "p", preset, Preset, ["a", "b"] in "";
    /// `exp/{unix seconds}`: when the URL stops being valid.
    Expires expires: u64 = "exp", expires, Validity, ["4000000000", "4000000001"] in "w/300";
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

fn fit(name: OptionName, value: &str) -> Result<Fit, UrlError> {
    Fit::from_name(value).ok_or_else(|| bad(name, value, "one of inside, cover, contain, fill"))
}

fn gravity(name: OptionName, value: &str) -> Result<Gravity, UrlError> {
    let value = if value == "center" { "centre" } else { value };
    Gravity::from_name(value).ok_or_else(|| {
        bad(
            name,
            value,
            "one of centre, north, south, east, west, northeast, northwest, southeast, southwest, smart",
        )
    })
}

fn quality(name: OptionName, value: &str) -> Result<u8, UrlError> {
    match canonical_number(value) {
        Some(Ok(q)) if (1..=100).contains(&q) => Ok(u8::try_from(q).unwrap_or(100)),
        _ => Err(bad(name, value, "a quality from 1 to 100")),
    }
}

fn format(name: OptionName, value: &str) -> Result<FormatOption, UrlError> {
    Ok(match value {
        "auto" => FormatOption::Auto,
        "jpeg" | "jpg" => FormatOption::Fixed(Format::Jpeg),
        "png" => FormatOption::Fixed(Format::Png),
        "webp" => FormatOption::Fixed(Format::WebP),
        "avif" => FormatOption::Fixed(Format::Avif),
        "gif" => FormatOption::Fixed(Format::Gif),
        _ => return Err(bad(name, value, "one of jpeg, png, webp, avif, gif, auto")),
    })
}

fn background(name: OptionName, value: &str) -> Result<Rgb, UrlError> {
    Rgb::from_hex(value).ok_or_else(|| bad(name, value, "a colour as six hex digits (rrggbb)"))
}

fn preset(name: OptionName, value: &str) -> Result<String, UrlError> {
    if !presets::valid_name(value) {
        return Err(bad(
            name,
            value,
            "a preset name (a-z, 0-9, '-' and '_', at most 64)",
        ));
    }
    Ok(value.to_string())
}

fn expires(name: OptionName, value: &str) -> Result<u64, UrlError> {
    match canonical_number(value) {
        Some(Ok(t)) => Ok(t),
        _ => Err(bad(name, value, "a time in unix seconds")),
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
fn dpr(name: OptionName, value: &str) -> Result<Dpr, UrlError> {
    let expected = "a pixel ratio from 1 with at most one decimal (1, 1.5, 2)";
    let b = value.as_bytes();
    let tenths = match b {
        [d @ b'1'..=b'9'] => u16::from(d - b'0') * 10,
        [d @ b'1'..=b'9', b'.', t @ b'0'..=b'9'] => u16::from(d - b'0') * 10 + u16::from(t - b'0'),
        _ => return Err(bad(name, value, expected)),
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

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The option names in a document: the first backticked `name/` of each row of the table that starts
    /// with `header`.
    fn table_names(doc: &str, header: &str) -> Vec<String> {
        doc.lines()
            .skip_while(|l| !l.starts_with(header))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cell = l.trim_start_matches("| `");
                cell.split_once('/').map(|(name, _)| name.to_string())
            })
            .collect()
    }

    #[test]
    fn the_readme_documents_every_option_of_the_table_and_no_other() {
        let readme = include_str!("../../README.md");
        let documented = table_names(readme, "| option | values | meaning |");
        let mut expected: Vec<String> = OptionName::ALL
            .iter()
            .map(|o| o.as_str().to_string())
            .collect();
        expected.push(grammar::SIGNATURE.to_string());
        let (mut a, mut b) = (documented.clone(), expected.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "README's option table: {documented:?}");
    }

    #[test]
    fn the_fuzz_dictionary_names_every_option_of_the_table_and_no_other() {
        let dict = include_str!("../../fuzz/url.dict");
        let mut segments: Vec<&str> = dict
            .lines()
            .filter_map(|l| l.strip_prefix("\"/")?.strip_suffix("/\""))
            .filter(|s| *s != "-" && *s != grammar::SIGNATURE)
            .collect();
        let mut expected: Vec<&str> = OptionName::ALL.iter().map(|o| o.as_str()).collect();
        segments.sort_unstable();
        expected.sort_unstable();
        assert_eq!(segments, expected);
    }

    #[test]
    fn every_option_parses_both_its_samples_and_names_itself_when_refused() {
        for &option in OptionName::ALL {
            assert_eq!(OptionName::from_segment(option.as_str()), Some(option));
            for value in option.samples().values {
                let mut o = Options::default();
                o.set(option, value)
                    .unwrap_or_else(|e| panic!("{}/{value}: {e}", option.as_str()));
                assert_eq!(o.names(), [option]);
            }
            let err = Options::default().set(option, "\u{1}").unwrap_err();
            assert!(
                err.to_string().contains(&format!("'{}'", option.as_str())),
                "{err}"
            );
        }
    }
}
