//! Pre-generation from storage notifications over `POST /events`, on both real stores, with the real
//! notification shapes in `tests/fixtures/events/`.

use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

both_stores!(
    the_endpoint_is_off_without_a_token_and_refuses_wrong_ones,
    every_notification_shape_pregenerates_the_http_variants,
    one_read_and_one_decode_make_every_variant,
    duplicate_events_do_no_duplicate_work,
    the_seeds_accident_does_no_recursive_work,
    deletion_removes_every_variant_and_the_memory_tier_forgets_them,
    removing_an_original_leaves_the_variants_of_the_originals_below_its_name,
    an_overlong_sequencer_is_a_bad_event_not_a_crash,
    out_of_order_events_end_in_the_stores_present_state,
    an_sqs_batch_reports_only_the_failed_messages,
    an_undecodable_upload_is_acknowledged_not_retried_forever,
);

/// On an S3 store, an event for another bucket, or one that names no bucket at all, is not about ours:
/// acknowledged, nothing read or written. (A directory store has no bucket and takes any.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_another_or_no_bucket_are_ignored() {
    let store = TestStore::new(Backend::S3).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let mut config = events_config(&["w/300"]);
    // The bucket events are checked against is the configured S3 store's.
    config.store.kind = sizer::config::StoreKind::S3;
    config.store.bucket = bucket();
    let app = spawn_app(&store, config).await;
    for other in ["someone-elses-bucket", ""] {
        let summary = post_ok(&app, s3_event("ObjectCreated:Put", &key, other)).await;
        assert_eq!(summary["variants_written"], 0, "{other:?}: {summary}");
    }
    assert_eq!(store.probe.gets(&key), 0, "the original was never read");
    assert!(variants_of(&store, &key).await.is_empty());
    let summary = post_ok(&app, s3_event("ObjectCreated:Put", &key, &bucket())).await;
    assert_eq!(summary["variants_written"], 1, "{summary}");
    app.stop().await;
}

const TOKEN: &str = "test-webhook-token-0123456789";
const SPACED: &str = "images/summer beach (1).jpg";

fn events_config(variants: &[&str]) -> sizer::Config {
    let mut config = test_config();
    config.events.webhook_token = TOKEN.into();
    config.pregenerate.variants = variants.iter().map(|v| v.to_string()).collect();
    config
}

const SEED: [&str; 3] = ["w/300", "w/600", "w/900"];

/// A fixture with this test's namespace and bucket filled in.
fn fixture(name: &str, store: &TestStore) -> String {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bucket = std::env::var("S3_BUCKET").unwrap_or_else(|_| "any".into());
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("{ns}", &store.namespace)
        .replace("{bucket}", &bucket)
}

/// A minimal S3 notification for `key` (form-encoded as S3 does).
fn s3_event(name: &str, key: &str, bucket: &str) -> String {
    let encoded: String = key.split('/').map(url_form).collect::<Vec<_>>().join("/");
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": {"key": encoded}}
    }]})
    .to_string()
}

fn url_form(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn bucket() -> String {
    std::env::var("S3_BUCKET").unwrap_or_else(|_| "any".into())
}

async fn post(app: &TestApp, token: Option<&str>, body: String) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/events", app.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.expect("POST /events")
}

async fn post_ok(app: &TestApp, body: String) -> Value {
    let res = post(app, Some(TOKEN), body).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The variant keys under the copy prefix for `key`, sorted.
async fn variants_of(store: &TestStore, key: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let prefix = format!("copy/{key}/");
    let mut keys: Vec<String> = store
        .probe
        .inner
        .list(&prefix)
        .map_ok(|o| o.key.trim_start_matches(&prefix).to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn the_endpoint_is_off_without_a_token_and_refuses_wrong_ones(backend: Backend) {
    let store = TestStore::new(backend).await;
    let off = spawn_app(&store, test_config()).await;
    let body = fixture("s3-test-event.json", &store);
    assert_eq!(
        error_json(post(&off, Some("x"), body.clone()).await)
            .await
            .0,
        404
    );
    off.stop().await;

    let app = spawn_app(&store, events_config(&SEED)).await;
    let missing = post(&app, None, body.clone()).await;
    assert_eq!(header(&missing, "www-authenticate"), Some("Bearer"));
    assert_eq!(error_json(missing).await.0, 401);
    assert_eq!(
        error_json(post(&app, Some("wrong"), body.clone()).await)
            .await
            .0,
        403
    );
    let almost = &TOKEN[..TOKEN.len() - 1];
    assert_eq!(
        error_json(post(&app, Some(almost), body.clone()).await)
            .await
            .0,
        403
    );
    let (status, message) = error_json(post(&app, Some(TOKEN), "{not json".into()).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("not JSON"), "{message}");
    let (status, message) =
        error_json(post(&app, Some(TOKEN), r#"{"hello": "world"}"#.into()).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("notification"), "{message}");
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 << 20));
    assert_eq!(error_json(post(&app, Some(TOKEN), huge).await).await.0, 413);
    // The test event S3 sends when a notification is configured: a no-op success.
    let summary = post_ok(&app, body).await;
    assert_eq!(summary["events"], 0);
    assert_eq!(store.probe.total_puts(), 0);
    app.stop().await;
}

async fn every_notification_shape_pregenerates_the_http_variants(backend: Backend) {
    for shape in [
        "s3-put.json",
        "minio-put.json",
        "eventbridge-created.json",
        "sns-s3.json",
        "sqs-sns-s3.json",
    ] {
        let store = TestStore::new(backend).await;
        let spaced = store.put_original(SPACED, sample("path.jpg")).await;
        let plain = store
            .put_original("images/path.jpg", sample("path.jpg"))
            .await;
        let app = spawn_app(&store, events_config(&SEED)).await;
        let answer = post_ok(&app, fixture(shape, &store)).await;
        let key = if shape.contains("sns") {
            &plain
        } else {
            &spaced
        };
        if shape.starts_with("sqs") {
            assert_eq!(
                answer,
                serde_json::json!({"batchItemFailures": []}),
                "{shape}"
            );
        } else {
            assert_eq!(answer["variants_written"], 3, "{shape}: {answer}");
        }
        assert_eq!(
            variants_of(&store, key).await,
            ["w300_q80", "w600_q80", "w900_q80"],
            "{shape}"
        );
        // The HTTP request for the same options finds it in the copy tier: the keys are the same.
        let encoded = key
            .replace(' ', "%20")
            .replace('(', "%28")
            .replace(')', "%29");
        let res = app.get(&format!("/w/600/{encoded}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{shape}");
        assert_eq!(header(&res, "sizer-tier"), Some("copy"), "{shape}");
        assert_eq!(decoded_size(&res.bytes().await.unwrap()), (600, 375));
        app.stop().await;
    }
}

async fn one_read_and_one_decode_make_every_variant(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let app = spawn_app(
        &store,
        events_config(&["w/300", "w/600", "w/900", "p/thumb", "w/400/f/webp"]),
    )
    .await;
    let summary = post_ok(&app, s3_event("ObjectCreated:Put", &key, &bucket())).await;
    assert_eq!(summary["variants_written"], 5, "{summary}");
    assert_eq!(store.probe.gets(&key), 1, "one read of the original");
    assert_eq!(app.metric("sizer_original_fetches_total").await, 1);
    assert_eq!(
        variants_of(&store, &key).await,
        [
            "w300_h300_cover_q80",
            "w300_q80",
            "w400_q80.webp",
            "w600_q80",
            "w900_q80"
        ]
    );
    let webp = store
        .read(&format!("copy/{key}/w400_q80.webp"))
        .await
        .unwrap();
    assert_eq!(&webp[8..12], b"WEBP");
    assert_eq!(decoded_size(&webp), (400, 250));
    app.stop().await;
}

async fn duplicate_events_do_no_duplicate_work(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    let event = s3_event("ObjectCreated:Put", &key, &bucket());
    post_ok(&app, event.clone()).await;
    let puts = store.probe.total_puts();
    assert_eq!(puts, 3);
    // At-least-once delivery: the same event three more times, two of them at once.
    let (a, b) = tokio::join!(post_ok(&app, event.clone()), post_ok(&app, event.clone()));
    let c = post_ok(&app, event).await;
    for summary in [a, b, c] {
        assert_eq!(summary["variants_written"], 0, "{summary}");
    }
    assert_eq!(store.probe.total_puts(), puts, "no variant written twice");
    assert_eq!(store.probe.gets(&key), 1, "the original read once");
    assert_eq!(
        app.metric("sizer_pregenerated_total{result=\"fresh\"}")
            .await,
        9
    );
    app.stop().await;
}

/// The seed's accident: the trigger covers the whole bucket, so every variant written raises an event of
/// its own, which S3 delivers back. Here every write is fed back as S3 would, until nothing new is written.
async fn the_seeds_accident_does_no_recursive_work(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    post_ok(&app, s3_event("ObjectCreated:Put", &key, &bucket())).await;
    let written = variants_of(&store, &key).await;
    assert_eq!(written.len(), 3);
    let puts = store.probe.total_puts();
    for round in 0..3 {
        for variant in &written {
            let variant_key = format!("copy/{key}/{variant}");
            let summary =
                post_ok(&app, s3_event("ObjectCreated:Put", &variant_key, &bucket())).await;
            assert_eq!(summary["ignored"], 1, "round {round}: {summary}");
            assert_eq!(summary["variants_written"], 0);
        }
    }
    assert_eq!(store.probe.total_puts(), puts, "zero recursive work");
    assert_eq!(variants_of(&store, &key).await, written);
    assert_eq!(
        app.metric("sizer_events_ignored_total{reason=\"loop_guard\"}")
            .await,
        9
    );
    // Its deletion events are ignored too: a lifecycle rule on the copy prefix removes nothing else.
    let gone = format!("copy/{key}/{}", written[0]);
    let summary = post_ok(&app, s3_event("ObjectRemoved:Delete", &gone, &bucket())).await;
    assert_eq!(summary["ignored"], 1);
    assert_eq!(variants_of(&store, &key).await, written);
    app.stop().await;
}

async fn deletion_removes_every_variant_and_the_memory_tier_forgets_them(backend: Backend) {
    let store = TestStore::new(backend).await;
    let spaced = store.put_original(SPACED, sample("path.jpg")).await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    post_ok(&app, fixture("s3-put.json", &store)).await;
    let url = format!(
        "/w/300/{}",
        spaced
            .replace(' ', "%20")
            .replace('(', "%28")
            .replace(')', "%29")
    );
    assert_eq!(app.get(&url).await.status(), StatusCode::OK);
    assert_eq!(header(&app.get(&url).await, "sizer-tier"), Some("memory"));
    // A plain HTTP variant too: removal takes every variant, not only the pre-generated ones.
    let extra = url.replace("/w/300/", "/w/123/");
    assert_eq!(app.get(&extra).await.status(), StatusCode::OK);
    wait_for_object(&store, &format!("copy/{spaced}/w123_q80")).await;

    store.probe.inner.delete(&spaced).await.unwrap();
    let summary = post_ok(&app, fixture("s3-delete.json", &store)).await;
    assert_eq!(summary["removed"], 1, "{summary}");
    assert!(variants_of(&store, &spaced).await.is_empty());
    assert_eq!(app.metric("sizer_variants_removed_total").await, 4);
    // Not served from memory any more: the original is gone, so 404.
    assert_eq!(error_json(app.get(&url).await).await.0, 404);
    app.stop().await;
}

/// `copy/dir/x.jpg/w300_q80` starts with `dir`'s variant prefix `copy/dir/` but is a variant of
/// `dir/x.jpg`: removing `dir` takes `dir`'s own variants only, in the store and in memory.
async fn removing_an_original_leaves_the_variants_of_the_originals_below_its_name(
    backend: Backend,
) {
    let store = TestStore::new(backend).await;
    let nested = store.put_original("dir/x.jpg", sample("path.jpg")).await;
    let dir = store.key("dir");
    let app = spawn_app(&store, events_config(&SEED)).await;
    post_ok(&app, s3_event("ObjectCreated:Put", &nested, &bucket())).await;
    assert_eq!(variants_of(&store, &nested).await.len(), 3);
    let url = format!("/w/300/{nested}");
    assert_eq!(app.get(&url).await.status(), StatusCode::OK);
    assert_eq!(header(&app.get(&url).await, "sizer-tier"), Some("memory"));
    // `dir` has variants of its own. A directory cannot hold a file `dir` beside `dir/x.jpg`, so there
    // its variant is written directly; on S3 the original is real, pre-generated, then deleted.
    let own = format!("copy/{dir}/w300_q80");
    match backend {
        Backend::S3 => {
            store.put_original("dir", sample("grey.jpg")).await;
            post_ok(&app, s3_event("ObjectCreated:Put", &dir, &bucket())).await;
            wait_for_object(&store, &own).await;
            store.probe.inner.delete(&dir).await.unwrap();
        }
        Backend::Fs => {
            let variant = sizer::store::PutOptions::variant("image/jpeg", None);
            let body = bytes::Bytes::from_static(b"a variant of dir");
            store.probe.inner.put(&own, body, variant).await.unwrap();
        }
    }

    let summary = post_ok(&app, s3_event("ObjectRemoved:Delete", &dir, &bucket())).await;
    assert_eq!(summary["removed"], 1, "{summary}");
    let left = variants_of(&store, &dir).await;
    assert!(
        left.iter().all(|v| v.starts_with("x.jpg/")),
        "dir's own variants are gone: {left:?}"
    );
    assert_eq!(
        variants_of(&store, &nested).await,
        ["w300_q80", "w600_q80", "w900_q80"],
        "dir/x.jpg keeps its variants"
    );
    assert_eq!(
        header(&app.get(&url).await, "sizer-tier"),
        Some("memory"),
        "and the memory tier keeps them too"
    );
    app.stop().await;
}

/// Two records for one key are ordered by sequencer; one of 70,000 characters used to panic the
/// comparison (`format!` pads to at most 65,535): a 500 here, a failed batch on Lambda.
async fn an_overlong_sequencer_is_a_bad_event_not_a_crash(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    let mut document: Value =
        serde_json::from_str(&s3_event("ObjectCreated:Put", &key, &bucket())).unwrap();
    let record = document["Records"][0].clone();
    document["Records"] = Value::from(vec![record.clone(), record]);
    document["Records"][0]["s3"]["object"]["sequencer"] = Value::from("F".repeat(70_000));
    document["Records"][1]["s3"]["object"]["sequencer"] = Value::from("0055AED6DCD90281E5");
    let (status, message) = error_json(post(&app, Some(TOKEN), document.to_string()).await).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("sequencer"), "{message}");
    assert!(
        variants_of(&store, &key).await.is_empty(),
        "nothing was made"
    );
    app.stop().await;
}

/// The key of an original that was uploaded and is gone again: both events are still on their way.
async fn uploaded_and_deleted(store: &TestStore, name: &str) -> String {
    let key = store.put_original(name, sample("grey.jpg")).await;
    store.probe.inner.delete(&key).await.unwrap();
    key
}

async fn out_of_order_events_end_in_the_stores_present_state(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    // Uploaded, deleted, uploaded again; the delete's event arrives last.
    post_ok(&app, s3_event("ObjectCreated:Put", &key, &bucket())).await;
    let summary = post_ok(&app, s3_event("ObjectRemoved:Delete", &key, &bucket())).await;
    assert_eq!(summary["ignored"], 1, "{summary}");
    assert_eq!(
        variants_of(&store, &key).await.len(),
        3,
        "the original is there: kept"
    );

    // Uploaded then deleted; the create's event arrives after the delete's.
    let other = uploaded_and_deleted(&store, "images/other.jpg").await;
    post_ok(&app, s3_event("ObjectRemoved:Delete", &other, &bucket())).await;
    let summary = post_ok(&app, s3_event("ObjectCreated:Put", &other, &bucket())).await;
    assert_eq!(summary["variants_written"], 0, "{summary}");
    assert!(
        variants_of(&store, &other).await.is_empty(),
        "gone: nothing made"
    );

    // Both in one notification, delete last by sequencer though listed first: only the delete counts.
    let third = uploaded_and_deleted(&store, "images/third.jpg").await;
    let mut doc: Value =
        serde_json::from_str(&s3_event("ObjectRemoved:Delete", &third, &bucket())).unwrap();
    let created: Value =
        serde_json::from_str(&s3_event("ObjectCreated:Put", &third, &bucket())).unwrap();
    doc["Records"][0]["s3"]["object"]["sequencer"] = "0A".into();
    let mut put = created["Records"][0].clone();
    put["s3"]["object"]["sequencer"] = "09".into();
    doc["Records"].as_array_mut().unwrap().push(put);
    let summary = post_ok(&app, doc.to_string()).await;
    assert_eq!(summary["events"], 2, "{summary}");
    assert_eq!(
        store.probe.gets(&third),
        0,
        "the superseded create read nothing"
    );
    app.stop().await;
}

async fn an_sqs_batch_reports_only_the_failed_messages(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/path.jpg", sample("path.jpg"))
        .await;
    store
        .put_original("images/missing.jpg", sample("grey.jpg"))
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    // The store fails for one original only: its message is retried, the others are done.
    *store.probe.fail_keys_containing.lock().unwrap() = Some("missing.jpg".into());
    let answer = post_ok(&app, fixture("sqs-s3.json", &store)).await;
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [
            {"itemIdentifier": "7c1e6b8a-3f0e-4b7e-9b1a-5d0c2f1e9a11"}
        ]})
    );
    assert_eq!(variants_of(&store, &key).await.len(), 3);
    // The outage ends; the queue redelivers the failed message alone.
    *store.probe.fail_keys_containing.lock().unwrap() = None;
    let answer = post_ok(&app, fixture("sqs-s3.json", &store)).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(
        variants_of(&store, &store.key("images/missing.jpg"))
            .await
            .len(),
        3
    );
    // A notification sent directly (not a batch) with a failure answers 503 and Retry-After.
    let failing = store
        .put_original("images/failing.jpg", sample("grey.jpg"))
        .await;
    *store.probe.fail_keys_containing.lock().unwrap() = Some("failing.jpg".into());
    let res = post(
        &app,
        Some(TOKEN),
        s3_event("ObjectCreated:Put", &failing, &bucket()),
    )
    .await;
    assert_eq!(header(&res, "retry-after"), Some("1"));
    assert_eq!(error_json(res).await.0, 503);
    app.stop().await;
}

async fn an_undecodable_upload_is_acknowledged_not_retried_forever(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original(
            "images/broken.jpg",
            bytes::Bytes::from_static(b"\xFF\xD8\xFF\xE0 broken"),
        )
        .await;
    let app = spawn_app(&store, events_config(&SEED)).await;
    let summary = post_ok(&app, s3_event("ObjectCreated:Put", &key, &bucket())).await;
    assert_eq!(summary["refused"], 1, "{summary}");
    assert!(
        variants_of(&store, &key).await.is_empty(),
        "nothing written"
    );
    assert_eq!(app.metric("sizer_event_failures_total").await, 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
    app.stop().await;
}
