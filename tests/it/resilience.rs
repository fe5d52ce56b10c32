//! Failure handling: write-back failures, overload, timeouts, store outages, graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;
use sizer::config::{StoreConfig, StoreKind};
use sizer::store::S3Store;

#[tokio::test]
async fn failed_write_back_still_serves_the_image_and_is_counted() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("images/x.jpg", sample("grey.jpg")).await;
    store.probe.fail_puts.store(true, Ordering::SeqCst);
    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/w/300/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, 300);
    for _ in 0..100 {
        if app.metric("sizer_write_back_failures_total").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric("sizer_write_back_failures_total").await, 1);
    assert_eq!(app.metric("sizer_write_backs_total").await, 0);
    app.stop().await;
    assert_eq!(store.read(&format!("copy/{key}/w300_q80")).await, None);
}

#[tokio::test]
async fn the_response_does_not_wait_for_the_write_back_and_shutdown_does() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("images/x.jpg", sample("grey.jpg")).await;
    let gate = store.probe.hold_puts();
    let app = spawn_app(&store, test_config()).await;

    // The write-back is held at the gate; the client must get its image regardless.
    let res = tokio::time::timeout(Duration::from_secs(20), app.get(&format!("/w/300/{key}")))
        .await
        .expect("the response came while the write-back was still blocked");
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.bytes().await.unwrap();

    // Shutdown now waits for the pending write-back, which completes once released.
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the pending write-back"
    );
    gate.add_permits(1);
    stopping.await.unwrap();
    assert_eq!(
        store.read(&format!("copy/{key}/w300_q80")).await,
        Some(body)
    );
}

#[tokio::test]
async fn a_full_cpu_queue_answers_503_with_retry_after() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.pool.workers = 1;
    config.pool.queue = 0;
    let app = spawn_app(&store, config).await;

    // Eight different cold variants at once: one worker, no queue.
    let paths: Vec<String> = (0..8).map(|i| format!("/w/{}/{key}", 2000 + i)).collect();
    let requests = paths.iter().map(|path| app.get(path));
    let responses = futures_util::future::join_all(requests).await;
    let mut ok = 0;
    let mut refused = 0;
    for res in responses {
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(header(&res, "retry-after"), Some("1"));
                assert_eq!(error_json(res).await.0, 503);
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1 && refused >= 1, "ok {ok}, refused {refused}");
    assert_eq!(app.metric("sizer_overloaded_total").await, refused);
    app.stop().await;
    assert_eq!(
        store.probe.total_puts(),
        ok as usize,
        "refused requests wrote nothing"
    );
}

#[tokio::test]
async fn a_slow_store_times_out_with_504() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("images/x.jpg", sample("grey.jpg")).await;
    store.probe.get_delay_ms.store(2_000, Ordering::SeqCst);
    let mut config = test_config();
    config.server.request_timeout_ms = 200;
    let app = spawn_app(&store, config).await;
    let (status, message) = error_json(app.get(&format!("/w/300/{key}")).await).await;
    assert_eq!(status, 504, "{message}");
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_s3_store_is_502() {
    // A port nothing listens on: the real S3 client fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = StoreConfig {
        kind: StoreKind::S3,
        bucket: "nowhere".into(),
        endpoint: format!("http://{closed}"),
        region: "us-east-1".into(),
        ..StoreConfig::default()
    };
    // With or without credentials in the environment, the request cannot reach a store: 502.
    let app = spawn_app_on(Arc::new(S3Store::connect(&config).await), test_config()).await;
    let res = app.get("/w/300/images/x.jpg").await;
    let (status, message) = error_json(res).await;
    assert_eq!(status, 502, "{message}");
    assert!(
        !message.contains(&closed.to_string()),
        "store details stay in the log: {message}"
    );
    app.stop().await;
}
