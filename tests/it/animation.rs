//! Animations over HTTP: an animated GIF stays animated (every frame, its delays and loop count) as GIF
//! or WebP, in the copy tier too; the caps refuse before decoding; `output.first_frame_only` serves a
//! still under its own key.

use std::borrow::Cow;

use crate::common::*;

both_stores!(
    an_animated_gif_is_served_animated_as_gif_and_webp,
    an_animation_over_the_frame_cap_is_413_and_writes_nothing,
    first_frame_only_serves_a_still_under_its_own_key,
);

const FRAMES: usize = 6;

/// A 120x80 animation: a grey field with a 20x20 square moving right, one colour per frame, delays
/// 40, 50, 60... ms, played forever.
pub fn moving_square_gif() -> Vec<u8> {
    let palette = [128, 128, 128, 220, 30, 30, 30, 200, 40, 20, 40, 230];
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, 120, 80, &palette).unwrap();
        encoder.set_repeat(gif::Repeat::Infinite).unwrap();
        for i in 0..FRAMES {
            let x0 = 10 + 15 * i;
            let buffer: Vec<u8> = (0..120 * 80)
                .map(|p| {
                    let (x, y) = (p % 120, p / 120);
                    if (x0..x0 + 20).contains(&x) && (30..50).contains(&y) {
                        1 + (i % 3) as u8
                    } else {
                        0
                    }
                })
                .collect();
            let frame = gif::Frame {
                width: 120,
                height: 80,
                delay: 4 + i as u16,
                buffer: Cow::Owned(buffer),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}

/// Frame count, delays (hundredths) and repeat of a GIF.
fn gif_frames(bytes: &[u8]) -> (usize, Vec<u16>, gif::Repeat, (u16, u16)) {
    let mut decoder = gif::DecodeOptions::new().read_info(bytes).unwrap();
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        delays.push(frame.delay);
    }
    (
        delays.len(),
        delays,
        decoder.repeat(),
        (decoder.width(), decoder.height()),
    )
}

async fn an_animated_gif_is_served_animated_as_gif_and_webp(backend: Backend) {
    let store = TestStore::new(backend).await;
    let app = spawn_app(&store, test_config()).await;
    let key = store
        .put_original("images/square.gif", moving_square_gif().into())
        .await;

    let res = app.get(&format!("/w/60/{key}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), Some("image/gif"));
    let body = res.bytes().await.unwrap();
    let (frames, delays, repeat, size) = gif_frames(&body);
    assert_eq!(
        (frames, size, repeat),
        (FRAMES, (60, 40), gif::Repeat::Infinite)
    );
    assert_eq!(delays, [4, 5, 6, 7, 8, 9]);
    // The copy tier holds the same animation.
    let stored = wait_for_object(&store, &format!("copy/{key}/w60_q80")).await;
    assert_eq!(gif_frames(&stored).0, FRAMES);

    let res = app.get(&format!("/w/60/f/webp/{key}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), Some("image/webp"));
    let body = res.bytes().await.unwrap();
    let decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&body[..])).unwrap();
    assert!(decoder.is_animated());
    assert_eq!(decoder.num_frames() as usize, FRAMES);
    assert_eq!(decoder.dimensions(), (60, 40));
    assert_eq!(decoder.loop_count(), image_webp::LoopCount::Forever);
    // A browser negotiated to AVIF, which cannot animate, gets an animated WebP under the `.auto-avif`
    // key (every client granted AVIF takes WebP too), and a still of it AVIF.
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let res = app
        .get_with(&format!("/w/60/f/auto/{key}"), &[("accept", chrome)])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), Some("image/webp"));
    assert_eq!(header(&res, "vary"), Some("Accept"));
    let body = res.bytes().await.unwrap();
    let decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&body[..])).unwrap();
    assert_eq!(decoder.num_frames() as usize, FRAMES);
    let stored = wait_for_object(&store, &format!("copy/{key}/w60_q80.auto-avif")).await;
    assert_eq!(stored, body);
    // A client that takes neither keeps the GIF.
    let res = app.get(&format!("/w/60/f/auto/{key}")).await;
    assert_eq!(header(&res, "content-type"), Some("image/gif"));
    app.stop().await;
}

async fn an_animation_over_the_frame_cap_is_413_and_writes_nothing(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut config = test_config();
    config.limits.max_frames = 4;
    let app = spawn_app(&store, config).await;
    let key = store
        .put_original("images/square.gif", moving_square_gif().into())
        .await;
    let (status, message) = error_json(app.get(&format!("/w/60/{key}")).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("more than 4 frames"), "{message}");
    // A still of it is within the cap: the first frame is all a PNG can hold.
    let res = app.get(&format!("/w/60/f/png/{key}")).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
    assert_eq!(store.probe.puts(&format!("copy/{key}/w60_q80")), 0);

    let mut config = test_config();
    config.limits.max_animation_pixels = (120 * 80 * FRAMES - 1) as u64;
    let app = spawn_app(&store, config).await;
    let (status, message) = error_json(app.get(&format!("/w/60/{key}")).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("6 frames"), "{message}");
    app.stop().await;
    assert_eq!(store.probe.puts(&format!("copy/{key}/w60_q80")), 0);
}

async fn first_frame_only_serves_a_still_under_its_own_key(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut config = test_config();
    config.output.first_frame_only = true;
    let app = spawn_app(&store, config).await;
    let key = store
        .put_original("images/square.gif", moving_square_gif().into())
        .await;
    let res = app.get(&format!("/w/60/{key}")).await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert_eq!(gif_frames(&body).0, 1);
    let stored = wait_for_object(&store, &format!("copy/{key}/w60_q80_still")).await;
    assert_eq!(gif_frames(&stored).0, 1);
    app.stop().await;
}
