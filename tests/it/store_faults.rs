//! S3 faults, injected by a proxy (`common::faults`) between sizer and the real S3 server: for each fault,
//! the status, `Retry-After` and JSON body the client gets; that the answer comes within the request's
//! budget; that nothing was written under the copy prefix or kept in memory; and that once the fault clears
//! the same request is computed afresh, correct, within a second. Write-back faults never reach the client
//! and are counted.
//!
//! The store's timeouts are small here (a few hundred ms) so the whole file runs in seconds; with them,
//! every S3 call gives up before the request's budget does, as the defaults also arrange.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::faults::{Fault, FaultProxy};
use crate::common::*;
use reqwest::StatusCode;
use sizer::config::{Config, StoreConfig};
use sizer::store::S3Store;

const CONNECT_TIMEOUT_MS: u64 = 200;
const READ_TIMEOUT_MS: u64 = 300;
const ATTEMPTS: u32 = 2;
const BACKOFF_MS: u64 = 20;
const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// "Within a second of S3 returning", with room for a loaded CI machine.
const RECOVERY: Duration = Duration::from_millis(1_500);
const WIDTH: u32 = 300;

/// sizer on S3 through the proxy; the test's own store talks to S3 directly, for uploads and checks.
struct Rig {
    app: TestApp,
    proxy: FaultProxy,
    store: TestStore,
    /// The original's key.
    key: String,
    path: String,
    variant_key: String,
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

async fn rig_with(tweak: fn(&mut Config)) -> Rig {
    let store = TestStore::new(Backend::S3).await;
    let key = store.put_original("images/x.jpg", sample("grey.jpg")).await;
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("scripts/test sets AWS_ENDPOINT_URL");
    let proxy = FaultProxy::start(&upstream).await;
    let app = sizer_through(&proxy, tweak).await;
    Rig {
        app,
        proxy,
        path: format!("/w/{WIDTH}/{key}"),
        key: key.clone(),
        variant_key: format!("copy/{key}/w{WIDTH}_q80"),
        store,
    }
}

/// A sizer of its own (its own memory, its own S3 client) whose S3 endpoint is `proxy`.
async fn sizer_through(proxy: &FaultProxy, tweak: fn(&mut Config)) -> TestApp {
    let mut config = test_config();
    config.server.request_timeout_ms = REQUEST_TIMEOUT_MS;
    config.store = StoreConfig {
        endpoint: proxy.endpoint(),
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        read_timeout_ms: READ_TIMEOUT_MS,
        max_attempts: ATTEMPTS,
        retry_backoff_ms: BACKOFF_MS,
        ..s3_config()
    };
    tweak(&mut config);
    let s3 = S3Store::connect(&config.store).await;
    spawn_app_on(Arc::new(s3), config).await
}

async fn timed_get(app: &TestApp, path: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = app.get(path).await;
    (res, started.elapsed())
}

/// One row of the fault matrix (README, "Store faults"); `--nocapture` prints them.
fn report(
    fault: &str,
    status: u16,
    retry_after: Option<&str>,
    answer: Duration,
    recovery: Duration,
) {
    eprintln!(
        "fault-matrix | {fault} | {status} | {} | {} ms | {} ms |",
        retry_after.unwrap_or("-"),
        answer.as_millis(),
        recovery.as_millis()
    );
}

impl Rig {
    /// Nothing was computed, so nothing was or will be written: no write-back ran, none is pending.
    async fn assert_nothing_written(&self) {
        assert_eq!(self.app.metric("sizer_write_backs_total").await, 0);
        assert_eq!(self.app.metric("sizer_write_back_failures_total").await, 0);
        assert_eq!(self.store.read(&self.variant_key).await, None);
    }

    /// Clears the fault and asks again: computed afresh (no error or partial image was kept), correct,
    /// within [`RECOVERY`]; the write-back is the same image, and memory serves it next. Returns the
    /// time the first request after clearing took.
    async fn recovers(self) -> Duration {
        self.proxy.clear();
        let (res, took) = timed_get(&self.app, &self.path).await;
        assert_eq!(res.status(), StatusCode::OK, "after the fault cleared");
        assert!(took < RECOVERY, "recovered in {took:?}");
        assert_eq!(header(&res, "sizer-tier"), Some("computed"));
        let served = res.bytes().await.unwrap();
        assert_eq!(decoded_size(&served).0, WIDTH);
        assert_eq!(
            wait_for_object(&self.store, &self.variant_key).await,
            served
        );
        let again = self.app.get(&self.path).await;
        assert_eq!(header(&again, "sizer-tier"), Some("memory"));
        assert_eq!(again.bytes().await.unwrap(), served);
        self.stops_promptly().await;
        took
    }

    /// Waits (briefly) until no connection of sizer's is held by a black hole: every attempt gave up and
    /// closed its connection.
    async fn no_connection_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.proxy.held() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} connections still held by the black hole",
                self.proxy.held()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Shutdown drains write-backs and in-flight work: it ends quickly when nothing is stuck.
    async fn stops_promptly(self) {
        tokio::time::timeout(Duration::from_secs(5), self.app.stop())
            .await
            .expect("the service stopped: no request or write-back was stuck");
    }
}

/// Sets `fault`, asks for a cold variant and checks the error answer; prints the row.
async fn answers_the_fault(
    name: &str,
    fault: Fault,
    status: u16,
    retry_after: Option<&str>,
) -> Rig {
    let rig = rig().await;
    rig.proxy.set(fault);
    let (res, took) = timed_get(&rig.app, &rig.path).await;
    assert!(
        took < Duration::from_millis(REQUEST_TIMEOUT_MS),
        "{name}: answered within the request budget, took {took:?}"
    );
    assert_eq!(
        header(&res, "retry-after"),
        retry_after,
        "{name}: Retry-After"
    );
    assert_eq!(header(&res, "cache-control"), Some("no-store"));
    let (got, message) = error_json(res).await;
    assert_eq!(got, status, "{name}: {message}");
    assert!(
        !message.contains("127.0.0.1"),
        "{name}: store details stay in the log: {message}"
    );
    rig.assert_nothing_written().await;
    report(name, got, retry_after, took, Duration::ZERO);
    rig
}

/// The recovery half, printed as its own row (same fault name, recovery column filled).
async fn then_recovers(name: &str, rig: Rig) {
    let recovery = rig.recovers().await;
    eprintln!(
        "fault-matrix-recovery | {name} | {} ms |",
        recovery.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_spike_under_the_read_timeout_only_slows_the_answer() {
    let rig = rig().await;
    let spike = Duration::from_millis(READ_TIMEOUT_MS / 2);
    rig.proxy.set(Fault::Latency(spike));
    let (res, took) = timed_get(&rig.app, &rig.path).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The copy-tier GET, the original's HEAD and GET: each waits for the spike.
    assert!(took >= spike * 3, "took {took:?}");
    assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, WIDTH);
    report("latency 150 ms", 200, None, took, Duration::ZERO);
    rig.stops_promptly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_spike_past_the_read_timeout_is_a_504_after_bounded_retries() {
    let spike = Duration::from_millis(READ_TIMEOUT_MS + 400);
    let rig = answers_the_fault("latency 700 ms", Fault::Latency(spike), 504, None).await;
    // The copy-tier GET, tried `ATTEMPTS` times, each timed out; nothing after it was tried.
    assert_eq!(rig.proxy.requests("GET"), ATTEMPTS as usize);
    assert_eq!(rig.proxy.requests("HEAD"), 0);
    then_recovers("latency 700 ms", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_mid_body_is_a_502() {
    let rig = answers_the_fault("reset mid-body", Fault::ResetMidBody, 502, None).await;
    then_recovers("reset mid-body", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_shorter_than_its_content_length_is_a_502_never_a_partial_image() {
    let rig = answers_the_fault("truncated body", Fault::TruncateBody, 502, None).await;
    // The original was read (and cut): the error came from its body, not from a missing object.
    assert!(
        rig.proxy.requests("GET") >= 2,
        "the copy tier and the original"
    );
    then_recovers("truncated body", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_midway_is_a_504_and_its_connection_is_given_up() {
    // The SDK's timeouts end when the reply starts; the store's own idle timer ends this one.
    let rig = answers_the_fault("body stalls midway", Fault::StallMidBody, 504, None).await;
    rig.no_connection_held().await;
    then_recovers("body stalls midway", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_slow_down_is_a_503_with_retry_after_after_bounded_retries() {
    let rig = answers_the_fault("503 SlowDown", Fault::SlowDown, 503, Some("1")).await;
    assert_eq!(rig.proxy.requests("GET"), ATTEMPTS as usize);
    then_recovers("503 SlowDown", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_internal_error_is_a_502_after_bounded_retries() {
    let rig = answers_the_fault("500 InternalError", Fault::InternalError, 502, None).await;
    assert_eq!(rig.proxy.requests("GET"), ATTEMPTS as usize);
    then_recovers("500 InternalError", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_a_502() {
    let rig = answers_the_fault("dead endpoint", Fault::Dead, 502, None).await;
    then_recovers("dead endpoint", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_is_a_504_and_leaves_no_connection_behind() {
    let rig = answers_the_fault("black hole", Fault::BlackHole, 504, None).await;
    assert_eq!(rig.proxy.requests("GET"), ATTEMPTS as usize);
    rig.no_connection_held().await;
    then_recovers("black hole", rig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_into_a_black_hole_all_answer_and_none_stays_stuck() {
    let rig = rig().await;
    rig.proxy.set(Fault::BlackHole);
    let paths: Vec<String> = (0..8)
        .map(|i| {
            rig.path
                .replace(&format!("/w/{WIDTH}/"), &format!("/w/{}/", 200 + i))
        })
        .collect();
    let started = Instant::now();
    let answers = futures_util::future::join_all(paths.iter().map(|p| rig.app.get(p))).await;
    let took = started.elapsed();
    for res in answers {
        assert_eq!(error_json(res).await.0, 504);
    }
    assert!(
        took < Duration::from_millis(REQUEST_TIMEOUT_MS),
        "took {took:?}"
    );
    rig.no_connection_held().await;
    rig.proxy.clear();
    let started = Instant::now();
    let answers = futures_util::future::join_all(paths.iter().map(|p| rig.app.get(p))).await;
    let recovery = started.elapsed();
    for res in answers {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "sizer-tier"), Some("computed"));
    }
    assert!(recovery < RECOVERY, "recovered in {recovery:?}");
    eprintln!(
        "fault-matrix | black hole x8 concurrent | 504 | - | {} ms | {} ms |",
        took.as_millis(),
        recovery.as_millis()
    );
    rig.stops_promptly().await;
}

/// A write-back fault: the client gets its image at once, the failure is counted, nothing is written,
/// the PUT was tried once.
async fn write_back_fails(fault: Fault) -> Rig {
    let rig = rig().await;
    rig.proxy.set_for("PUT", fault);
    let (res, took) = timed_get(&rig.app, &rig.path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let served = res.bytes().await.unwrap();
    assert_eq!(decoded_size(&served).0, WIDTH);
    if fault == Fault::BlackHole {
        // The PUT waits for its read timeout; the answer did not.
        assert_eq!(rig.app.metric("sizer_write_back_failures_total").await, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while rig.app.metric("sizer_write_back_failures_total").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the write-back failure was counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.app.metric("sizer_write_back_failures_total").await, 1);
    assert_eq!(rig.app.metric("sizer_write_backs_total").await, 0);
    assert_eq!(rig.proxy.requests("PUT"), 1, "a PUT is tried once");
    assert_eq!(rig.store.read(&rig.variant_key).await, None);
    // Memory still serves the good image.
    let again = rig.app.get(&rig.path).await;
    assert_eq!(header(&again, "sizer-tier"), Some("memory"));
    assert_eq!(again.bytes().await.unwrap(), served);
    report(&format!("PUT {fault:?}"), 200, None, took, Duration::ZERO);
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_generation_retries_a_throttled_write_and_lands_every_variant() {
    const TOKEN: &str = "store-faults-webhook-token-0123";
    let rig = rig_with(|config| {
        config.events.webhook_token = TOKEN.into();
        config.pregenerate.variants = vec!["w/300".into(), "w/600".into()];
    })
    .await;
    // The first write is throttled once; with one attempt only, the event would fail (503) and the sender
    // would have to send it all again.
    rig.proxy.set_for_next("PUT", Fault::SlowDown, 1);
    let bucket = std::env::var("S3_BUCKET").expect("scripts/test sets S3_BUCKET");
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": rig.key}}
    }]});
    let res = rig
        .app
        .client
        .post(format!("{}/events", rig.app.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let summary: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["variants_written"], 2, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(
        rig.proxy.requests("PUT") >= 3,
        "the throttled PUT was sent again: {} PUTs",
        rig.proxy.requests("PUT")
    );
    for width in [300, 600] {
        let stored = rig
            .store
            .read(&format!("copy/{}/w{width}_q80", rig.key))
            .await
            .unwrap_or_else(|| panic!("w{width} landed"));
        assert_eq!(decoded_size(&stored).0, width);
    }
    rig.stops_promptly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_write_back_still_serves_the_image_and_is_counted() {
    let rig = write_back_fails(Fault::SlowDown).await;
    rig.stops_promptly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_into_a_black_hole_neither_delays_the_answer_nor_outlives_its_timeout() {
    let rig = write_back_fails(Fault::BlackHole).await;
    rig.no_connection_held().await;
    rig.stops_promptly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_read_of_a_stored_variant_is_a_502_and_is_not_kept() {
    let rig = rig().await;
    let res = rig.app.get(&rig.path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = wait_for_object(&rig.store, &rig.variant_key).await;
    // Another replica, its memory empty: the variant comes from the copy tier.
    let replica = sizer_through(&rig.proxy, |_| {}).await;
    rig.proxy.set(Fault::TruncateBody);
    let (status, message) = error_json(replica.get(&rig.path).await).await;
    assert_eq!(status, 502, "{message}");
    rig.proxy.clear();
    let (res, took) = timed_get(&replica, &rig.path).await;
    assert_eq!(
        header(&res, "sizer-tier"),
        Some("copy"),
        "nothing of the cut read was kept"
    );
    assert_eq!(res.bytes().await.unwrap(), stored);
    assert!(took < RECOVERY, "recovered in {took:?}");
    eprintln!(
        "fault-matrix-recovery | truncated copy-tier read | {} ms |",
        took.as_millis()
    );
    assert_eq!(
        rig.store.read(&rig.variant_key).await,
        Some(stored),
        "unchanged"
    );
    replica.stop().await;
    rig.stops_promptly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_of_a_large_stored_variant_ends_short_of_its_content_length() {
    // Every variant counts as large: copy-tier hits are streamed, never held whole.
    let rig = rig_with(|config| config.cache.max_item_bytes = 1024).await;
    let res = rig.app.get(&rig.path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = wait_for_object(&rig.store, &rig.variant_key).await;
    rig.proxy.set(Fault::TruncateBody);
    let res = rig.app.get(&rig.path).await;
    // The status went out before the body was read; the cut shows as a body short of its announced
    // length and a closed connection, which no client or CDN takes for the image.
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "sizer-tier"), Some("copy"));
    assert_eq!(
        header(&res, "content-length"),
        Some(stored.len().to_string().as_str())
    );
    assert!(res.bytes().await.is_err(), "the body ended short");
    rig.proxy.clear();
    let res = rig.app.get(&rig.path).await;
    assert_eq!(res.bytes().await.unwrap(), stored);
    rig.stops_promptly().await;
}
