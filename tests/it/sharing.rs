//! A `srcset`'s widths of one new original share one read and, at one decode scale, one decode.

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    a_srcset_burst_reads_the_original_once_and_shares_decodes,
    without_the_budget_every_width_reads_and_decodes_alone,
    a_replaced_original_is_never_served_from_its_old_decode,
);

/// path.jpg is 2560x1600. With the decoder's headroom (1.25x at 1/8, 1.5x above), widths up to 256 decode
/// at 1/8 (320 px) and up to 426 at 1/4 (640 px).
const WIDTHS: [u32; 6] = [200, 240, 256, 300, 360, 420];

async fn burst(app: &TestApp, key: &str) -> Vec<reqwest::Response> {
    let paths: Vec<String> = WIDTHS.iter().map(|w| format!("/w/{w}/{key}")).collect();
    futures_util::future::join_all(paths.iter().map(|p| app.get(p))).await
}

async fn a_srcset_burst_reads_the_original_once_and_shares_decodes(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    // All widths arrive while the first read is still in flight.
    store
        .probe
        .get_delay_ms
        .store(150, std::sync::atomic::Ordering::SeqCst);
    let app = spawn_app(&store, test_config()).await;
    let mut shared_timings = 0;
    for (res, width) in burst(&app, &key).await.into_iter().zip(WIDTHS) {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "sizer-tier"), Some("computed"));
        if header(&res, "server-timing").is_some_and(|t| t.contains("decode;dur=0.0,")) {
            shared_timings += 1;
        }
        assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, width);
    }
    assert_eq!(store.probe.gets(&key), 1, "one read for six widths");
    // Two decode scales (1/8 and 1/4): two decodes, four widths made from a shared one.
    assert_eq!(app.metric("sizer_decodes_total{shared=\"false\"}").await, 2);
    assert_eq!(app.metric("sizer_decodes_total{shared=\"true\"}").await, 4);
    assert_eq!(
        shared_timings, 4,
        "Server-Timing shows no decode on shared ones"
    );
    // A later width at a scale already decoded: no read, no decode.
    let res = app.get(&format!("/w/350/{key}")).await;
    assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, 350);
    assert_eq!(store.probe.gets(&key), 1);
    assert_eq!(app.metric("sizer_decodes_total{shared=\"true\"}").await, 5);
    app.stop().await;
}

async fn without_the_budget_every_width_reads_and_decodes_alone(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.cache.originals_max_bytes = 0;
    let app = spawn_app(&store, config).await;
    for res in burst(&app, &key).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(store.probe.gets(&key), WIDTHS.len());
    assert_eq!(
        app.metric("sizer_decodes_total{shared=\"false\"}").await,
        WIDTHS.len() as u64
    );
    assert_eq!(app.metric("sizer_decodes_total{shared=\"true\"}").await, 0);
    app.stop().await;
}

async fn a_replaced_original_is_never_served_from_its_old_decode(backend: Backend) {
    let store = TestStore::new(backend).await;
    let dark = bytes::Bytes::from(flat_jpeg(800, 500, 10));
    let key = store.put_original("images/x.jpg", dark).await;
    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/w/200/{key}")).await;
    assert!(mean_luma(&res.bytes().await.unwrap()) < 40.0);
    // Replaced under the same key (a directory store's ETag is size and mtime: give it a new size).
    store
        .put_original("images/x.jpg", bytes::Bytes::from(flat_jpeg(801, 500, 240)))
        .await;
    let res = app.get(&format!("/w/210/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        mean_luma(&res.bytes().await.unwrap()) > 200.0,
        "the new original's pixels"
    );
    assert_eq!(store.probe.gets(&key), 2);
    app.stop().await;
}

fn flat_jpeg(width: u32, height: u32, value: u8) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([value, value, value]));
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("a flat JPEG encodes");
    out.into_inner()
}

fn mean_luma(bytes: &[u8]) -> f64 {
    let image = image::load_from_memory(bytes).unwrap().to_luma8();
    image.pixels().map(|p| f64::from(p[0])).sum::<f64>() / f64::from(image.width() * image.height())
}
