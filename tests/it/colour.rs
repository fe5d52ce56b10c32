//! Colour management over HTTP: a Display P3 photo (ICC profile embedded, as phones write them) comes out
//! as the sRGB picture it shows, not as P3 numbers read as sRGB.

use crate::common::*;
use moxcms::{ColorProfile, Layout, TransformOptions};

both_stores!(
    a_display_p3_original_is_served_in_srgb,
    keep_profile_serves_the_original_colour_space_tagged,
    cmyk_and_ycck_jpegs_are_served_right_side_up,
);

/// A saturated gradient, width x height, in sRGB.
fn srgb_gradient(width: u32, height: u32) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                (40 + x * 200 / width) as u8,
                (210 - y * 170 / height) as u8,
                (30 + (x + y) * 80 / (width + height)) as u8,
            ]
        })
        .collect()
}

fn to_p3(rgb: &[u8]) -> Vec<u8> {
    let transform = ColorProfile::new_srgb()
        .create_transform_8bit(
            Layout::Rgb,
            &ColorProfile::new_display_p3(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .unwrap();
    let mut out = vec![0; rgb.len()];
    transform.transform(rgb, &mut out).unwrap();
    out
}

fn jpeg(rgb: &[u8], width: u32, height: u32, profile: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    if let Some(profile) = profile {
        encoder.add_icc_profile(profile).unwrap();
    }
    encoder
        .encode(
            rgb,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

/// Mean CIE76 ΔE between two sRGB images.
fn mean_delta_e(a: &[u8], b: &[u8]) -> f64 {
    fn lab(p: &[u8]) -> [f64; 3] {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let (r, g, b) = (lin(p[0]), lin(p[1]), lin(p[2]));
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [
            116.0 * f(y) - 16.0,
            500.0 * (f(x) - f(y)),
            200.0 * (f(y) - f(z)),
        ]
    }
    let pixels = a.len() / 3;
    a.chunks(3)
        .zip(b.chunks(3))
        .map(|(p, q)| {
            let (l1, l2) = (lab(p), lab(q));
            ((l1[0] - l2[0]).powi(2) + (l1[1] - l2[1]).powi(2) + (l1[2] - l2[2]).powi(2)).sqrt()
        })
        .sum::<f64>()
        / pixels as f64
}

async fn rgb_of(app: &TestApp, path: &str) -> Vec<u8> {
    let res = app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .to_rgb8()
        .into_raw()
}

async fn a_display_p3_original_is_served_in_srgb(backend: Backend) {
    let (w, h) = (480, 320);
    let srgb = srgb_gradient(w, h);
    let p3_profile = ColorProfile::new_display_p3().encode().unwrap();
    let p3 = to_p3(&srgb);
    let store = TestStore::new(backend).await;
    let reference = store
        .put_original("srgb.jpg", jpeg(&srgb, w, h, None).into())
        .await;
    let tagged = store
        .put_original("p3.jpg", jpeg(&p3, w, h, Some(&p3_profile)).into())
        .await;
    // The same P3 numbers without their profile: what sizer served before it read profiles.
    let untagged = store
        .put_original("p3-untagged.jpg", jpeg(&p3, w, h, None).into())
        .await;
    let app = spawn_app(&store, test_config()).await;
    for format in ["", "f/webp/", "f/png/"] {
        let want = rgb_of(&app, &format!("/w/240/{format}{reference}")).await;
        let got = rgb_of(&app, &format!("/w/240/{format}{tagged}")).await;
        let wrong = rgb_of(&app, &format!("/w/240/{format}{untagged}")).await;
        let (good, bad) = (mean_delta_e(&got, &want), mean_delta_e(&wrong, &want));
        eprintln!(
            "{format:8} mean ΔE against sRGB: {good:.2} with the profile read, {bad:.2} without"
        );
        assert!(
            good < 1.5,
            "{format}: ΔE {good:.2} against the sRGB original"
        );
        assert!(
            bad > 4.0 * good.max(0.5),
            "{format}: untagged ΔE {bad:.2} (the test can fail)"
        );
    }
    app.stop().await;
}

async fn keep_profile_serves_the_original_colour_space_tagged(backend: Backend) {
    let (w, h) = (480, 320);
    let p3_profile = ColorProfile::new_display_p3().encode().unwrap();
    let p3 = to_p3(&srgb_gradient(w, h));
    let store = TestStore::new(backend).await;
    let tagged = store
        .put_original("p3.jpg", jpeg(&p3, w, h, Some(&p3_profile)).into())
        .await;
    let untagged = store
        .put_original("p3-untagged.jpg", jpeg(&p3, w, h, None).into())
        .await;
    let mut config = test_config();
    config.output.keep_profile = true;
    let app = spawn_app(&store, config).await;
    for (format, name) in [
        ("", sizer::pipeline::Format::Jpeg),
        ("f/png/", sizer::pipeline::Format::Png),
        ("f/webp/", sizer::pipeline::Format::WebP),
    ] {
        let res = app.get(&format!("/w/240/{format}{tagged}")).await;
        assert_eq!(res.status(), 200);
        let bytes = res.bytes().await.unwrap();
        let carried = sizer::pipeline::colour::embedded_profile(name.into(), &bytes);
        assert_eq!(carried.as_deref(), Some(p3_profile.as_slice()), "{format}");
        let kept = image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8()
            .into_raw();
        let numbers = rgb_of(&app, &format!("/w/240/{format}{untagged}")).await;
        assert!(
            mean_delta_e(&kept, &numbers) < 1.5,
            "{format}: the P3 numbers, tagged"
        );
    }
    // Its own key: the two modes never share a stored variant.
    wait_for_object(&store, &format!("copy/{tagged}/w240_q80_icc")).await;
    app.stop().await;
}

/// A CMYK JPEG of two patches, cyan then paper white, stored Adobe-style (inverted, APP14 written by
/// libjpeg) in the JPEG colour space `space`.
fn adobe_cmyk_jpeg(space: mozjpeg::ColorSpace) -> Vec<u8> {
    let (w, h) = (64usize, 32usize);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let ink = if i % w < w / 2 {
                [255, 0, 0, 0]
            } else {
                [0, 0, 0, 0]
            };
            ink.map(|v: u8| 255 - v)
        })
        .collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    compress.set_size(w, h);
    compress.set_color_space(space);
    compress.set_quality(95.0);
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&data).unwrap();
    started.finish().unwrap()
}

async fn cmyk_and_ycck_jpegs_are_served_right_side_up(backend: Backend) {
    let store = TestStore::new(backend).await;
    let app = spawn_app(&store, test_config()).await;
    for (name, space) in [
        ("cmyk.jpg", mozjpeg::ColorSpace::JCS_CMYK),
        ("ycck.jpg", mozjpeg::ColorSpace::JCS_YCCK),
    ] {
        let key = store
            .put_original(name, adobe_cmyk_jpeg(space).into())
            .await;
        let rgb = rgb_of(&app, &format!("/w/32/f/png/{key}")).await;
        let pixel = |x: usize, y: usize| &rgb[(y * 32 + x) * 3..(y * 32 + x) * 3 + 3];
        let (cyan, white) = (pixel(6, 8), pixel(26, 8));
        assert!(
            cyan[0] < 30 && cyan[1] > 225 && cyan[2] > 225,
            "{name}: cyan {cyan:?}"
        );
        assert!(
            white.iter().all(|&v| v > 225),
            "{name}: paper {white:?}, not a negative"
        );
    }
    app.stop().await;
}
