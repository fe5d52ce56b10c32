//! Memory: the admission budget (`limits.memory_budget_bytes`) bounds what in-flight image work holds, so
//! many concurrent requests for large originals queue or get a 503, never an OOM; what each job reserves
//! covers what it allocates. The attacks on the real binary, whose figures need the machine to
//! themselves, are in `tests/load`.

use std::io::Cursor;
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    work_beyond_the_budget_waits_then_gets_503_and_one_image_above_it_is_413,
    huge_progressive_jpegs_and_padding_bombs_reserve_what_they_allocate,
);

async fn work_beyond_the_budget_waits_then_gets_503_and_one_image_above_it_is_413(
    backend: Backend,
) {
    let store = TestStore::new(backend).await;
    let mut keys = Vec::new();
    for i in 0..6 {
        keys.push(
            store
                .put_original(&format!("big-{i}.jpg"), sample("path.jpg"))
                .await,
        );
    }
    let mut config = test_config();
    // path.jpg at 2000 wide decodes at full size (2560x1600, with the 1.25x headroom): 16.4 MB of RGBA,
    // reserved twice, plus the file: one fits in 48 MiB, two do not.
    config.limits.memory_budget_bytes = 48 << 20;
    config.limits.memory_wait_ms = 1;
    config.cache.originals_max_bytes = 0;
    config.pool.workers = 1;
    let app = spawn_app(&store, config).await;
    let paths: Vec<String> = keys.iter().map(|k| format!("/w/2000/{k}")).collect();
    let responses = futures_util::future::join_all(paths.iter().map(|p| app.get(p))).await;
    let (mut ok, mut busy) = (0, 0);
    for res in responses {
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(
                    header(&res, "retry-after"),
                    Some("1"),
                    "{:?}",
                    res.headers()
                );
                let (_, message) = error_json(res).await;
                assert!(message.contains("memory budget"), "{message}");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "{ok} served, {busy} refused");
    assert!(app.metric("sizer_memory_budget_refused_total").await >= 1);
    // A variant's bytes stay reserved until its write-back lands.
    let mut in_use = u64::MAX;
    for _ in 0..200 {
        in_use = app
            .metric("sizer_memory_budget_bytes{state=\"in_use\"}")
            .await;
        if in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(in_use, 0, "every reservation given back");
    app.stop().await;

    // One image that needs more than the whole budget can never be made: 413, not a wait.
    let mut config = test_config();
    config.limits.memory_budget_bytes = 4 << 20;
    let app = spawn_app(&store, config).await;
    // A fresh original: variants of the others may be in the copy tier from the first part.
    let fresh = store
        .put_original("big-fresh.jpg", sample("path.jpg"))
        .await;
    let (status, message) = error_json(app.get(&format!("/w/2000/{fresh}")).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("memory budget"), "{message}");
    // A small variant of the same original fits.
    assert_eq!(app.get(&format!("/w/100/{fresh}")).await.status(), 200);
    app.stop().await;
}

/// Memory that no pixel count shows: a progressive JPEG's coefficient arrays, which libjpeg holds for the
/// whole original whatever the output's size (2 bytes a coefficient: 216 MB for a flat 6000x6000 4:4:4
/// file of 2 MB), and a `contain` canvas far larger than its image (a 4096x4096 canvas round a
/// 4096x1 PNG of a hundred bytes). Both are reserved: under a 128 MiB budget each is a 413 naming the
/// budget, where they used to be served holding hundreds of MB outside it; under the default budget
/// both are served.
async fn huge_progressive_jpegs_and_padding_bombs_reserve_what_they_allocate(backend: Backend) {
    let store = TestStore::new(backend).await;
    let progressive = tokio::task::spawn_blocking(|| {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
        encoder.set_progressive(true);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
        encoder
            .encode(
                &vec![90u8; 6000 * 6000 * 3],
                6000,
                6000,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        out
    })
    .await
    .unwrap();
    assert!(progressive.len() < 4 << 20, "{} bytes", progressive.len());
    let jpeg = store
        .put_original("progressive.jpg", progressive.into())
        .await;
    let line = {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(4096, 1, image::Rgb([200, 10, 10]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    assert!(line.len() < 200, "{} bytes", line.len());
    let png = store.put_original("line.png", line.into()).await;
    let cases = [
        format!("/w/100/{jpeg}"),
        format!("/w/4096/h/4096/fit/contain/{png}"),
    ];
    let mut config = test_config();
    config.limits.memory_budget_bytes = 128 << 20;
    let app = spawn_app(&store, config).await;
    for path in &cases {
        let (status, message) = error_json(app.get(path).await).await;
        assert_eq!(status, 413, "{path}: {message}");
        assert!(message.contains("memory budget"), "{path}: {message}");
    }
    app.stop().await;
    let app = spawn_app(&store, test_config()).await;
    for path in &cases {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.stop().await;
}
