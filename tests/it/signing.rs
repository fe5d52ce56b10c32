//! Signed URLs and presets-only mode over real HTTP: forged, moved, truncated and expired signatures are
//! refused before the store is touched; signed URLs skip the allow-list but not the hard limits.

use crate::common::*;
use reqwest::StatusCode;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OLD_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn sign(key: &str, rest: &str) -> String {
    let signer = sizer::options::signing::Signer::from_hex(&[key.to_string()]).unwrap();
    format!("/s/{}{rest}", signer.sign(rest).unwrap())
}

async fn signed_app(
    backend: Backend,
    required: bool,
    only_presets: bool,
) -> (TestStore, String, TestApp) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("path.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.signing.keys = vec![KEY.into(), OLD_KEY.into()];
    config.signing.required = required;
    config.signing.only_presets = only_presets;
    config.widths.allowed = vec![300, 600];
    let app = spawn_app(&store, config).await;
    (store, key, app)
}

both_stores!(
    required_signatures_refuse_everything_unsigned_or_forged_before_the_store,
    presets_only_binds_unsigned_urls_and_signed_urls_skip_the_allow_list,
    an_expiring_url_is_never_cached_past_its_expiry,
);

async fn required_signatures_refuse_everything_unsigned_or_forged_before_the_store(
    backend: Backend,
) {
    let (store, key, app) = signed_app(backend, true, false).await;
    let good = sign(KEY, &format!("/w/300/{key}"));
    let res = app.get(&good).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, 300);
    // Rotation: the old key still verifies.
    assert_eq!(
        app.get(&sign(OLD_KEY, &format!("/w/600/{key}")))
            .await
            .status(),
        StatusCode::OK
    );
    let fetches = store.probe.gets(&key);

    let sig = good.split('/').nth(2).unwrap().to_string();
    let forged = [
        format!("/w/300/{key}"),                                  // unsigned
        format!("/w/300/s/{sig}/{key}"),                          // signature moved
        good.replacen(&sig, &sig[..sig.len() - 3], 1),            // truncated
        good.replace("/w/300/", "/w/600/"),                       // options changed
        good.replace("path.jpg", "path%2Ejpg"),                   // re-encoded after signing
        sign("ab".repeat(32).as_str(), &format!("/w/300/{key}")), // unknown key
        format!("/s//w/300/{key}"),
    ];
    for path in &forged {
        let (status, message) = error_json(app.get(path).await).await;
        assert_eq!(status, 403, "{path}: {message}");
    }
    // A correctly signed `..` is still refused, and never reaches the store (sent raw: HTTP clients
    // would resolve the dots before sending).
    for dots in ["..", "%2e%2e", "%2E."] {
        let (status, body) = raw_get(&app, &sign(KEY, &format!("/w/300/a/{dots}/path.jpg"))).await;
        assert_eq!(status, 400, "{dots}: {}", String::from_utf8_lossy(&body));
    }
    // Expiry: 410 once past, 403 if the expiry was edited.
    let past = sign(KEY, &format!("/exp/1000/w/300/{key}"));
    assert_eq!(error_json(app.get(&past).await).await.0, 410);
    assert_eq!(
        error_json(
            app.get(&past.replace("/exp/1000/", "/exp/99999999999/"))
                .await
        )
        .await
        .0,
        403
    );
    let future = sign(KEY, &format!("/exp/99999999999/w/300/{key}"));
    assert_eq!(app.get(&future).await.status(), StatusCode::OK);
    assert_eq!(
        store.probe.gets(&key),
        fetches,
        "no refused URL touched the original"
    );
    app.stop().await;
}

async fn presets_only_binds_unsigned_urls_and_signed_urls_skip_the_allow_list(backend: Backend) {
    let (_store, key, app) = signed_app(backend, false, true).await;
    assert_eq!(
        app.get(&format!("/p/thumb/{key}")).await.status(),
        StatusCode::OK
    );
    let (status, message) = error_json(app.get(&format!("/w/300/{key}")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("preset"), "{message}");
    // Signed: any width, beyond the allow-list, but never beyond the hard maximum.
    let res = app.get(&sign(KEY, &format!("/w/123/{key}"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, 123);
    assert_eq!(
        error_json(app.get(&sign(KEY, &format!("/w/9000/{key}"))).await)
            .await
            .0,
        400
    );
    app.stop().await;
}

/// The default `Cache-Control` keeps an image a year and `immutable`: for a URL with `exp`, a cache
/// would go on serving it long after the URL stopped being valid. Bounded by the seconds left, on
/// every tier.
async fn an_expiring_url_is_never_cached_past_its_expiry(backend: Backend) {
    let (_store, key, app) = signed_app(backend, true, false).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiring = sign(KEY, &format!("/exp/{}/w/300/{key}", now + 600));
    for tier in ["computed", "memory"] {
        let res = app.get(&expiring).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "sizer-tier"), Some(tier));
        let cache_control = header(&res, "cache-control")
            .unwrap_or_default()
            .to_string();
        assert!(!cache_control.contains("immutable"), "{cache_control}");
        let max_age: u64 = cache_control
            .split(", ")
            .find_map(|d| d.strip_prefix("max-age="))
            .and_then(|age| age.parse().ok())
            .unwrap_or_else(|| panic!("a max-age: {cache_control}"));
        assert!((590..=600).contains(&max_age), "{cache_control}");
    }
    let lasting = app.get(&sign(KEY, &format!("/w/300/{key}"))).await;
    assert_eq!(
        header(&lasting, "cache-control"),
        Some("public, max-age=31536000, immutable"),
        "without exp, the configured value"
    );
    app.stop().await;
}
