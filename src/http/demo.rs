//! `GET /`: a page people can look at, only for the embedded default store (the shipped `samples/`).
//! Each sample image is shown four ways: `srcset` with `f/auto`, a smart `cover` crop, a `dpr/2` image
//! and the `thumb` preset; a caption under each says what the response reported (format and tier, from
//! its `Server-Timing` entries; bytes; natural size), read in the browser after load.
//!
//! Rendered once at start-up from the sample directory's listing; never reads a store per request.
//! Served with its own [`policy`]: images from this origin, and only the page's own style and script.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Image files the page shows, from `<root>/images/`, sorted. Unknown extensions are skipped.
pub fn sample_keys(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("images")) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".webp", ".gif"]
                .iter()
                .any(|ext| lower.ends_with(ext))
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .map(|name| format!("images/{name}"))
        .collect();
    keys.sort();
    keys
}

/// The page for `keys` (plain ASCII names, checked by [`sample_keys`]).
pub fn render(keys: &[String], preset: Option<&str>) -> String {
    let mut figures = String::new();
    for key in keys {
        let mut cells = vec![
            figure(
                "f/auto, srcset 300w/600w at 300 CSS px",
                &format!(
                    r#"<img src="/w/300/f/auto/{key}" srcset="/w/300/f/auto/{key} 300w, /w/600/f/auto/{key} 600w" sizes="300px" width="300" alt="{key}">"#
                ),
                300,
            ),
            figure(
                "200x200 smart cover crop, f/auto",
                &format!(
                    r#"<img src="/w/200/h/200/fit/cover/g/smart/f/auto/{key}" width="200" height="200" alt="{key} cropped">"#
                ),
                200,
            ),
            figure(
                "dpr/2: 300 px drawn in 150 CSS px",
                &format!(r#"<img src="/w/150/dpr/2/{key}" width="150" alt="{key} at 2x">"#),
                150,
            ),
        ];
        if let Some(preset) = preset {
            cells.push(figure(
                &format!("preset p/{preset}, f/auto, at 150 CSS px"),
                &format!(
                    r#"<img src="/p/{preset}/f/auto/{key}" width="150" height="150" alt="{key} preset {preset}">"#
                ),
                150,
            ));
        }
        figures.push_str(&format!(
            "<section><h2>{key}</h2><div class=\"row\">{}</div></section>\n",
            cells.concat()
        ));
    }
    PAGE.replace("{{FIGURES}}", &figures)
}

/// The page's `Content-Security-Policy`: images from this origin; the one inline style and the one inline
/// script by their hashes (no `'unsafe-inline'`); nothing else (no other loads, no forms, no framing).
pub fn policy() -> String {
    let hash = |open: &str, close: &str| {
        let inline = PAGE
            .split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map_or("", |(inline, _)| inline);
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(inline));
        format!("'sha256-{digest}'")
    };
    format!(
        "default-src 'none'; img-src 'self'; style-src {}; script-src {}; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
        hash("<style>", "</style>"),
        hash("<script>", "</script>")
    )
}

fn figure(title: &str, img: &str, css_width: u32) -> String {
    format!(
        "<figure data-css-width=\"{css_width}\">{img}<figcaption><b>{title}</b><br><span class=\"report\">loading…</span></figcaption></figure>"
    )
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sizer: the sample images</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; }
img { display: block; background: repeating-conic-gradient(#ddd 0 25%, #fff 0 50%) 0 0 / 16px 16px; height: auto; }
figcaption { font-size: 12px; max-width: 300px; }
code { background: #f3f3f3; padding: 0 .2em; }
</style>
</head>
<body>
<h1>sizer</h1>
<p>Every image below is resized on demand from the sample directory. Try your own: <code>/w/{width}/{key}</code>,
<code>/w/400/h/400/fit/cover/g/smart/f/auto/{key}</code>; the README lists every option.</p>
{{FIGURES}}
<pre id="report" hidden></pre>
<script>
// After every image has loaded, caption each with what its response reported, and leave a JSON summary
// in #report for the browser test.
window.addEventListener('load', () => {
  const rows = [];
  for (const fig of document.querySelectorAll('figure')) {
    const img = fig.querySelector('img');
    const url = img.currentSrc || img.src;
    const timing = performance.getEntriesByName(url).pop();
    const server = {};
    for (const e of (timing && timing.serverTiming) || []) server[e.name] = e.description;
    const row = {
      url: new URL(url).pathname,
      loaded: img.complete && img.naturalWidth > 0,
      natural: [img.naturalWidth, img.naturalHeight],
      cssWidth: Math.round(img.getBoundingClientRect().width),
      expectedCssWidth: +fig.dataset.cssWidth,
      format: server.format || null,
      tier: server.tier || null,
      bytes: timing ? timing.encodedBodySize : null,
    };
    rows.push(row);
    fig.querySelector('.report').textContent =
      `${row.format || '?'} ${row.natural[0]}x${row.natural[1]}, ${row.bytes ?? '?'} bytes, tier ${row.tier || '?'}`;
  }
  const report = document.getElementById('report');
  report.textContent = JSON.stringify(rows);
  report.dataset.done = 'true';
});
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_each_sample_four_ways() {
        let page = render(&["images/a.jpg".to_string()], Some("thumb"));
        for url in [
            "/w/300/f/auto/images/a.jpg",
            "/w/600/f/auto/images/a.jpg 600w",
            "/w/200/h/200/fit/cover/g/smart/f/auto/images/a.jpg",
            "/w/150/dpr/2/images/a.jpg",
            "/p/thumb/f/auto/images/a.jpg",
        ] {
            assert!(page.contains(url), "{url}");
        }
        assert!(!render(&["images/a.jpg".to_string()], None).contains("/p/"));
    }

    #[test]
    fn the_policy_allows_the_inline_style_and_script_by_hash_and_nothing_else() {
        let policy = policy();
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        // The page holds exactly one of each, so the hashes cover all of its inline code.
        assert_eq!(PAGE.matches("<style>").count(), 1);
        assert_eq!(PAGE.matches("<script>").count(), 1);
        assert!(
            !PAGE.contains(" style="),
            "inline style attributes would need 'unsafe-hashes'"
        );
        assert!(axum::http::HeaderValue::from_str(&policy).is_ok());
    }

    #[test]
    fn only_plain_image_names_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        for name in ["b.png", "a.jpg", "notes.txt", "x\"y.jpg"] {
            std::fs::write(dir.path().join("images").join(name), b"").unwrap();
        }
        assert_eq!(sample_keys(dir.path()), ["images/a.jpg", "images/b.png"]);
        assert!(sample_keys(&dir.path().join("missing")).is_empty());
    }
}
