//! The crate's modules in layers, lowest first, and a test that holds every module to importing only
//! from layers below its own: no import circles, and no module reaching up (the pipeline never knows of
//! stores, `variants` never of HTTP). Run it alone with `cargo test --lib layers`.

/// Every top-level module, lowest layer first. A module may name (`crate::x`) only modules before it.
const LAYERS: &[&str] = &[
    "allocator",
    "histogram",
    "tier",
    "pipeline",
    "budget",
    "options",
    "config",
    "spec",
    "settings",
    "store",
    "pool",
    "telemetry",
    "coalesce",
    "variant_error",
    "originals",
    "variants",
    "pregenerate",
    "events",
    "http",
    "lambda",
    "shutdown",
    "startup",
    "layers",
];

mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::LAYERS;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The top-level modules each file's code (not its comments or its tests) names as `crate::x`.
    fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for file in files {
            let rel = file
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if matches!(top.as_str(), "lib" | "main" | "cli" | "layers")
                || rel.ends_with("/tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let mut names = Vec::new();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    // `crate::` as a path root, not the end of a name (`image_crate::x`).
                    let in_name = rest[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                    rest = &rest[at + "crate::".len()..];
                    if in_name {
                        continue;
                    }
                    if let Some(group) = rest.strip_prefix('{') {
                        // `use crate::{a::X, b};`: each path's first segment.
                        let group = group.split('}').next().unwrap_or("");
                        names.extend(
                            group
                                .split(',')
                                .map(|p| p.trim().split("::").next().unwrap_or("").to_string()),
                        );
                    } else {
                        let end = rest
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(rest.len());
                        names.push(rest[..end].to_string());
                    }
                }
            }
            let entry = graph.entry(top.clone()).or_default();
            for name in names.into_iter().filter(|n| !n.is_empty() && *n != top) {
                entry.entry(name).or_insert_with(|| rel.clone());
            }
        }
        graph
    }

    #[test]
    fn every_module_is_in_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|l| {
                l.strip_prefix("pub mod ")
                    .or_else(|| l.strip_prefix("mod "))
            })
            .map(|l| l.trim_end_matches(';'))
            .collect();
        let mut a = declared.clone();
        let mut b = LAYERS.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "src/lib.rs's modules and LAYERS");
    }

    #[test]
    fn no_module_imports_from_its_own_layer_or_above() {
        let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
        let mut wrong = Vec::new();
        for (module, names) in imports() {
            let Some(own) = rank(&module) else {
                wrong.push(format!("{module} is in no layer"));
                continue;
            };
            for (name, file) in names {
                match rank(&name) {
                    Some(r) if r < own => {}
                    Some(_) => wrong.push(format!(
                        "{file}: {module} names crate::{name}, a layer above"
                    )),
                    None => wrong.push(format!("{file}: crate::{name} is no module")),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
