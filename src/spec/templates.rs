//! Pre-generation templates (`[pregenerate] variants`): URL options without a key (`w/300`, `p/thumb`),
//! parsed by the URL grammar and checked against the rules once, at start-up; each makes the same specs,
//! and so the same variant keys, as an HTTP request with its options.

use std::collections::BTreeMap;

use super::{SpecRules, VariantSpec};
use crate::options::{Options, UrlError, grammar};

/// The configured variant templates, parsed and checked.
#[derive(Debug, Clone)]
pub struct Templates {
    templates: Vec<(String, Options)>,
}

impl Templates {
    /// Parses `pregenerate.variants`, each checked against `rules` (sizes, presets, limits); the error
    /// names the template and what is wrong with it.
    pub fn parse(variants: &[String], rules: &SpecRules) -> Result<Templates, String> {
        let mut templates = Vec::new();
        for text in variants {
            let invalid = |why: String| format!("pregenerate.variants: {text:?}: {why}");
            let trimmed = text.trim_matches('/');
            let path = format!("/{trimmed}/-/x");
            let not_options = || {
                invalid("expected URL options without a key, e.g. \"w/300\" or \"p/thumb\"".into())
            };
            let parsed = match grammar::parse(&path) {
                Ok(parsed) if !trimmed.is_empty() && parsed.raw_key == "x" => parsed,
                Ok(_) | Err(UrlError::NoRoute) => return Err(not_options()),
                Err(e) => return Err(invalid(e.to_string())),
            };
            if parsed.signature.is_some() || parsed.options.expires.is_some() {
                return Err(invalid(
                    "signatures and exp/ belong to URLs, not to pre-generation".into(),
                ));
            }
            // Checked against the rules now (sizes, presets, limits), with a key every rule accepts.
            let probe_key = format!(
                "{}x.jpg",
                rules.source_prefixes.first().map_or("", String::as_str)
            );
            VariantSpec::from_template(&parsed.options, &probe_key, rules)
                .map_err(|e| invalid(e.to_string()))?;
            templates.push((text.clone(), parsed.options));
        }
        Ok(Templates { templates })
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Every variant the templates make of `key`, each once.
    pub fn specs_for(&self, key: &str, rules: &SpecRules) -> Result<Vec<VariantSpec>, UrlError> {
        let mut by_key = BTreeMap::new();
        for (_, options) in &self.templates {
            for spec in VariantSpec::from_template(options, key, rules)? {
                by_key
                    .entry(spec.variant_key(&rules.copy_prefix))
                    .or_insert(spec);
            }
        }
        Ok(by_key.into_values().collect())
    }
}
