//! What an operator and a developer see: `/metrics` histograms and gauges that move with the requests
//! served, `Server-Timing` on computed answers, request ids echoed and in the logs, the security headers
//! on every image answer, and JSON log lines when asked for.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    a_computed_request_moves_the_histograms_and_a_memory_hit_its_own,
    server_timing_names_the_stages_of_a_computed_answer,
    request_ids_are_echoed_when_sane_and_made_otherwise,
    every_image_answer_carries_the_security_headers,
    requests_in_flight_count_a_slow_request_until_it_is_answered,
);

/// The samples of `/metrics`, by series (name with labels).
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let text = app.metrics_text().await;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value_of(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} not in /metrics: {samples:?}"))
}

/// A histogram series' buckets, in order of their bounds: cumulative counts that never fall and end at
/// the series' count.
fn check_buckets(samples: &HashMap<String, f64>, name: &str, labels: &str) {
    let prefix = format!("{name}_bucket{{{labels}");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|(series, &count)| {
            let le = series.strip_prefix(&prefix)?.split("le=\"").nth(1)?;
            let le = le.trim_end_matches("\"}");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5, "{name}{{{labels}}} has its buckets");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "{name} buckets are cumulative: {buckets:?}"
    );
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.trim_end_matches(','))
    };
    assert_eq!(
        buckets.last().map(|b| (b.0, b.1)),
        Some((
            f64::INFINITY,
            value_of(samples, &format!("{name}_count{braces}"))
        )),
        "+Inf holds every observation of {name}"
    );
}

async fn a_computed_request_moves_the_histograms_and_a_memory_hit_its_own(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample_image()).await;
    let app = spawn_app(&store, test_config()).await;
    let before = scrape(&app).await;
    for stage in ["fetch", "decode", "resize", "encode", "queue_wait"] {
        assert_eq!(
            value_of(&before, &format!("sizer_{stage}_seconds_count")),
            0.0
        );
    }

    let res = app.get(&format!("/w/300/{key}")).await;
    assert_eq!(header(&res, "sizer-tier"), Some("computed"));
    let etag = header(&res, "etag").unwrap().to_string();
    let body = res.bytes().await.unwrap();
    let after = scrape(&app).await;
    let computed = "tier=\"computed\",class=\"2xx\"";
    assert_eq!(
        value_of(
            &after,
            &format!("sizer_request_duration_seconds_count{{{computed}}}")
        ),
        1.0
    );
    check_buckets(
        &after,
        "sizer_request_duration_seconds",
        &format!("{computed},"),
    );
    for stage in ["fetch", "decode", "resize", "encode"] {
        let name = format!("sizer_{stage}_seconds");
        assert_eq!(value_of(&after, &format!("{name}_count")), 1.0, "{name}");
        assert!(
            value_of(&after, &format!("{name}_sum")) > 0.0,
            "{name} took time"
        );
        check_buckets(&after, &name, "");
    }
    // The inspection of the header, the decode and the render each waited for a worker.
    assert_eq!(value_of(&after, "sizer_queue_wait_seconds_count"), 3.0);
    assert_eq!(value_of(&after, "sizer_response_bytes_count"), 1.0);
    assert_eq!(
        value_of(&after, "sizer_response_bytes_sum"),
        body.len() as f64
    );
    check_buckets(&after, "sizer_response_bytes", "");
    // The variant is in the memory cache, the original and its decode in the originals cache; the pool
    // is idle again.
    assert_eq!(
        value_of(&after, "sizer_cache_entries{cache=\"memory\"}"),
        1.0
    );
    assert!(value_of(&after, "sizer_cache_bytes{cache=\"memory\"}") >= body.len() as f64);
    assert_eq!(
        value_of(&after, "sizer_cache_entries{cache=\"originals\"}"),
        2.0
    );
    assert!(
        value_of(&after, "sizer_cache_bytes{cache=\"originals\"}") > sample_image().len() as f64
    );
    assert_eq!(value_of(&after, "sizer_pool_jobs{state=\"queued\"}"), 0.0);
    assert_eq!(value_of(&after, "sizer_pool_jobs{state=\"running\"}"), 0.0);
    assert!(value_of(&after, "sizer_memory_budget_bytes{state=\"total\"}") > 0.0);
    // The scrape before was a request too.
    assert_eq!(
        value_of(
            &after,
            "sizer_request_duration_seconds_count{tier=\"other\",class=\"2xx\"}"
        ),
        1.0
    );

    // A memory hit, a 304 and an error land in their own series; nothing is fetched or decoded again.
    app.get(&format!("/w/300/{key}"))
        .await
        .bytes()
        .await
        .unwrap();
    let not_modified = app
        .get_with(&format!("/w/300/{key}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    let missing = app.get(&format!("/w/300/{}", store.key("no.jpg"))).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let later = scrape(&app).await;
    for (labels, count) in [
        ("tier=\"memory\",class=\"2xx\"", 1.0),
        ("tier=\"memory\",class=\"3xx\"", 1.0),
        ("tier=\"computed\",class=\"2xx\"", 1.0),
        ("tier=\"error\",class=\"4xx\"", 1.0),
    ] {
        assert_eq!(
            value_of(
                &later,
                &format!("sizer_request_duration_seconds_count{{{labels}}}")
            ),
            count,
            "{labels}"
        );
    }
    assert_eq!(value_of(&later, "sizer_decode_seconds_count"), 1.0);
    assert_eq!(
        value_of(&later, "sizer_response_bytes_count"),
        2.0,
        "304s send no body"
    );
    app.stop().await;
}

async fn requests_in_flight_count_a_slow_request_until_it_is_answered(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample_image()).await;
    let app = spawn_app(&store, test_config()).await;
    // The scrape counts itself.
    assert_eq!(
        value_of(&scrape(&app).await, "sizer_requests_in_flight"),
        1.0
    );
    store
        .probe
        .get_delay_ms
        .store(1_500, std::sync::atomic::Ordering::SeqCst);
    let slow = {
        let (client, url) = (app.client.clone(), format!("{}/w/300/{key}", app.base));
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
    };
    let mut seen = Vec::new();
    for _ in 0..50 {
        let in_flight = value_of(&scrape(&app).await, "sizer_requests_in_flight");
        seen.push(in_flight);
        if in_flight == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen.last(),
        Some(&2.0),
        "the slow request shows while the store holds it: {seen:?}"
    );
    assert_eq!(slow.await.unwrap().unwrap(), StatusCode::OK);
    assert_eq!(
        value_of(&scrape(&app).await, "sizer_requests_in_flight"),
        1.0,
        "and leaves once answered"
    );
    app.stop().await;
}

fn sample_image() -> bytes::Bytes {
    sample("path.jpg")
}

/// `Server-Timing` entries by name: (`dur`, `desc`).
fn server_timing(res: &reqwest::Response) -> HashMap<String, (Option<f64>, Option<String>)> {
    let value = header(res, "server-timing").expect("a Server-Timing header");
    value
        .split(',')
        .map(|entry| {
            let mut parts = entry.trim().split(';');
            let name = parts.next().unwrap_or_default().to_string();
            let (mut dur, mut desc) = (None, None);
            for param in parts {
                match param.split_once('=') {
                    Some(("dur", v)) => dur = Some(v.parse().expect("dur is a number")),
                    Some(("desc", v)) => desc = Some(v.to_string()),
                    _ => panic!("unexpected parameter {param} in {value}"),
                }
            }
            (name, (dur, desc))
        })
        .collect()
}

async fn server_timing_names_the_stages_of_a_computed_answer(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample_image()).await;
    let app = spawn_app(&store, test_config()).await;

    let computed = app.get(&format!("/w/200/f/webp/{key}")).await;
    let timing = server_timing(&computed);
    assert_eq!(timing["tier"].1.as_deref(), Some("computed"));
    assert_eq!(timing["format"].1.as_deref(), Some("webp"));
    for stage in ["fetch", "decode", "resize", "encode"] {
        let dur = timing[stage]
            .0
            .unwrap_or_else(|| panic!("{stage} has a dur"));
        assert!(dur >= 0.0, "{stage}");
    }
    // A 2560x1600 JPEG takes more than a twentieth of a millisecond to decode and to encode as WebP.
    assert!(timing["decode"].0 > Some(0.0), "{timing:?}");
    assert!(timing["encode"].0 > Some(0.0), "{timing:?}");

    for hit in [
        app.get(&format!("/w/200/f/webp/{key}")).await,
        app.head(&format!("/w/200/f/webp/{key}")).await,
    ] {
        let timing = server_timing(&hit);
        assert_eq!(timing["tier"].1.as_deref(), Some("memory"));
        assert_eq!(timing.len(), 2, "nothing timed on a memory hit: {timing:?}");
    }
    app.stop().await;
}

async fn request_ids_are_echoed_when_sane_and_made_otherwise(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample_image()).await;
    let app = spawn_app(&store, test_config()).await;
    let with_id = |path: String, id: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("x-request-id", id)
            .send()
    };

    let res = with_id(format!("/w/100/{key}"), "edge-7f3a:42")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-request-id"), Some("edge-7f3a:42"));
    // Errors and the other endpoints have one too.
    let res = with_id(format!("/w/100/{}", store.key("no.jpg")), "lost-1")
        .await
        .unwrap();
    assert_eq!(
        (res.status(), header(&res, "x-request-id")),
        (StatusCode::NOT_FOUND, Some("lost-1"))
    );

    let made = |res: &reqwest::Response| {
        let id = header(res, "x-request-id").expect("an id").to_string();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "a made id: {id}"
        );
        id
    };
    let first = made(&app.get(&format!("/w/100/{key}")).await);
    let second = made(&app.get("/healthz").await);
    assert_ne!(first, second);
    // Not sane (too long, or not a token): replaced, never echoed.
    for insane in ["x".repeat(200), "<script>".into(), "a b".into()] {
        let res = with_id(format!("/w/100/{key}"), &insane).await.unwrap();
        assert_ne!(made(&res), insane);
    }
    app.stop().await;
}

async fn every_image_answer_carries_the_security_headers(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample_image()).await;
    let app = spawn_app(&store, test_config()).await;
    let path = format!("/w/100/{key}");

    let computed = app.get(&path).await;
    let etag = header(&computed, "etag").unwrap().to_string();
    let head = app.head(&path).await;
    let not_modified = app.get_with(&path, &[("if-none-match", &etag)]).await;
    let error = app.get(&format!("/w/100/{}", store.key("no.jpg"))).await;
    for (what, res, status) in [
        ("computed", &computed, 200),
        ("HEAD", &head, 200),
        ("304", &not_modified, 304),
        ("error", &error, 404),
    ] {
        assert_eq!(res.status().as_u16(), status, "{what}");
        assert_eq!(
            header(res, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            header(res, "content-security-policy"),
            Some("default-src 'none'; sandbox"),
            "{what}"
        );
    }
    app.stop().await;
}

/// Kills the child when the test ends, however it ends.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary on a directory holding `images/x.jpg` with `SIZER_TELEMETRY__LOG_FORMAT=format`,
/// sends one image request with `X-Request-Id: id`, stops it and returns what it logged.
async fn logs_of_one_request(format: &str, id: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/x.jpg"), sample_image()).unwrap();
    let port = free_port();
    let mut server = Running(Some(
        Command::new(env!("CARGO_BIN_EXE_sizer"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--root")
            .arg(dir.path())
            .env("SIZER_TELEMETRY__LOG_FORMAT", format)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sizer starts"),
    ));
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/w/100/images/x.jpg");
    let mut status = None;
    for _ in 0..200 {
        if let Ok(res) = client.get(&url).header("x-request-id", id).send().await {
            status = Some(res.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(StatusCode::OK));
    let child = server.0.take().expect("running");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "graceful exit: {}", output.status);
    String::from_utf8(output.stdout).expect("UTF-8 logs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let logs = logs_of_one_request("json", "json-id-1").await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "sizer listening"),
        "{logs}"
    );
    let request = lines
        .iter()
        .find(|l| l["message"] == "request")
        .unwrap_or_else(|| panic!("no request line in {logs}"));
    assert_eq!(request["level"], "INFO");
    assert_eq!(request["status"], 200);
    assert_eq!(request["tier"], "computed");
    assert_eq!(request["path"], "/w/100/images/x.jpg");
    assert_eq!(request["span"]["request_id"], "json-id-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_the_request_id_too() {
    let logs = logs_of_one_request("text", "text-id-1").await;
    let request = logs
        .lines()
        .find(|l| l.contains(" request ") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("no request line in {logs}"));
    assert!(request.contains("request_id=text-id-1"), "{request}");
    assert!(
        serde_json::from_str::<serde_json::Value>(request).is_err(),
        "text, not JSON"
    );
}

/// With `telemetry.metrics_token`, `/metrics` is for the scraper holding it: 401 without a token, 403
/// with another, the page with it. (No store is involved.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_kept_to_the_scraper_holding_a_token() {
    let store = TestStore::new(Backend::Fs).await;
    let mut config = test_config();
    config.telemetry.metrics_token = "scrape-me-4f9a1c".into();
    let app = spawn_app(&store, config).await;
    let url = format!("{}/metrics", app.base);
    let without = app.client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);
    assert_eq!(header(&without, "www-authenticate"), Some("Bearer"));
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let right = app
        .client
        .get(&url)
        .bearer_auth("scrape-me-4f9a1c")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("sizer_memory_budget_bytes")
    );
}
