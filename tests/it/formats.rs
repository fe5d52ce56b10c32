//! Every supported format in, the same format out, with alpha and EXIF orientation honoured.

use std::io::Cursor;

use crate::common::*;
use reqwest::StatusCode;

async fn resize(
    name: &str,
    original: bytes::Bytes,
    width: u32,
) -> (reqwest::Response, TestStore, TestApp) {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original(name, original).await;
    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/w/{width}/{key}")).await;
    (res, store, app)
}

#[tokio::test]
async fn png_keeps_its_transparency() {
    let (res, _store, app) = resize("camera.png", sample("camera.png"), 128).await;
    assert_eq!(header(&res, "content-type"), Some("image/png"));
    let img = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .into_rgba8();
    assert_eq!(img.dimensions(), (128, 128));
    assert_eq!(
        img.get_pixel(0, 0)[3],
        0,
        "the corner of the icon stays transparent"
    );
    assert!(img.pixels().any(|p| p[3] == 255), "and its body opaque");
    app.stop().await;
}

#[tokio::test]
async fn palette_png_mode_serves_indexed_png_under_its_own_key() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("camera.png", sample("camera.png")).await;
    let lossless_app = spawn_app(&store, test_config()).await;
    let lossless = lossless_app.get(&format!("/w/128/{key}")).await;
    let lossless = lossless.bytes().await.unwrap();
    lossless_app.stop().await;

    let mut config = test_config();
    config.output.png = sizer::pipeline::PngMode::Palette;
    let app = spawn_app(&store, config).await;
    let res = app.get(&format!("/w/128/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "sizer-tier"),
        Some("computed"),
        "the lossless variant stored earlier is not served in palette mode"
    );
    let body = res.bytes().await.unwrap();
    assert_eq!(body[25], 3, "IHDR colour type 3: indexed");
    assert!(body.len() < lossless.len());
    let img = image::load_from_memory(&body).unwrap().into_rgba8();
    assert_eq!(img.dimensions(), (128, 128));
    assert_eq!(
        img.get_pixel(0, 0)[3],
        0,
        "transparency survives the palette"
    );
    let stored = wait_for_object(&store, &format!("copy/{key}/w128_q80_p")).await;
    assert_eq!(stored, body);
    app.stop().await;
}

#[tokio::test]
async fn webp_in_webp_out() {
    let (res, _store, app) = resize("friends.webp", sample("friends.webp"), 400).await;
    assert_eq!(header(&res, "content-type"), Some("image/webp"));
    let body = res.bytes().await.unwrap();
    assert_eq!(
        image::guess_format(&body).unwrap(),
        image::ImageFormat::WebP
    );
    assert_eq!(decoded_size(&body).0, 400);
    app.stop().await;
}

#[tokio::test]
async fn greyscale_jpeg_stays_greyscale() {
    let (res, _store, app) = resize("grey.jpg", sample("grey.jpg"), 640).await;
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (640, 400));
    assert_eq!(img.color(), image::ColorType::L8);
    app.stop().await;
}

#[tokio::test]
async fn gif_first_frame_is_resized() {
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        let frame =
            image::RgbaImage::from_fn(80, 40, |x, _| image::Rgba([(x * 3) as u8, 0, 200, 255]));
        encoder
            .encode_frame(image::Frame::new(frame.clone()))
            .unwrap();
        encoder.encode_frame(image::Frame::new(frame)).unwrap();
    }
    let (res, _store, app) = resize("anim.gif", gif.into(), 40).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("image/gif"));
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (40, 20));
    app.stop().await;
}

/// A 64x32 JPEG, left half black and right half white, tagged EXIF orientation 6 (display rotated 90°
/// clockwise): displayed, it is 32 wide and 64 high, black on top.
fn rotated_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let mut jpeg = Vec::new();
    img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    // APP1 "Exif\0\0" + big-endian TIFF with one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend_from_slice(&[
        0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0,
    ]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test]
async fn exif_orientation_is_applied() {
    let (res, _store, app) = resize("rotated.jpg", rotated_jpeg().into(), 16).await;
    assert_eq!(res.status(), StatusCode::OK);
    let img = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .into_luma8();
    assert_eq!(img.dimensions(), (16, 32), "width is the displayed width");
    assert!(
        img.get_pixel(8, 4)[0] < 64,
        "top is black: {:?}",
        img.get_pixel(8, 4)
    );
    assert!(
        img.get_pixel(8, 28)[0] > 192,
        "bottom is white: {:?}",
        img.get_pixel(8, 28)
    );
    app.stop().await;
}

/// `jpeg` with the metadata a phone writes: EXIF with a GPS IFD (latitude "N"), an XMP packet with a GPS
/// position, and an IPTC (Photoshop APP13) block.
fn jpeg_with_location(jpeg: &[u8]) -> Vec<u8> {
    let segment = |marker: u8, payload: &[u8]| {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        s.extend_from_slice(payload);
        s
    };
    // Big-endian TIFF: IFD0 {Orientation = 1, GPSInfo -> 38}, GPS IFD {GPSLatitudeRef = "N"}.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x02".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0]);
    exif.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
    exif.extend_from_slice(&[0, 0, 0, 0]);
    exif.extend_from_slice(&[0, 1, 0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0, 0, 0, 0, 0]);
    let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>48,51.5N</exif:GPSLatitude></x:xmpmeta>";
    let iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x5a\0\x05Paris";
    let mut out = vec![0xFF, 0xD8];
    out.extend(segment(0xE1, &exif));
    out.extend(segment(0xE1, xmp));
    out.extend(segment(0xED, iptc));
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test]
async fn location_and_other_metadata_never_reach_a_variant() {
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 200]))
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let original = jpeg_with_location(&jpeg);
    assert!(
        original.windows(4).any(|w| w == b"Exif"),
        "the fixture carries EXIF"
    );
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("phone.jpg", original.into()).await;
    let app = spawn_app(&store, test_config()).await;
    for format in ["jpeg", "png", "webp", "avif", "gif"] {
        let res = app.get(&format!("/w/32/f/{format}/{key}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{format}");
        let body = res.bytes().await.unwrap();
        for needle in [
            &b"Exif"[..],
            b"GPS",
            b"xmpmeta",
            b"Photoshop",
            b"8BIM",
            b"Paris",
            b"eXIf",
        ] {
            assert!(
                !body.windows(needle.len()).any(|w| w == needle),
                "{format} output carries {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    app.stop().await;
}

/// `jpeg` with an EXIF block a camera would write: the credits, and a GPS position beside them.
fn jpeg_with_credits(jpeg: &[u8]) -> Vec<u8> {
    let ascii = |tag, ifd_num, text: &str| exif::Field {
        tag,
        ifd_num,
        value: exif::Value::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let fields = [
        ascii(exif::Tag::Artist, exif::In::PRIMARY, "Ada Photographer"),
        ascii(exif::Tag::Copyright, exif::In::PRIMARY, "(c) 2026 Ada"),
        ascii(exif::Tag::GPSLatitudeRef, exif::In::PRIMARY, "N"),
    ];
    let mut writer = exif::experimental::Writer::new();
    fields.iter().for_each(|f| writer.push_field(f));
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(tiff.get_ref());
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test]
async fn keep_copyright_carries_the_credits_and_nothing_else() {
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 200]))
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let store = TestStore::new(Backend::Fs).await;
    let key = store
        .put_original("credited.jpg", jpeg_with_credits(&jpeg).into())
        .await;
    let read = |body: &[u8]| {
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(body))
            .ok()
    };
    // Off by default: nothing at all.
    let app = spawn_app(&store, test_config()).await;
    let body = app
        .get(&format!("/w/32/{key}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(read(&body).is_none(), "no EXIF by default");
    app.stop().await;

    let mut config = test_config();
    config.output.keep_copyright = true;
    let app = spawn_app(&store, config).await;
    for format in ["jpeg", "png", "webp"] {
        let res = app.get(&format!("/w/32/f/{format}/{key}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{format}");
        let body = res.bytes().await.unwrap();
        let exif = read(&body).unwrap_or_else(|| panic!("{format} carries EXIF"));
        let text = |tag| {
            exif.get_field(tag, exif::In::PRIMARY)
                .map(|f| f.display_value().to_string())
        };
        assert_eq!(
            text(exif::Tag::Artist).as_deref(),
            Some("\"Ada Photographer\""),
            "{format}"
        );
        assert_eq!(
            text(exif::Tag::Copyright).as_deref(),
            Some("\"(c) 2026 Ada\""),
            "{format}"
        );
        assert_eq!(
            exif.fields().count(),
            2,
            "{format}: the credits and nothing else"
        );
        assert!(!body.windows(3).any(|w| w == b"GPS"), "{format}");
    }
    // Its own keys: the two modes never share a stored variant.
    wait_for_object(&store, &format!("copy/{key}/w32_q80_cr.webp")).await;
    app.stop().await;
}

/// `name` from `testdata/formats` resized to `options`, with the response decoded.
async fn read_only(name: &str, options: &str) -> (String, image::DynamicImage) {
    let store = TestStore::new(Backend::Fs).await;
    let key = store
        .put_original(name, crate::common::images::format_fixture(name).into())
        .await;
    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/{options}/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK, "{name}");
    let kind = header(&res, "content-type").unwrap_or("").to_string();
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    app.stop().await;
    (kind, img)
}

fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[tokio::test]
async fn tiff_bmp_and_ico_originals_are_served_as_jpeg_or_png() {
    // TIFF without alpha is a photograph or a scan: JPEG; BMP and ICO are drawn graphics: PNG.
    let (kind, lzw) = read_only("path-lzw.tif", "w/160").await;
    assert_eq!(
        (kind.as_str(), (lzw.width(), lzw.height())),
        ("image/jpeg", (160, 100))
    );
    let (kind, jpeg_tiff) = read_only("path-jpeg.tif", "w/160").await;
    assert_eq!(kind, "image/jpeg", "a JPEG-compressed TIFF");
    let compressed = mean_difference(&lzw.to_rgb8(), &jpeg_tiff.to_rgb8());
    assert!(compressed < 4.0, "{compressed:.2}");
    let (kind, bmp) = read_only("path-24.bmp", "w/160").await;
    assert_eq!(
        (kind.as_str(), (bmp.width(), bmp.height())),
        ("image/png", (160, 100))
    );
    // The same picture, resized by an independent resizer from the fixture itself.
    let reference = image::load_from_memory(&crate::common::images::format_fixture("path-lzw.tif"))
        .unwrap()
        .resize_exact(160, 100, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let independent = mean_difference(&lzw.to_rgb8(), &reference);
    assert!(
        independent < 6.0,
        "TIFF as JPEG q80 (its loss): {independent:.2}"
    );
    // BMP's pixels are the same picture, and its output lossless.
    let lossless = mean_difference(&bmp.to_rgb8(), &reference);
    assert!(lossless < 1.5, "BMP as PNG: {lossless:.2}");
}

#[tokio::test]
async fn alpha_in_tiff_bmp_and_ico_is_kept_as_png() {
    // 16-bit RGBA, its left half transparent.
    let (kind, ramp) = read_only("ramp-rgba16.tif", "w/32").await;
    assert_eq!(
        (kind.as_str(), (ramp.width(), ramp.height())),
        ("image/png", (32, 24))
    );
    let ramp = ramp.to_rgba8();
    assert_eq!(ramp.get_pixel(2, 12)[3], 0, "transparent on the left");
    assert_eq!(ramp.get_pixel(29, 12)[3], 255, "opaque on the right");
    let reds: Vec<u8> = (17..32).map(|x| ramp.get_pixel(x, 12)[0]).collect();
    assert!(
        reds.windows(2).all(|w| w[0] <= w[1]),
        "the red ramp rises: {reds:?}"
    );
    for name in ["camera-32.bmp", "camera.ico"] {
        let (kind, icon) = read_only(name, "w/24").await;
        assert_eq!(
            (kind.as_str(), (icon.width(), icon.height())),
            ("image/png", (24, 24)),
            "{name}"
        );
        let icon = icon.to_rgba8();
        assert_eq!(
            icon.get_pixel(0, 0)[3],
            0,
            "{name}: the corner stays transparent"
        );
        assert!(
            icon.pixels().any(|p| p[3] == 255),
            "{name}: its body opaque"
        );
    }
}

#[tokio::test]
async fn an_icon_is_read_at_its_largest_image_and_a_tiff_at_its_first_page() {
    // camera.ico holds 16, 32 and 48 px images; sizer does not enlarge, so 48 px is what it read.
    let (_, icon) = read_only("camera.ico", "w/200").await;
    assert_eq!((icon.width(), icon.height()), (48, 48));
    // two-pages.tif: 100x60, then 300x300.
    let (kind, first) = read_only("two-pages.tif", "w/50").await;
    assert_eq!(
        (kind.as_str(), (first.width(), first.height())),
        ("image/jpeg", (50, 30))
    );
}

#[tokio::test]
async fn a_tiff_orientation_tag_is_applied() {
    // Stored 320x200 with a red block at its stored top left; orientation 6 shows it rotated a quarter
    // turn clockwise, 200x320, the block at the top right.
    let (_, img) = read_only("path-orient6.tif", "w/100").await;
    assert_eq!((img.width(), img.height()), (100, 160));
    let img = img.to_rgb8();
    let p = img.get_pixel(97, 2);
    assert!(
        p[0] > 200 && p[1] < 60 && p[2] < 60,
        "top right is the red block: {p:?}"
    );
    let q = img.get_pixel(2, 2);
    assert!(!(q[0] > 200 && q[1] < 60), "top left is not: {q:?}");
}

#[tokio::test]
async fn a_tiff_icc_profile_is_converted_to_srgb() {
    // path-p3.tif holds path-lzw.tif's picture re-expressed in Display P3, with the profile.
    let (_, srgb) = read_only("path-lzw.tif", "w/160").await;
    let (_, p3) = read_only("path-p3.tif", "w/160").await;
    let converted = mean_difference(&srgb.to_rgb8(), &p3.to_rgb8());
    let raw = image::load_from_memory(&crate::common::images::format_fixture("path-p3.tif"))
        .unwrap()
        .resize_exact(160, 100, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let unconverted = mean_difference(&srgb.to_rgb8(), &raw);
    assert!(
        converted < 2.0 && unconverted > converted * 2.0,
        "converted {converted:.2}, the P3 numbers as they are {unconverted:.2}"
    );
}

#[tokio::test]
async fn f_auto_answers_a_tiff_with_what_the_client_takes() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store
        .put_original(
            "scan.tif",
            crate::common::images::format_fixture("path-lzw.tif").into(),
        )
        .await;
    let app = spawn_app(&store, test_config()).await;
    let webp = app
        .get_with(
            &format!("/w/100/f/auto/{key}"),
            &[("accept", "image/webp,*/*")],
        )
        .await;
    assert_eq!(header(&webp, "content-type"), Some("image/webp"));
    let any = app
        .get_with(&format!("/w/100/f/auto/{key}"), &[("accept", "*/*")])
        .await;
    assert_eq!(
        header(&any, "content-type"),
        Some("image/jpeg"),
        "never TIFF"
    );
    app.stop().await;
}

#[tokio::test]
async fn jpeg_xl_originals_are_served_in_srgb_with_their_alpha() {
    let reference = image::load_from_memory(&crate::common::images::format_fixture("path-lzw.tif"))
        .unwrap()
        .resize_exact(160, 100, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let (kind, lossy) = read_only("path.jxl", "w/160").await;
    assert_eq!(
        (kind.as_str(), (lossy.width(), lossy.height())),
        ("image/jpeg", (160, 100))
    );
    let plain = mean_difference(&lossy.to_rgb8(), &reference);
    assert!(plain < 6.0, "JPEG XL q90 then JPEG q80: {plain:.2}");
    // The same picture in Display P3 with its profile: converted, it is the sRGB picture again.
    let (_, p3) = read_only("path-p3.jxl", "w/160").await;
    let converted = mean_difference(&p3.to_rgb8(), &reference);
    assert!(converted < 6.0, "P3 converted to sRGB: {converted:.2}");
    let (kind, grey) = read_only("path-grey.jxl", "w/160").await;
    assert_eq!(kind, "image/jpeg");
    let grey = grey.to_rgb8();
    assert!(
        grey.pixels()
            .all(|p| p[0].abs_diff(p[1]) <= 2 && p[1].abs_diff(p[2]) <= 2)
    );
    let (kind, icon) = read_only("camera-alpha.jxl", "w/48").await;
    assert_eq!(
        (kind.as_str(), (icon.width(), icon.height())),
        ("image/png", (48, 48))
    );
    let icon = icon.to_rgba8();
    assert_eq!(icon.get_pixel(0, 0)[3], 0, "the corner stays transparent");
    assert!(icon.pixels().any(|p| p[3] == 255));
}

/// A 200x100 logo: a red bar on the left half, a blue circle on the right, transparent elsewhere.
const LOGO: &str = "<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' \
    'http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd'>\n<svg xmlns='http://www.w3.org/2000/svg' \
    width='200' height='100' viewBox='0 0 400 200'><rect x='0' y='50' width='200' height='100' \
    fill='#ff0000'/><circle cx='300' cy='100' r='80' fill='#0000ff'/></svg>";

#[tokio::test]
async fn svg_is_drawn_at_the_output_size_as_png() {
    let store = TestStore::new(Backend::Fs).await;
    let key = store
        .put_original("logo.svg", bytes::Bytes::from_static(LOGO.as_bytes()))
        .await;
    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/w/100/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("image/png"), "never SVG");
    let img = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .into_rgba8();
    assert_eq!(img.dimensions(), (100, 50));
    assert_eq!(img.get_pixel(2, 2)[3], 0, "transparent outside the shapes");
    assert_eq!(img.get_pixel(25, 25).0, [255, 0, 0, 255], "the bar");
    assert_eq!(
        img.get_pixel(75, 25).0,
        [0, 0, 255, 255],
        "the circle's centre"
    );
    // Drawn at 100x50, its edges are crisp: the circle's edge spans about one pixel of partial
    // coverage, where a 200x100 drawing shrunk would blur it over two.
    let partial = (50..100)
        .map(|x| img.get_pixel(x, 25)[3])
        .filter(|a| *a > 0 && *a < 255)
        .count();
    assert!(
        partial <= 2,
        "{partial} partly covered pixels on the row across the circle"
    );
    // JPEG on request, flattened onto white; f/auto by Accept.
    let jpeg = app.get(&format!("/w/100/f/jpeg/{key}")).await;
    assert_eq!(header(&jpeg, "content-type"), Some("image/jpeg"));
    let jpeg = image::load_from_memory(&jpeg.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert!(
        jpeg.get_pixel(2, 2).0.iter().all(|c| *c > 245),
        "white background"
    );
    let webp = app
        .get_with(&format!("/w/100/f/auto/{key}"), &[("accept", "image/webp")])
        .await;
    assert_eq!(header(&webp, "content-type"), Some("image/webp"));
    app.stop().await;
}
