//! Named bundles of options from `[presets.NAME]` tables, whose keys are the URL option names
//! (`w = 300`, `fit = "cover"`, `f = "auto"`). Each value is parsed by the same code as in a URL, at
//! start-up, so a bad preset stops the service instead of failing requests.
//!
//! `p/NAME` in a URL expands in place. The rule for mixing: a URL may add options the preset leaves unset
//! (`/p/thumb/dpr/2/...` when `thumb` sets no `dpr`), but giving one the preset sets is a 400, so a
//! preset's name always means its options.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{OptionName, Options, Role, UrlError};

/// A value in a `[presets.NAME]` table, as TOML or an environment variable gives it; it is read back as
/// the same text a URL would carry (`300`, `1.5`, `"cover"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PresetValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for PresetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PresetValue::Int(v) => write!(f, "{v}"),
            // `2.0` reads as `2`, `1.5` as `1.5`: the URL spellings.
            PresetValue::Float(v) => write!(f, "{v}"),
            PresetValue::Text(v) => f.write_str(v),
        }
    }
}

/// Longest preset name.
const MAX_NAME: usize = 64;

/// Whether `name` can name a preset: a-z, 0-9, `-`, `_`, 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The options a preset may set: every one that changes the output.
fn settable() -> Vec<&'static str> {
    OptionName::ALL
        .iter()
        .filter(|o| o.role() == Role::Output)
        .map(|o| o.as_str())
        .collect()
}

#[derive(Debug, Clone, Default)]
pub struct Presets {
    by_name: HashMap<String, Options>,
}

impl Presets {
    /// Parses the configured tables; the error names the preset and the option.
    pub fn from_config(
        tables: &BTreeMap<String, BTreeMap<String, PresetValue>>,
    ) -> Result<Presets, String> {
        let mut by_name = HashMap::new();
        for (name, table) in tables {
            if !valid_name(name) {
                return Err(format!(
                    "presets.{name}: a preset name is a-z, 0-9, '-' and '_', at most {MAX_NAME}"
                ));
            }
            let mut options = Options::default();
            for (option, value) in table {
                let parsed = OptionName::from_segment(option).filter(|o| o.role() == Role::Output);
                let Some(parsed) = parsed else {
                    return Err(format!(
                        "presets.{name}.{option}: not an option a preset can set ({})",
                        settable().join(", ")
                    ));
                };
                options
                    .set(parsed, &value.to_string())
                    .map_err(|e| format!("presets.{name}: {e}"))?;
            }
            if options == Options::default() {
                return Err(format!("presets.{name} sets no options"));
            }
            by_name.insert(name.clone(), options);
        }
        Ok(Presets { by_name })
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The URL's options with its preset (if it names one) merged in.
    pub fn expand(&self, url: Options) -> Result<Options, UrlError> {
        let Some(name) = url.preset.clone() else {
            return Ok(url);
        };
        let preset = self
            .by_name
            .get(&name)
            .ok_or_else(|| UrlError::UnknownPreset(name.clone()))?;
        let mut merged = url;
        merged
            .merge(preset)
            .map_err(|option| UrlError::PresetConflict(option.as_str(), name.clone()))?;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::FormatOption;
    use crate::pipeline::Fit;

    fn presets() -> Presets {
        let mut thumb = BTreeMap::new();
        thumb.insert("w".to_string(), PresetValue::Int(300));
        thumb.insert("h".to_string(), PresetValue::Int(300));
        thumb.insert("fit".to_string(), PresetValue::Text("cover".into()));
        thumb.insert("f".to_string(), PresetValue::Text("auto".into()));
        let mut tables = BTreeMap::new();
        tables.insert("thumb".to_string(), thumb);
        Presets::from_config(&tables).unwrap()
    }

    #[test]
    fn a_preset_expands_and_may_be_extended_but_not_contradicted() {
        let p = presets();
        let url = Options {
            preset: Some("thumb".into()),
            ..Options::default()
        };
        let merged = p.expand(url.clone()).unwrap();
        assert_eq!(merged.width, Some(300));
        assert_eq!(merged.fit, Some(Fit::Cover));
        assert_eq!(merged.format, Some(FormatOption::Auto));
        let retina = p
            .expand(Options {
                dpr: Some(crate::options::Dpr(20)),
                ..url.clone()
            })
            .unwrap();
        assert_eq!(retina.dpr, Some(crate::options::Dpr(20)));
        assert_eq!(
            p.expand(Options {
                width: Some(600),
                ..url
            }),
            Err(UrlError::PresetConflict("w", "thumb".into()))
        );
        assert_eq!(
            p.expand(Options {
                preset: Some("nope".into()),
                ..Options::default()
            }),
            Err(UrlError::UnknownPreset("nope".into()))
        );
    }

    #[test]
    fn bad_presets_are_refused_at_start_up_naming_the_option() {
        let table = |k: &str, v: PresetValue| {
            let mut t = BTreeMap::new();
            t.insert(k.to_string(), v);
            let mut tables = BTreeMap::new();
            tables.insert("x".to_string(), t);
            Presets::from_config(&tables)
        };
        assert!(table("w", PresetValue::Int(0)).unwrap_err().contains("'w'"));
        assert!(
            table("fit", PresetValue::Text("crop".into()))
                .unwrap_err()
                .contains("'fit'")
        );
        assert!(
            table("p", PresetValue::Text("x".into()))
                .unwrap_err()
                .contains("presets.x.p")
        );
        assert!(table("width", PresetValue::Int(3)).is_err());
        assert_eq!(
            table("dpr", PresetValue::Float(1.5)).map(|p| p.by_name["x"].dpr),
            Ok(Some(crate::options::Dpr(15)))
        );
        assert!(table("dpr", PresetValue::Float(2.0)).is_ok());
    }
}
