//! The CloudFront Function of the README (`deploy/cloudfront/accept-token.js`), run under node: for real
//! browsers' `Accept` headers and edge cases, sizer must answer the token the function derives exactly as
//! it answers the `Accept` the token came from (same format, still and animated), or a CDN keyed on the
//! token would hand one client's format to another. The README must show the function as it is.

use std::process::Command;

use crate::common::*;

both_stores!(the_edge_token_gets_what_the_accept_header_gets);

const FUNCTION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/cloudfront/accept-token.js"
);

const ACCEPTS: &[&str] = &[
    // Chrome, Firefox, Safari 17, Safari 15, curl.
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
    "*/*",
    // AVIF without WebP, upper case and parameters, look-alikes, nothing.
    "image/avif",
    "IMAGE/WEBP;q=0.5, Image/AVIF",
    "image/avifx,image/webpx",
    "",
];

/// The token the function sets for `accept` (`None`: no Accept header at all).
fn edge_token(accept: Option<&str>) -> String {
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    let headers = match accept {
        Some(a) => format!(
            "{{ accept: {{ value: {} }} }}",
            serde_json::to_string(a).unwrap()
        ),
        None => "{}".into(),
    };
    let script = format!(
        "const src = require('fs').readFileSync({}, 'utf8');\n\
         const handler = new Function(src + '\\nreturn handler;')();\n\
         const out = handler({{ request: {{ headers: {headers} }} }});\n\
         process.stdout.write(out.headers['sizer-accept'].value);",
        serde_json::to_string(FUNCTION).unwrap()
    );
    let out = Command::new(&node)
        .arg("-e")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| {
            panic!("node ({node}) is needed for this test (scripts/test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_shows_the_function_as_it_is() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let source = std::fs::read_to_string(FUNCTION).unwrap();
    let function = &source[source.find("function handler").unwrap()..];
    let shown: String = function
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("   {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        readme.contains(&shown),
        "README's CloudFront function differs from {FUNCTION}"
    );
}

async fn the_edge_token_gets_what_the_accept_header_gets(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut config = test_config();
    // The origin custom header CloudFront adds (README, "Behind CloudFront").
    config.output.accept_token_secret = "from-cloudfront-origin".into();
    let app = spawn_app(&store, config).await;
    let still = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let animated = store
        .put_original(
            "images/square.gif",
            crate::animation::moving_square_gif().into(),
        )
        .await;
    let mut tokens = Vec::new();
    for accept in ACCEPTS.iter().map(|a| Some(*a)).chain([None]) {
        let token = edge_token(accept);
        for key in [&still, &animated] {
            let url = format!("{}/w/40/f/auto/{key}", app.base);
            let mut direct = app.client.get(&url);
            if let Some(accept) = accept {
                direct = direct.header("accept", accept);
            }
            let direct = direct.send().await.unwrap();
            let edge = app
                .client
                .get(&url)
                .header("sizer-accept", &token)
                .header("sizer-cdn-secret", "from-cloudfront-origin")
                .send()
                .await
                .unwrap();
            assert_eq!(
                (direct.status().as_u16(), edge.status().as_u16()),
                (200, 200)
            );
            assert_eq!(
                header(&direct, "content-type"),
                header(&edge, "content-type"),
                "{key} for Accept {accept:?} (token {token})"
            );
        }
        tokens.push(token);
    }
    // The browsers get their best: AVIF for Chrome, Firefox and Safari 17, WebP for Safari 15.
    assert_eq!(
        tokens,
        [
            "avif", "avif", "avif", "webp", "none", "none", "avif", "none", "none", "none"
        ]
    );
    app.stop().await;
}
