//! Concurrent requests for one cold variant do the work once.

use crate::common::*;
use reqwest::StatusCode;

both_stores!(concurrent_cold_requests_read_decode_and_write_once);

async fn concurrent_cold_requests_read_decode_and_write_once(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    // Slow the store a little so that all requests arrive while the first is still in flight.
    store
        .probe
        .get_delay_ms
        .store(100, std::sync::atomic::Ordering::SeqCst);
    let app = spawn_app(&store, test_config()).await;

    let path = format!("/w/700/{key}");
    let requests = (0..24).map(|_| app.get(&path));
    let responses = futures_util::future::join_all(requests).await;
    let mut bodies = Vec::new();
    for res in responses {
        assert_eq!(res.status(), StatusCode::OK);
        bodies.push(res.bytes().await.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every caller got the same bytes"
    );
    assert_eq!(decoded_size(&bodies[0]).0, 700);

    app.stop().await;
    let variant = format!("copy/{key}/w700_q80");
    assert_eq!(store.probe.gets(&key), 1, "one original GET");
    assert_eq!(store.probe.gets(&variant), 1, "one copy-tier lookup");
    assert_eq!(store.probe.puts(&variant), 1, "one write-back");
}
