//! The configuration parsed once. Every setting with a typed runtime form (the URL rules with their
//! presets and signing keys, the pre-generation templates, the response header values) is parsed here,
//! at start-up, and nowhere else; validation of those settings *is* this parse, so a value that does not
//! parse stops the service with the setting named, and what runs is exactly what was checked. Plain
//! values (numbers, timeouts, prefixes) are `Config::validate`'s; startup hands the parsed parts out.

use axum::http::HeaderValue;

use crate::config::{Config, ConfigError};
use crate::spec::{SpecRules, Templates};

/// The parsed runtime values of one validated [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the grammar enforces: prefixes, allow-lists, limits, presets, the signer.
    pub rules: SpecRules,
    /// `pregenerate.variants`, each checked against `rules`.
    pub templates: Templates,
    /// `output.cache_control`, the `Cache-Control` of variants.
    pub cache_control: HeaderValue,
    /// `output.error_cache_control`, the `Cache-Control` of error answers.
    pub error_cache_control: HeaderValue,
}

impl Settings {
    pub fn parse(config: &Config) -> Result<Settings, ConfigError> {
        let rules = SpecRules::from_config(config).map_err(ConfigError::Invalid)?;
        if config.signing.required && !rules.signer.has_keys() {
            return Err(ConfigError::Invalid(
                "signing.required is true but signing.keys is empty".into(),
            ));
        }
        let templates =
            Templates::parse(&config.pregenerate.variants, &rules).map_err(ConfigError::Invalid)?;
        Ok(Settings {
            rules,
            templates,
            cache_control: header_value(&config.output.cache_control, "output.cache_control")?,
            error_cache_control: header_value(
                &config.output.error_cache_control,
                "output.error_cache_control",
            )?,
        })
    }
}

fn header_value(value: &str, field: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(value)
        .map_err(|_| ConfigError::Invalid(format!("{field} is not a valid HTTP header value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(edit: impl Fn(&mut Config), field: &str) {
        let mut c = Config::default();
        edit(&mut c);
        let c = c.validate().expect("plain values are valid");
        let message = Settings::parse(&c).unwrap_err().to_string();
        assert!(message.contains(field), "{field}: {message}");
    }

    #[test]
    fn the_default_configuration_parses() {
        let settings = Settings::parse(&Config::default().validate().unwrap()).unwrap();
        assert_eq!(settings.rules.copy_prefix, "copy/");
        assert!(settings.templates.is_empty());
    }

    #[test]
    fn every_parsed_setting_names_itself_when_it_does_not_parse() {
        refused(
            |c| c.limits.allowed_dprs = vec![1.25],
            "limits.allowed_dprs",
        );
        refused(|c| c.limits.allowed_dprs = vec![4.0], "limits.allowed_dprs");
        refused(
            |c| c.limits.allowed_backgrounds = vec!["#fff".into()],
            "limits.allowed_backgrounds",
        );
        refused(
            |c| c.output.auto_formats = vec!["jpeg".into()],
            "output.auto_formats",
        );
        refused(
            |c| c.output.auto_formats = vec!["webp".into(), "webp".into()],
            "output.auto_formats",
        );
        refused(|c| c.signing.keys = vec!["abcd".into()], "signing.keys");
        refused(|c| c.signing.required = true, "signing.required");
        refused(
            |c| {
                c.presets.insert(
                    "x".into(),
                    [(
                        "w".to_string(),
                        crate::options::presets::PresetValue::Int(0),
                    )]
                    .into(),
                );
            },
            "presets.x",
        );
        refused(
            |c| c.pregenerate.variants = vec!["w/0".into()],
            "pregenerate.variants",
        );
        refused(
            |c| c.output.cache_control = "max-age=1\n".into(),
            "output.cache_control",
        );
        refused(
            |c| c.output.error_cache_control = "\u{7f}".into(),
            "output.error_cache_control",
        );
    }
}
