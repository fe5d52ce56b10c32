//! A request becomes a [`VariantSpec`]: the options of [`crate::options`] checked against each other and
//! against the configuration (signature, expiry, presets-only, allow-list, limits), reduced to one
//! canonical form, and a spec has exactly one variant key. URLs that must produce the same bytes get the
//! same key: `dpr` is folded into the sizes, defaults and options that cannot change the output are left
//! out, and every value has one spelling.
//!
//! Checks run in this order, so a forged URL costs nothing: signature (403) → expiry (410) → everything
//! else (400). Never touches a store or an image; everything downstream trusts a `VariantSpec`.

use crate::config::Config;
use crate::options::presets::Presets;
use crate::options::signing::Signer;
use crate::options::{Dpr, FormatOption, OptionName, Options, UrlError, accept, grammar};
use crate::pipeline::{Fit, Format, Gravity, OutputFormat, PngMode, Rgb, Target};

/// Everything that determines a variant's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    /// Key of the original in the store, relative to the store root.
    pub source: String,
    /// Output box in pixels (`dpr` applied); at most one may be `None` for "follow the aspect ratio",
    /// both for "the original's size".
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// How the box is met; `Inside` unless both sides are given.
    pub fit: Fit,
    /// Crop or placement; `Centre` unless `fit` is `cover` or `contain`.
    pub gravity: Gravity,
    /// Padding / flattening colour, when the URL gave one.
    pub background: Option<Rgb>,
    /// Encoder quality, 1-100.
    pub quality: u8,
    /// PNG output mode (from configuration).
    pub png: PngMode,
    /// Keep the original's ICC profile rather than convert to sRGB (from configuration).
    pub keep_profile: bool,
    /// Copy the original's EXIF credits (from configuration).
    pub keep_credits: bool,
    /// Serve an animation's first frame only (from configuration).
    pub still: bool,
    pub format: OutputFormat,
    /// Whether the format depended on the request's `Accept` (the response then varies on it).
    pub negotiated: bool,
    /// When the URL stops being valid (`exp`, unix seconds): no response to it may be cached longer.
    /// Changes nothing in the bytes, so it is not in the key.
    pub expires: Option<u64>,
}

/// The configured limits every job runs under.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    pub allow_upscale: bool,
    pub max_pixels: u64,
    pub max_output_pixels: u64,
    pub max_avif_pixels: u64,
    pub max_frames: u32,
    pub max_animation_pixels: u64,
}

impl JobLimits {
    pub fn from_config(config: &Config) -> JobLimits {
        JobLimits {
            allow_upscale: config.widths.allow_upscale,
            max_pixels: config.limits.max_source_pixels,
            max_output_pixels: config.limits.max_output_pixels,
            max_avif_pixels: config.limits.max_avif_pixels,
            max_frames: config.limits.max_frames,
            max_animation_pixels: config.limits.max_animation_pixels,
        }
    }
}

/// What a request carries besides its path.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContext<'a> {
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// A CDN's normalised token ([`accept::TOKEN_HEADER`]).
    pub accept_token: Option<&'a str>,
    /// Now, in unix seconds, for `exp`.
    pub now: u64,
}

impl RequestContext<'_> {
    pub fn at(now: std::time::SystemTime) -> RequestContext<'static> {
        RequestContext {
            now: now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ..RequestContext::default()
        }
    }
}

/// The parts of the configuration the grammar enforces.
#[derive(Debug, Clone)]
pub struct SpecRules {
    pub copy_prefix: String,
    pub source_prefixes: Vec<String>,
    pub allowed_sizes: Vec<u32>,
    /// What unsigned URLs may give for `q`, `dpr` and `bg` (empty: anything).
    pub allowed_qualities: Vec<u8>,
    pub allowed_dprs: Vec<Dpr>,
    pub allowed_backgrounds: Vec<Rgb>,
    pub max_size: u32,
    pub max_dpr: Dpr,
    pub max_output_pixels: u64,
    pub quality: u8,
    pub png: PngMode,
    pub keep_profile: bool,
    pub keep_credits: bool,
    pub still: bool,
    pub auto_format: bool,
    pub auto_formats: Vec<Format>,
    pub presets: Presets,
    pub signer: Signer,
    pub signing_required: bool,
    pub only_presets: bool,
}

impl SpecRules {
    /// Parses the grammar's settings of a validated configuration (presets, signing keys, allow-lists);
    /// the error names the setting. Called once, by `Settings::parse`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(SpecRules {
            copy_prefix: config.keys.copy_prefix.clone(),
            source_prefixes: config.keys.source_prefixes.clone(),
            allowed_sizes: config.widths.allowed.clone(),
            allowed_qualities: config.limits.allowed_qualities.clone(),
            allowed_dprs: config
                .limits
                .allowed_dprs
                .iter()
                .map(|&d| {
                    let tenths = (d * 10.0).round();
                    if (tenths - d * 10.0).abs() > 1e-6
                        || !(10.0..=99.0).contains(&tenths)
                        || d > config.limits.max_dpr
                    {
                        return Err(format!(
                            "limits.allowed_dprs contains {d}: each must be from 1 to limits.max_dpr with at most one decimal"
                        ));
                    }
                    Ok(Dpr(tenths as u16))
                })
                .collect::<Result<_, _>>()?,
            allowed_backgrounds: config
                .limits
                .allowed_backgrounds
                .iter()
                .map(|hex| {
                    Rgb::from_hex(hex).ok_or_else(|| {
                        format!("limits.allowed_backgrounds: {hex:?} is not six hex digits")
                    })
                })
                .collect::<Result<_, _>>()?,
            max_size: config.widths.max,
            max_dpr: Dpr((config.limits.max_dpr * 10.0).round().clamp(10.0, 99.0) as u16),
            max_output_pixels: config.limits.max_output_pixels,
            quality: config.output.quality,
            png: config.output.png,
            keep_profile: config.output.keep_profile,
            keep_credits: config.output.keep_copyright,
            still: config.output.first_frame_only,
            auto_format: config.output.auto_format,
            auto_formats: auto_formats(&config.output.auto_formats)?,
            presets: Presets::from_config(&config.presets)?,
            signer: Signer::from_hex(&config.signing.keys)?,
            signing_required: config.signing.required,
            only_presets: config.signing.only_presets,
        })
    }
}

/// `output.auto_formats`: AVIF and WebP, each at most once, in the order of preference.
fn auto_formats(names: &[String]) -> Result<Vec<Format>, String> {
    let mut formats = Vec::new();
    for name in names {
        match Format::from_name(name) {
            Some(f @ (Format::Avif | Format::WebP)) if !formats.contains(&f) => formats.push(f),
            _ => {
                return Err(format!(
                    "output.auto_formats may list \"avif\" and \"webp\", each once; got {name:?}"
                ));
            }
        }
    }
    Ok(formats)
}

/// Longest key S3 accepts; a variant's key (copy prefix + original's key + `/` + variant name) must fit.
const MAX_STORE_KEY_BYTES: usize = 1024;
/// Room kept for `/` + the variant name after an original's key. The longest name
/// [`VariantSpec::variant_key`] can make (`w4294967295_h4294967295_contain_gnorthwest_bgrrggbb_q100_p_icc_cr_still.auto-webp`)
/// is 81 bytes; a unit test holds it under this.
pub const VARIANT_NAME_ROOM: usize = 128;
/// Longest path segment of a key: what a file name may be on common file systems (ext4, XFS, APFS,
/// NTFS), beyond which the directory store fails with `ENAMETOOLONG`.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Longest key of an original: its variants' keys must still fit S3's 1024 bytes (891 with `copy/`).
pub fn max_key_bytes(copy_prefix: &str) -> usize {
    MAX_STORE_KEY_BYTES.saturating_sub(copy_prefix.len() + VARIANT_NAME_ROOM)
}

impl VariantSpec {
    /// Parses a raw (still percent-encoded) request path with no `Accept` and the current time.
    pub fn parse(path: &str, rules: &SpecRules) -> Result<VariantSpec, UrlError> {
        VariantSpec::from_request(
            path,
            &RequestContext::at(std::time::SystemTime::now()),
            rules,
        )
    }

    /// Parses a raw (still percent-encoded) request path in the context of its request.
    pub fn from_request(
        path: &str,
        request: &RequestContext<'_>,
        rules: &SpecRules,
    ) -> Result<VariantSpec, UrlError> {
        if rules.signing_required && !path.starts_with("/s/") {
            return Err(UrlError::SignatureRequired);
        }
        // The signature before anything else of the URL: a wrongly signed URL learns nothing of the
        // grammar (a 403 whatever its options say, never a 400 naming one).
        let (signature, signed_part) = grammar::split_signature(path)?;
        let signed = match signature {
            Some(signature) if rules.signer.verify(signature, signed_part) => true,
            Some(_) => return Err(UrlError::SignatureInvalid),
            None => false,
        };
        let parsed = grammar::parse(path)?;
        let options = parsed.options;
        if let Some(expires) = options.expires
            && request.now > expires
        {
            return Err(UrlError::Expired(expires));
        }
        if !signed && rules.only_presets && options.names() != [OptionName::Preset] {
            return Err(UrlError::OnlyPresets);
        }
        VariantSpec::build(
            options,
            parse_key(&parsed.raw_key, rules)?,
            signed,
            request,
            rules,
        )
    }

    /// The variants a pre-generation template (`w/300`, `p/thumb`: URL options without a key, trusted
    /// like a signed URL) makes of the original `key`. One spec, or one per format a client could
    /// negotiate when the template asks for `f/auto` (or `output.auto_format` is on): the keys are exactly
    /// the ones HTTP requests for the same options use.
    pub fn from_template(
        template: &Options,
        key: &str,
        rules: &SpecRules,
    ) -> Result<Vec<VariantSpec>, UrlError> {
        let key = check_key(key.to_string(), rules)?;
        let now = RequestContext::default();
        // Presets first, so one that asks for `f/auto` is seen as negotiable.
        let mut template = rules.presets.expand(template.clone())?;
        template.preset = None;
        let negotiable = matches!(template.format, Some(FormatOption::Auto))
            || (template.format.is_none() && rules.auto_format);
        if !negotiable {
            return Ok(vec![VariantSpec::build(template, key, true, &now, rules)?]);
        }
        template.format = None;
        let mut base = VariantSpec::build(template, key, true, &now, rules)?;
        base.negotiated = true;
        let mut specs = vec![base.clone()];
        for &format in &rules.auto_formats {
            specs.push(VariantSpec {
                format: OutputFormat::negotiated(format, &rules.auto_formats),
                ..base.clone()
            });
        }
        Ok(specs)
    }

    /// The spec of checked `options` for the original `key`: presets expanded, sizes checked (the
    /// allow-list binds unsigned URLs only), defaults filled in, one spelling for each output.
    fn build(
        options: Options,
        key: String,
        signed: bool,
        request: &RequestContext<'_>,
        rules: &SpecRules,
    ) -> Result<VariantSpec, UrlError> {
        if !signed {
            check_allowed(&options, rules)?;
        }
        let options = rules.presets.expand(options)?;
        let (width, height) = sizes(&options, signed, rules)?;
        let both = width.is_some() && height.is_some();
        let fit = if both {
            options.fit.unwrap_or_default()
        } else {
            Fit::Inside
        };
        let gravity = match (fit, options.gravity.unwrap_or_default()) {
            (Fit::Cover, g) => g,
            (Fit::Contain, Gravity::Smart) => Gravity::Centre,
            (Fit::Contain, g) => g,
            _ => Gravity::Centre,
        };
        let (format, negotiated) = match options.format {
            Some(FormatOption::Fixed(f)) => (OutputFormat::Fixed(f), false),
            Some(FormatOption::Auto) => (negotiate(request, rules), true),
            None if rules.auto_format => (negotiate(request, rules), true),
            None => (OutputFormat::Original, false),
        };
        // Lossless formats ignore quality: one key whatever `q` says.
        let quality = match format {
            OutputFormat::Fixed(Format::Png | Format::Gif) => rules.quality,
            _ => options.quality.unwrap_or(rules.quality),
        };
        // The background pads `contain` and flattens alpha for formats without it: with neither (another
        // fit, and an output format known to keep alpha), it changes no byte, and has no key part.
        let full_alpha = |f: Format| matches!(f, Format::Png | Format::WebP | Format::Avif);
        let keeps_alpha = match format {
            OutputFormat::Fixed(f) => full_alpha(f),
            OutputFormat::Negotiated { format, animated } => {
                full_alpha(format) && animated.is_none_or(full_alpha)
            }
            OutputFormat::Original => false,
        };
        let background = options
            .background
            .filter(|_| fit == Fit::Contain || !keeps_alpha);
        Ok(VariantSpec {
            source: key,
            width,
            height,
            fit,
            gravity,
            background,
            quality,
            png: rules.png,
            keep_profile: rules.keep_profile,
            keep_credits: rules.keep_credits,
            still: rules.still,
            format,
            negotiated,
            expires: options.expires,
        })
    }

    /// The one key this variant is stored under: `<copy_prefix><source>/<options>[.<format>]`, where
    /// `<options>` joins, in this order and only when they matter, `w<px>`, `h<px>`, the fit (`cover`,
    /// `contain`, `fill`), `g<gravity>`, `bg<rrggbb>`, `q<quality>` (always) and `p` (palette PNG mode,
    /// a setting that changes bytes, so a stored variant never outlives it); `.<ext>` names a fixed
    /// format, `.auto-<ext>` a negotiated one. A plain `/w/600/` URL keeps its historical key `w600_q80`.
    /// All variants of an original share the prefix `<copy_prefix><source>/`, so they list and purge together.
    pub fn variant_key(&self, copy_prefix: &str) -> String {
        // Every field, by name: a new one fails to compile here until it has a key part or a reason
        // for none.
        let VariantSpec {
            source,
            width,
            height,
            fit,
            gravity,
            background,
            quality,
            png,
            keep_profile,
            keep_credits,
            still,
            format,
            // The suffix's `auto-` says it.
            negotiated: _,
            // Changes no byte.
            expires: _,
        } = self;
        let mut parts: Vec<String> = Vec::new();
        if let Some(w) = width {
            parts.push(format!("w{w}"));
        }
        if let Some(h) = height {
            parts.push(format!("h{h}"));
        }
        if *fit != Fit::Inside {
            parts.push(fit.name().to_string());
        }
        if *gravity != Gravity::Centre {
            parts.push(format!("g{}", gravity.name()));
        }
        if let Some(bg) = background {
            parts.push(format!("bg{}", bg.hex()));
        }
        parts.push(format!("q{quality}"));
        if *png == PngMode::Palette {
            parts.push("p".into());
        }
        if *keep_profile {
            parts.push("icc".into());
        }
        if *keep_credits {
            parts.push("cr".into());
        }
        if *still {
            parts.push("still".into());
        }
        let suffix = match format {
            OutputFormat::Original => String::new(),
            OutputFormat::Fixed(f) => format!(".{}", f.extension()),
            OutputFormat::Negotiated { format, .. } => format!(".auto-{}", format.extension()),
        };
        format!("{copy_prefix}{source}/{}{suffix}", parts.join("_"))
    }

    /// The pipeline's job for this variant, under the configured limits.
    pub fn job(
        &self,
        limits: &JobLimits,
        deadline: Option<std::time::Instant>,
    ) -> crate::pipeline::Job {
        // Every field, by name: a new one fails to compile here until the pipeline is told of it (or
        // a reason is given why it needs not be).
        let VariantSpec {
            source: _,
            width: _,
            height: _,
            fit: _,
            gravity: _,
            background,
            quality,
            png,
            keep_profile,
            keep_credits,
            still,
            format,
            // Read by HTTP (`Vary`), not by the pipeline.
            negotiated: _,
            expires: _,
        } = *self;
        crate::pipeline::Job {
            // width, height, fit, gravity
            target: self.target(limits.allow_upscale),
            background,
            quality,
            png,
            format,
            keep_profile,
            keep_credits,
            max_pixels: limits.max_pixels,
            max_output_pixels: limits.max_output_pixels,
            max_avif_pixels: limits.max_avif_pixels,
            animation: crate::pipeline::animation::Limits {
                animate: !still,
                max_frames: limits.max_frames,
                max_pixels: limits.max_animation_pixels,
            },
            deadline,
        }
    }

    /// The box and fit for the pipeline.
    pub fn target(&self, allow_upscale: bool) -> Target {
        Target {
            width: self.width,
            height: self.height,
            fit: self.fit,
            gravity: self.gravity,
            allow_upscale,
        }
    }

    /// Whether an output of `width` x `height` is smaller than this spec asked for, i.e. was reduced to
    /// avoid upscaling. Read from the served dimensions, so it holds for every tier.
    pub fn reduced(&self, width: u32, height: u32) -> bool {
        match (self.width, self.height) {
            (None, None) => false,
            (Some(w), None) => width < w,
            (None, Some(h)) => height < h,
            (Some(w), Some(h)) => match self.fit {
                // Within the box, one side meets it unless the scale was capped at the original's.
                Fit::Inside => width < w && height < h,
                _ => (width, height) != (w, h),
            },
        }
    }
}

/// Whether `key` is one of the variants of the original `source`: a direct child of
/// `<copy_prefix><source>/` (see [`VariantSpec::variant_key`]). Variant names never contain `/`, so
/// `copy/a/b.jpg/w300_q80`, a variant of `a/b.jpg`, is not one of `a`'s although it shares the prefix.
pub fn is_variant_of(copy_prefix: &str, source: &str, key: &str) -> bool {
    key.strip_prefix(copy_prefix)
        .and_then(|rest| rest.strip_prefix(source))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// The output box: `w`/`h` checked against the allow-list (unsigned URLs), multiplied by `dpr`, then
/// checked against the maximum size and the output pixel cap.
fn sizes(
    options: &Options,
    signed: bool,
    rules: &SpecRules,
) -> Result<(Option<u32>, Option<u32>), UrlError> {
    let dpr = options.dpr.unwrap_or(Dpr::ONE);
    if dpr > rules.max_dpr {
        return Err(UrlError::AboveMax {
            option: "dpr",
            value: dpr.to_string(),
            max: rules.max_dpr.to_string(),
        });
    }
    let side = |value: Option<u32>, option: OptionName| -> Result<Option<u32>, UrlError> {
        let Some(value) = value else { return Ok(None) };
        if !signed && !rules.allowed_sizes.is_empty() && !rules.allowed_sizes.contains(&value) {
            return Err(not_allowed(option.as_str(), value, &rules.allowed_sizes));
        }
        let scaled = dpr.apply(value);
        if scaled > u64::from(rules.max_size) {
            let shown = if dpr == Dpr::ONE {
                value.to_string()
            } else {
                format!("{value} x dpr {dpr} = {scaled}")
            };
            return Err(UrlError::AboveMax {
                option: option.as_str(),
                value: shown,
                max: rules.max_size.to_string(),
            });
        }
        Ok(Some(u32::try_from(scaled).unwrap_or(u32::MAX)))
    };
    let width = side(options.width, OptionName::Width)?;
    let height = side(options.height, OptionName::Height)?;
    if let (Some(w), Some(h)) = (width, height) {
        let pixels = u64::from(w) * u64::from(h);
        if pixels > rules.max_output_pixels {
            return Err(UrlError::OutputTooLarge {
                width: u64::from(w),
                height: u64::from(h),
                pixels,
                limit: rules.max_output_pixels,
            });
        }
    }
    Ok((width, height))
}

/// A value an unsigned URL may not give, with the ones it may.
fn not_allowed<T: std::fmt::Display>(option: &'static str, value: T, allowed: &[T]) -> UrlError {
    UrlError::NotAllowed {
        option,
        value: value.to_string(),
        allowed: allowed
            .iter()
            .map(T::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The allow-lists of `q`, `dpr` and `bg` (`limits.allowed_*`), for what an unsigned URL gives itself
/// (a preset's values are the configuration's own).
fn check_allowed(options: &Options, rules: &SpecRules) -> Result<(), UrlError> {
    fn check<T: PartialEq + Copy + std::fmt::Display>(
        option: &'static str,
        value: Option<T>,
        allowed: &[T],
    ) -> Result<(), UrlError> {
        match value {
            Some(v) if !allowed.is_empty() && !allowed.contains(&v) => {
                Err(not_allowed(option, v, allowed))
            }
            _ => Ok(()),
        }
    }
    check("q", options.quality, &rules.allowed_qualities)?;
    check("dpr", options.dpr, &rules.allowed_dprs)?;
    check(
        "bg",
        options.background.map(HexRgb),
        &rules
            .allowed_backgrounds
            .iter()
            .copied()
            .map(HexRgb)
            .collect::<Vec<_>>(),
    )
}

/// A colour shown as its six hex digits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HexRgb(Rgb);

impl std::fmt::Display for HexRgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.hex())
    }
}

fn negotiate(request: &RequestContext<'_>, rules: &SpecRules) -> OutputFormat {
    match accept::negotiate(request.accept, request.accept_token, &rules.auto_formats) {
        Some(format) => OutputFormat::negotiated(format, &rules.auto_formats),
        None => OutputFormat::Original,
    }
}

fn parse_key(raw: &str, rules: &SpecRules) -> Result<String, UrlError> {
    if raw.is_empty() {
        return Err(UrlError::MissingKey);
    }
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| UrlError::BadKey("not valid UTF-8 once percent-decoded"))?
        .into_owned();
    check_key(key, rules)
}

/// A decoded key that may name an original: bounded, plain segments, outside the copy prefix, inside the
/// source prefixes.
pub fn check_key(key: String, rules: &SpecRules) -> Result<String, UrlError> {
    if key.is_empty() {
        return Err(UrlError::MissingKey);
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(UrlError::BadKey(
            "control characters and backslashes are not allowed",
        ));
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(UrlError::BadKey(
            "empty, '.' and '..' path segments are not allowed",
        ));
    }
    // Refused before any store call: a longer key or segment fails there instead (S3's key limit for
    // its variants, `ENAMETOOLONG` in a directory), as a 502.
    let limit = max_key_bytes(&rules.copy_prefix);
    if key.len() > limit {
        return Err(UrlError::KeyTooLong {
            what: "key",
            bytes: key.len(),
            limit,
        });
    }
    if let Some(segment) = key.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
        return Err(UrlError::KeyTooLong {
            what: "key segment",
            bytes: segment.len(),
            limit: MAX_SEGMENT_BYTES,
        });
    }
    // The loop guard: our own output is never an input. `copy` alone is refused too, since in a directory
    // store a file of that name would collide with the variant directory.
    let copy = rules.copy_prefix.as_str();
    if key.starts_with(copy) || key == copy.trim_end_matches('/') {
        return Err(UrlError::UnderCopyPrefix(key, copy.to_string()));
    }
    if !rules.source_prefixes.is_empty()
        && !rules
            .source_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    {
        return Err(UrlError::OutsideSources(
            key,
            rules.source_prefixes.join(", "),
        ));
    }
    Ok(key)
}

mod templates;

pub use templates::Templates;

#[cfg(test)]
mod tests;
