//! URL and key attacks, sent byte for byte (HTTP clients would normalise most of them away): traversal in
//! every encoding, overlong UTF-8, NUL, backslashes, huge and many segments, option values with signs,
//! exponents, leading zeros and overflow, repeats, forged signatures. Every one is a precise 4xx with a
//! JSON body naming the problem, never a 5xx, and nothing is ever written.

use crate::common::*;

/// (path, status). `{k}` is replaced by the key of a real original.
const CASES: &[(&str, u16)] = &[
    // Traversal, in every spelling.
    ("/w/300/../etc/passwd", 400),
    ("/w/300/{k}/../../etc/passwd", 400),
    ("/w/300/%2e%2e/etc/passwd", 400),
    ("/w/300/%2E%2E/etc/passwd", 400),
    ("/w/300/%2e./etc/passwd", 400),
    ("/w/300/.%2E/etc/passwd", 400),
    ("/w/300/a/%2e%2e%2f%2e%2e%2fetc/passwd", 400),
    ("/w/300/%c0%ae%c0%ae/etc/passwd", 400),
    ("/w/300/%e0%80%ae%e0%80%ae/etc/passwd", 400),
    ("/w/300/..%5c..%5cetc%5cpasswd", 400),
    ("/w/300/a\\..\\b", 400),
    ("/w/300/%5c%5cserver%5cshare", 400),
    ("/w/300/{k}%00.png", 400),
    ("/w/300/a%0d%0aSet-Cookie:x", 400),
    ("/w/300/./{k}", 400),
    ("/w/300/a//b.jpg", 400),
    ("/w/300/%2fetc/passwd", 400),
    ("/w/300/%ff%fe.jpg", 400),
    // The variant prefix is never an original, however spelled.
    ("/w/300/copy/{k}/w300_q80", 400),
    ("/w/300/%63opy/x.jpg", 400),
    ("/w/300/%63%6f%70%79/x.jpg", 400),
    ("/w/300/copy", 400),
    // Missing parts.
    ("/w/300", 400),
    ("/w/300/", 400),
    ("/w", 400),
    ("/h/", 400),
    // Option values: signs, exponents, leading zeros, junk, overflow.
    ("/w/+300/{k}", 400),
    ("/w/-300/{k}", 400),
    ("/w/3e2/{k}", 400),
    ("/w/0300/{k}", 400),
    ("/w/300.0/{k}", 400),
    ("/w/0x12c/{k}", 400),
    ("/w/%20300/{k}", 400),
    ("/w/0/{k}", 400),
    ("/w/99999999999999999999999999/{k}", 400),
    ("/w/4294967296/{k}", 400),
    ("/h/-1/{k}", 400),
    ("/q/0/w/300/{k}", 400),
    ("/q/101/w/300/{k}", 400),
    ("/q/1e2/w/300/{k}", 400),
    ("/dpr/0/w/300/{k}", 400),
    ("/dpr/1e1/w/300/{k}", 400),
    ("/dpr/NaN/w/300/{k}", 400),
    ("/dpr/inf/w/300/{k}", 400),
    ("/dpr/-2/w/300/{k}", 400),
    ("/dpr/2.55/w/300/{k}", 400),
    ("/dpr/9/w/300/{k}", 400),
    ("/fit/COVER/w/300/h/300/{k}", 400),
    ("/g/north%00/w/300/{k}", 400),
    ("/f/AVIF/w/300/{k}", 400),
    ("/f/svg/w/300/{k}", 400),
    ("/f/html/w/300/{k}", 400),
    ("/bg/gggggg/w/300/{k}", 400),
    ("/bg/%23ffffff/w/300/{k}", 400),
    ("/p/..%2fsecret/{k}", 400),
    ("/p/nope/{k}", 400),
    ("/exp/-1/w/300/{k}", 400),
    ("/exp/999999999999999999999999/w/300/{k}", 400),
    // Repeats and contradictions.
    ("/w/300/w/300/{k}", 400),
    ("/w/300/h/200/h/200/{k}", 400),
    ("/p/thumb/w/100/{k}", 400),
    ("/w/5000/h/5000/{k}", 400),
    ("/w/2000/dpr/3/{k}", 400),
    // Signatures where none are configured, or moved, or malformed.
    ("/s/AAAA/w/300/{k}", 403),
    ("/s//w/300/{k}", 403),
    ("/s/", 403),
    ("/w/300/s/AAAA/{k}", 400),
    // Not an image URL at all.
    ("/etc/passwd", 404),
    ("/%77/300/{k}", 404),
    ("/-/w/300/{k}", 404),
    // An original that does not exist.
    ("/w/300/no/such.jpg", 404),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_urls_get_precise_4xx_json_and_write_nothing() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let app = spawn_app(&store, test_config()).await;
    let mut cases: Vec<(String, u16)> = CASES
        .iter()
        .map(|(path, status)| (path.replace("{k}", &key), *status))
        .collect();
    // Very long keys and thousands of segments.
    cases.push((format!("/w/300/{}.jpg", "a".repeat(5000)), 414));
    cases.push((format!("/w/300/{}x.jpg", "a/".repeat(3000)), 414));
    cases.push((format!("/w/300/{}", "%2e%2e/".repeat(500)), 400));
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (path, expected) in &cases {
        let (status, body) = raw_get(&app, path).await;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let message = json
            .as_ref()
            .and_then(|j| j["error"].as_str())
            .unwrap_or("");
        let body_status = json.as_ref().and_then(|j| j["status"].as_u64());
        if status != *expected || body_status != Some(u64::from(status)) || message.is_empty() {
            failures.push(format!(
                "{}: {status} (expected {expected}) {}",
                path.chars().take(80).collect::<String>(),
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        assert!(
            body.len() < 1024,
            "{path}: a short body, not {} bytes",
            body.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // A query string is not part of the URL's meaning: served as the same variant.
    let (status, _) = raw_get(&app, &format!("/w/300/{key}?w=9000&f=html")).await;
    assert_eq!(status, 200);
    app.stop().await;
    assert_eq!(
        store.probe.total_puts(),
        1,
        "only the one real variant was written"
    );
    assert!(store.read(&format!("copy/{key}/w300_q80")).await.is_some());
}
