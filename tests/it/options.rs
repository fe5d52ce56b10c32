//! The URL options over real HTTP against both real stores: sizes, fits, gravity, dpr, quality, formats,
//! `f/auto` with `Vary: Accept`, presets, never-upscale, and the one-key-per-output rule.

use std::io::Cursor;

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    cover_crops_to_the_box_keeping_the_gravity_side,
    contain_pads_with_the_background_or_transparency,
    fill_stretches_and_height_alone_follows_the_aspect_ratio,
    dpr_and_the_plain_width_share_one_stored_variant,
    quality_and_format_change_the_bytes_and_the_key,
    auto_format_follows_accept_and_varies_on_it,
    the_cdn_token_is_honoured_only_with_the_cdn_secret,
    unsigned_urls_cannot_fill_the_bucket,
    small_originals_are_not_upscaled_and_the_response_says_so,
    presets_expand_and_refuse_contradiction,
    alpha_flattens_onto_the_background_for_jpeg,
    smart_gravity_keeps_the_interesting_part,
);

/// A 400x200 PNG: left half red, right half blue.
fn red_blue() -> bytes::Bytes {
    let img = image::RgbImage::from_fn(400, 200, |x, _| {
        if x < 200 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png.into()
}

fn rgba(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes)
        .expect("a decodable image")
        .into_rgba8()
}

/// The CDN's token is honoured only with the configured secret, and the answer then varies on it too.
async fn the_cdn_token_is_honoured_only_with_the_cdn_secret(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("photo.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.output.accept_token_secret = "cdn-secret-0123456789".into();
    let app = spawn_app(&store, config).await;
    let url = format!("/w/200/f/auto/{key}");
    for (secret, expect, vary) in [
        (
            Some("cdn-secret-0123456789"),
            "image/webp",
            "Accept, Sizer-Accept",
        ),
        (Some("wrong"), "image/avif", "Accept"),
        (None, "image/avif", "Accept"),
    ] {
        let mut headers = vec![("accept", CHROME), ("sizer-accept", "webp")];
        headers.extend(secret.map(|s| ("sizer-cdn-secret", s)));
        let res = app.get_with(&url, &headers).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "content-type"), Some(expect), "{secret:?}");
        assert_eq!(header(&res, "vary"), Some(vary), "{secret:?}");
    }
}

/// With every free knob bounded (`widths.allowed`, `limits.allowed_qualities`, `allowed_dprs`,
/// `allowed_backgrounds`), thirty unsigned URLs that each asked for a new variant before make at most
/// what the lists allow: the rest are 400s naming the option, and a background that changes no byte
/// shares the plain variant's key.
async fn unsigned_urls_cannot_fill_the_bucket(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("photo.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.widths.allowed = vec![64];
    config.limits.allowed_qualities = vec![80];
    config.limits.allowed_dprs = vec![1.0, 2.0];
    config.limits.allowed_backgrounds = vec!["ffffff".into()];
    let app = spawn_app(&store, config).await;
    let mut paths: Vec<String> = (1..=10).map(|q| format!("/w/64/q/{q}/{key}")).collect();
    paths.extend((11..=19).map(|d| format!("/w/64/dpr/{}.{}/{key}", d / 10, d % 10)));
    paths.extend((0..9).map(|i| format!("/w/64/f/webp/bg/{i:06x}/{key}")));
    paths.push(format!("/w/64/f/webp/bg/ffffff/{key}"));
    paths.push(format!("/w/64/f/webp/{key}"));
    assert_eq!(paths.len(), 30);
    let mut served = 0;
    for path in &paths {
        let res = app.get(path).await;
        match res.status() {
            StatusCode::OK => served += 1,
            StatusCode::BAD_REQUEST => {
                let (_, message) = error_json(res).await;
                assert!(message.contains("is not allowed"), "{path}: {message}");
            }
            other => panic!("{path}: {other}"),
        }
    }
    assert_eq!(served, 2, "the white background and the plain WebP");
    app.stop().await;
    assert_eq!(
        store.probe.total_puts(),
        1,
        "one variant: bg/ffffff changes no byte of a WebP without padding"
    );
}

async fn setup(
    backend: Backend,
    name: &str,
    original: bytes::Bytes,
) -> (TestStore, String, TestApp) {
    let store = TestStore::new(backend).await;
    let key = store.put_original(name, original).await;
    let app = spawn_app(&store, test_config()).await;
    (store, key, app)
}

async fn cover_crops_to_the_box_keeping_the_gravity_side(backend: Backend) {
    let (_store, key, app) = setup(backend, "rb.png", red_blue()).await;
    for (gravity, expect) in [("west", [255, 0, 0]), ("east", [0, 0, 255])] {
        let res = app
            .get(&format!("/w/100/h/100/fit/cover/g/{gravity}/{key}"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let img = rgba(&res.bytes().await.unwrap());
        assert_eq!(img.dimensions(), (100, 100));
        for p in [
            img.get_pixel(5, 5),
            img.get_pixel(95, 95),
            img.get_pixel(50, 50),
        ] {
            assert_eq!(&p.0[..3], expect, "{gravity}");
        }
    }
    // Centre keeps both halves.
    let res = app.get(&format!("/w/100/h/100/fit/cover/{key}")).await;
    let img = rgba(&res.bytes().await.unwrap());
    assert_eq!(&img.get_pixel(5, 50).0[..3], [255, 0, 0]);
    assert_eq!(&img.get_pixel(95, 50).0[..3], [0, 0, 255]);
    app.stop().await;
}

async fn contain_pads_with_the_background_or_transparency(backend: Backend) {
    let (_store, key, app) = setup(backend, "rb.png", red_blue()).await;
    let res = app
        .get(&format!("/w/100/h/100/fit/contain/bg/00ff00/{key}"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let img = rgba(&res.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (100, 100));
    assert_eq!(img.get_pixel(50, 5).0, [0, 255, 0, 255], "padding above");
    assert_eq!(img.get_pixel(50, 95).0, [0, 255, 0, 255], "padding below");
    assert_eq!(
        img.get_pixel(10, 50).0,
        [255, 0, 0, 255],
        "the image in the middle"
    );
    let clear = app.get(&format!("/w/100/h/100/fit/contain/{key}")).await;
    let img = rgba(&clear.bytes().await.unwrap());
    assert_eq!(img.get_pixel(50, 5).0[3], 0, "PNG padding is transparent");
    // JPEG cannot be transparent: white unless told otherwise.
    let jpeg = app
        .get(&format!("/w/100/h/100/fit/contain/g/north/f/jpeg/{key}"))
        .await;
    assert_eq!(header(&jpeg, "content-type"), Some("image/jpeg"));
    let img = rgba(&jpeg.bytes().await.unwrap());
    assert!(
        img.get_pixel(50, 95).0[..3].iter().all(|&c| c > 245),
        "white below"
    );
    assert!(img.get_pixel(10, 10).0[0] > 200, "red at the top (north)");
    app.stop().await;
}

async fn fill_stretches_and_height_alone_follows_the_aspect_ratio(backend: Backend) {
    let (_store, key, app) = setup(backend, "path.jpg", sample("path.jpg")).await;
    let res = app.get(&format!("/w/300/h/300/fit/fill/{key}")).await;
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (300, 300));
    let res = app.get(&format!("/h/100/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (160, 100));
    let res = app.get(&format!("/w/300/h/300/{key}")).await;
    assert_eq!(
        decoded_size(&res.bytes().await.unwrap()),
        (300, 188),
        "inside by default"
    );
    app.stop().await;
}

async fn dpr_and_the_plain_width_share_one_stored_variant(backend: Backend) {
    let (store, key, app) = setup(backend, "path.jpg", sample("path.jpg")).await;
    let retina = app.get(&format!("/w/150/dpr/2/{key}")).await;
    assert_eq!(retina.status(), StatusCode::OK);
    assert_eq!(header(&retina, "sizer-tier"), Some("computed"));
    let retina = retina.bytes().await.unwrap();
    assert_eq!(decoded_size(&retina).0, 300);
    let variant = format!("copy/{key}/w300_q80");
    assert_eq!(wait_for_object(&store, &variant).await, retina);
    for path in [
        format!("/w/300/{key}"),
        format!("/w/300/q/80/fit/inside/{key}"),
        format!("/w/300/dpr/1/{key}"),
    ] {
        let res = app.get(&path).await;
        assert_eq!(header(&res, "sizer-tier"), Some("memory"), "{path}");
        assert_eq!(res.bytes().await.unwrap(), retina, "{path}");
    }
    assert_eq!(
        store.probe.total_puts(),
        1,
        "one stored variant for all four URLs"
    );
    assert_eq!(store.probe.gets(&key), 1, "one read of the original");
    app.stop().await;
}

async fn quality_and_format_change_the_bytes_and_the_key(backend: Backend) {
    let (store, key, app) = setup(backend, "path.jpg", sample("path.jpg")).await;
    let q80 = app
        .get(&format!("/w/300/{key}"))
        .await
        .bytes()
        .await
        .unwrap();
    let q30 = app.get(&format!("/w/300/q/30/{key}")).await;
    assert_eq!(header(&q30, "sizer-tier"), Some("computed"));
    let q30 = q30.bytes().await.unwrap();
    assert!(
        q30.len() < q80.len() * 3 / 4,
        "{} vs {}",
        q30.len(),
        q80.len()
    );
    wait_for_object(&store, &format!("copy/{key}/w300_q30")).await;
    for (format, mime) in [
        ("webp", "image/webp"),
        ("png", "image/png"),
        ("gif", "image/gif"),
        ("avif", "image/avif"),
    ] {
        let res = app.get(&format!("/w/300/f/{format}/{key}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{format}");
        assert_eq!(header(&res, "content-type"), Some(mime));
        assert_eq!(
            header(&res, "vary"),
            None,
            "an explicit format never varies"
        );
        let body = res.bytes().await.unwrap();
        let ext = if format == "jpeg" { "jpg" } else { format };
        assert_eq!(
            wait_for_object(&store, &format!("copy/{key}/w300_q80.{ext}")).await,
            body
        );
        if format != "avif" {
            assert_eq!(decoded_size(&body), (300, 188), "{format}");
        }
    }
    app.stop().await;
}

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const SAFARI_15: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
const CURL: &str = "*/*";

async fn auto_format_follows_accept_and_varies_on_it(backend: Backend) {
    let (_store, key, app) = setup(backend, "path.jpg", sample("path.jpg")).await;
    let get = |accept: &'static str, path: String| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("accept", accept)
            .send()
    };
    let url = format!("/w/200/f/auto/{key}");
    for (accept, mime) in [
        (CHROME, "image/avif"),
        (SAFARI_15, "image/webp"),
        (CURL, "image/jpeg"),
    ] {
        let res = get(accept, url.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "content-type"), Some(mime), "{accept}");
        assert_eq!(header(&res, "vary"), Some("Accept"));
        let etag = header(&res, "etag").unwrap().to_string();
        // 304 and HEAD vary too.
        let revalidated = app
            .get_with(&url, &[("accept", accept), ("if-none-match", &etag)])
            .await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&revalidated, "vary"), Some("Accept"));
        let head = app
            .client
            .head(format!("{}{url}", app.base))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&head, "vary"), Some("Accept"));
        assert_eq!(header(&head, "content-type"), Some(mime));
    }
    // A client's own token is ignored: without the CDN's secret (none is configured here), Chrome's
    // Accept decides, so no client can choose what a cache keyed on Accept stores for everyone.
    let res = app
        .get_with(
            &url,
            &[
                ("accept", CHROME),
                ("sizer-accept", "webp"),
                ("sizer-cdn-secret", ""),
            ],
        )
        .await;
    assert_eq!(header(&res, "content-type"), Some("image/avif"));
    assert_eq!(header(&res, "vary"), Some("Accept"));
    // No f/: the original's format, and no Vary.
    let plain = get(CHROME, format!("/w/200/{key}")).await.unwrap();
    assert_eq!(header(&plain, "content-type"), Some("image/jpeg"));
    assert_eq!(header(&plain, "vary"), None);
    // Errors do not vary.
    let bad = get(CHROME, format!("/w/0/f/auto/{key}")).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&bad, "vary"), None);
    app.stop().await;
}

async fn small_originals_are_not_upscaled_and_the_response_says_so(backend: Backend) {
    // camera.png is 512x512.
    let (_store, key, app) = setup(backend, "camera.png", sample("camera.png")).await;
    let res = app.get(&format!("/w/800/h/400/fit/cover/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "sizer-upscale-avoided"), Some("512x256"));
    assert_eq!(
        decoded_size(&res.bytes().await.unwrap()),
        (512, 256),
        "the asked 2:1 shape"
    );
    let res = app.get(&format!("/w/1000/{key}")).await;
    assert_eq!(header(&res, "sizer-upscale-avoided"), Some("512x512"));
    assert_eq!(header(&res, "sizer-clamped-width"), Some("512"));
    let res = app.get(&format!("/w/256/h/256/fit/cover/{key}")).await;
    assert_eq!(header(&res, "sizer-upscale-avoided"), None);
    // Repeated from memory, the header is still there.
    let res = app.get(&format!("/w/800/h/400/fit/cover/{key}")).await;
    assert_eq!(header(&res, "sizer-tier"), Some("memory"));
    assert_eq!(header(&res, "sizer-upscale-avoided"), Some("512x256"));
    app.stop().await;
}

async fn presets_expand_and_refuse_contradiction(backend: Backend) {
    let (store, key, app) = setup(backend, "path.jpg", sample("path.jpg")).await;
    let res = app.get(&format!("/p/thumb/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (300, 300));
    wait_for_object(&store, &format!("copy/{key}/w300_h300_cover_q80")).await;
    let (status, message) = error_json(app.get(&format!("/p/thumb/w/100/{key}")).await).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("'w'") && message.contains("thumb"),
        "{message}"
    );
    let (status, message) = error_json(app.get(&format!("/p/nope/{key}")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("nope"), "{message}");
    app.stop().await;
}

async fn alpha_flattens_onto_the_background_for_jpeg(backend: Backend) {
    let (_store, key, app) = setup(backend, "camera.png", sample("camera.png")).await;
    let res = app.get(&format!("/w/64/f/jpeg/bg/0000ff/{key}")).await;
    assert_eq!(header(&res, "content-type"), Some("image/jpeg"));
    let img = rgba(&res.bytes().await.unwrap());
    let corner = img.get_pixel(0, 0).0;
    assert!(
        corner[2] > 200 && corner[0] < 60,
        "transparent corner on blue: {corner:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_options_are_400_naming_the_option_and_write_nothing() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("path.jpg", sample("path.jpg")).await;
    let app = spawn_app(&store, test_config()).await;
    for (path, option) in [
        ("/w/300/h/-1", "'h'"),
        ("/w/300/fit/crop", "'fit'"),
        ("/w/300/g/top", "'g'"),
        ("/w/300/dpr/4", "'dpr'"),
        ("/w/300/dpr/1.55", "'dpr'"),
        ("/w/300/q/0", "'q'"),
        ("/w/300/f/tiff", "'f'"),
        ("/w/300/bg/red", "'bg'"),
        ("/w/300/fit/cover/fit/fill", "'fit'"),
        ("/w/3000/dpr/2", "'w'"),
    ] {
        let (status, message) = error_json(app.get(&format!("{path}/{key}")).await).await;
        assert_eq!(status, 400, "{path}");
        assert!(message.contains(option), "{path}: {message}");
    }
    assert_eq!(
        store.probe.gets(&key),
        0,
        "no option error reads the original"
    );
    assert_eq!(store.probe.total_puts(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_output_pixel_cap_applies_after_reading_the_header() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("path.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    config.limits.max_output_pixels = 100_000;
    let app = spawn_app(&store, config).await;
    // 2560x1600 at 600 wide is 600x375 = 225,000 pixels.
    let (status, message) = error_json(app.get(&format!("/w/600/{key}")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("100000"), "{message}");
    let (status, _) = error_json(app.get(&format!("/w/1000/h/1000/{key}")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.get(&format!("/w/300/{key}")).await.status(),
        StatusCode::OK
    );
    wait_for_object(&store, &format!("copy/{key}/w300_q80")).await;
    assert_eq!(
        store.probe.total_puts(),
        1,
        "only the variant within the cap"
    );
    app.stop().await;
}

/// An AVIF encode cannot be interrupted, so its size is bounded before it starts
/// (`limits.max_avif_pixels`): above it, `f/avif` is a 400 naming the limit, and `f/auto` gives the
/// client WebP (which every client granted AVIF takes) under the same key; below it, AVIF as asked.
#[tokio::test]
async fn avif_outputs_above_their_pixel_cap_are_webp_when_negotiated_and_400_when_asked_for() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("path.jpg", sample("path.jpg")).await;
    let mut config = test_config();
    // 2560x1600 at 200 wide is 200x125 = 25,000 pixels; at 100 wide, 6,250.
    config.limits.max_avif_pixels = 10_000;
    let app = spawn_app(&store, config).await;
    let (status, message) = error_json(app.get(&format!("/w/200/f/avif/{key}")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("max_avif_pixels"), "{message}");
    let negotiated = app
        .get_with(&format!("/w/200/f/auto/{key}"), &[("accept", CHROME)])
        .await;
    assert_eq!(negotiated.status(), StatusCode::OK);
    assert_eq!(header(&negotiated, "content-type"), Some("image/webp"));
    let small = app
        .get_with(&format!("/w/100/f/auto/{key}"), &[("accept", CHROME)])
        .await;
    assert_eq!(header(&small, "content-type"), Some("image/avif"));
    assert_eq!(
        app.get(&format!("/w/100/f/avif/{key}")).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn smart_gravity_keeps_the_interesting_part(backend: Backend) {
    // A flat grey 800x200 picture with a textured red patch near its right edge.
    let img = image::RgbImage::from_fn(800, 200, |x, y| {
        if (640..780).contains(&x) && (40..160).contains(&y) {
            if (x / 4 + y / 4) % 2 == 0 {
                image::Rgb([230, 20, 20])
            } else {
                image::Rgb([150, 0, 0])
            }
        } else {
            image::Rgb([128, 128, 128])
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (_store, key, app) = setup(backend, "patch.png", png.into()).await;
    let redness = |img: &image::RgbaImage| {
        img.pixels()
            .filter(|p| p[0] > 120 && p[1] < 60 && p[2] < 60)
            .count()
    };
    let smart = app
        .get(&format!("/w/100/h/100/fit/cover/g/smart/{key}"))
        .await;
    assert_eq!(smart.status(), StatusCode::OK);
    let smart = rgba(&smart.bytes().await.unwrap());
    assert_eq!(smart.dimensions(), (100, 100));
    assert!(
        redness(&smart) > 3000,
        "smart crop missed the patch: {} red pixels",
        redness(&smart)
    );
    let centre = app.get(&format!("/w/100/h/100/fit/cover/{key}")).await;
    assert_eq!(
        redness(&rgba(&centre.bytes().await.unwrap())),
        0,
        "the centre has no patch"
    );
    app.stop().await;
}
