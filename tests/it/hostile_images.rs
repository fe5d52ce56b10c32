//! Hostile originals, every one made here by code from a seed or a generated picture (no binary blobs):
//! truncations of every input format, seeded byte flips, polyglots and non-images under an image name,
//! malformed and oversized metadata, decompression bombs, and JPEG kinds sizer does not decode. Each is
//! either refused with a precise 4xx and a JSON body, writing nothing, or, when it is a valid image that
//! merely carries something hostile (a bomb in an ancillary chunk, a ZIP after the image), served re-encoded
//! without it. Never a 5xx, never a document type, and the service answers a normal request after each.
#![allow(unsafe_code)] // FFI: libc's setrlimit in a child before exec.

use std::time::Duration;

use bytes::Bytes;

use crate::common::images::*;
use crate::common::*;

both_stores!(
    hostile_originals_are_refused_or_served_clean,
    a_16_bit_png_at_the_pixel_limit_is_served_and_one_row_more_is_413,
);

/// Small enough that every bomb below is refused from its header in microseconds, large enough for the
/// pictures the cases are made of. What matters is that a limit holds, not its value.
const MAX_SOURCE_PIXELS: u64 = 4_000_000;

fn config() -> sizer::Config {
    let mut config = test_config();
    config.limits.max_source_pixels = MAX_SOURCE_PIXELS;
    config
}

/// What the service must do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This status, a JSON error body, nothing written.
    Refused(u16),
    /// A valid image carrying something hostile: 200, an image type, decodable, re-encoded so that none of
    /// these byte strings survives.
    Served(&'static [&'static [u8]]),
}
use Expect::*;

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// URL options before the key.
    options: &'static str,
    expect: Expect,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        bytes,
        options: "w/64",
        expect,
    }
}

fn case_at(name: impl Into<String>, options: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        options,
        ..case(name, bytes, expect)
    }
}

async fn hostile_originals_are_refused_or_served_clean(backend: Backend) {
    let store = TestStore::new(backend).await;
    let app = spawn_app(&store, config()).await;
    // A normal original, served (and written) once before the cases, then from memory after each of them.
    let healthy = store
        .put_original("images/healthy.png", Bytes::from(png_rgb(48, 32)))
        .await;
    let healthy_path = format!("/w/24/{healthy}");
    assert_eq!(app.get(&healthy_path).await.status(), 200);
    wait_for_object(&store, &format!("copy/{healthy}/w24_q80")).await;

    let cases = cases();
    let refused = cases
        .iter()
        .filter(|c| matches!(c.expect, Refused(_)))
        .count();
    assert!(refused >= 60, "{refused} refused cases");
    let mut failures = Vec::new();
    let mut served = 0;
    for (i, c) in cases.iter().enumerate() {
        // Every original is stored under an image name, whatever it holds: sizer goes by the bytes.
        let key = store
            .put_original(
                &format!("hostile/{i:03}/x.jpg"),
                Bytes::from(c.bytes.clone()),
            )
            .await;
        let puts_before = store.probe.total_puts();
        let res = tokio::time::timeout(
            Duration::from_secs(30),
            app.get(&format!("/{}/{key}", c.options)),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: no answer within 30 s", c.name));
        if let Some(problem) = check(c, res).await {
            failures.push(format!("{i:03} {}: {problem}", c.name));
        } else if matches!(c.expect, Served(_)) {
            // Its write-back lands before the next case, so each refusal's count below is its own.
            let width = c
                .options
                .strip_prefix("w/")
                .expect("served cases ask for a width");
            wait_for_object(&store, &format!("copy/{key}/w{width}_q80")).await;
            served += 1;
        } else if store.probe.total_puts() != puts_before {
            failures.push(format!("{i:03} {}: refused, yet written", c.name));
        }
        let after = app.get(&healthy_path).await;
        assert_eq!(
            (after.status().as_u16(), header(&after, "sizer-tier")),
            (200, Some("memory")),
            "after {}: the service still answers",
            c.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Stopping drains the write-backs: only the healthy variant and the served cases were written.
    app.stop().await;
    let refused = cases.len() - served;
    eprintln!(
        "{} hostile originals: {refused} refused, {served} served",
        cases.len()
    );
    assert_eq!(store.probe.total_puts(), 1 + served);
    for (i, c) in cases.iter().enumerate() {
        if matches!(c.expect, Refused(_)) && c.options == "w/64" {
            let key = store.key(&format!("hostile/{i:03}/x.jpg"));
            assert_eq!(store.read(&format!("copy/{key}/w64_q80")).await, None);
        }
    }
}

/// What is wrong with the answer to `c`, if anything.
async fn check(c: &Case, res: reqwest::Response) -> Option<String> {
    let status = res.status().as_u16();
    let content_type = header(&res, "content-type").unwrap_or("").to_string();
    let nosniff = header(&res, "x-content-type-options") == Some("nosniff");
    let body = res.bytes().await.expect("a body");
    let excerpt = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    match c.expect {
        Refused(expected) => {
            if status != expected {
                return Some(format!("{status} (expected {expected}): {}", excerpt()));
            }
            if content_type != "application/json" || !nosniff {
                return Some(format!("error as {content_type:?}, nosniff {nosniff}"));
            }
            let json: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(json) => json,
                Err(e) => return Some(format!("body is not JSON ({e}): {}", excerpt())),
            };
            let message = json["error"].as_str().unwrap_or("");
            if json["status"].as_u64() != Some(u64::from(status)) || message.is_empty() {
                return Some(format!("body {json}"));
            }
            None
        }
        Served(absent) => {
            if status != 200 {
                return Some(format!("{status} (expected 200): {}", excerpt()));
            }
            if !["image/jpeg", "image/png", "image/gif", "image/webp"]
                .contains(&content_type.as_str())
            {
                return Some(format!("served as {content_type:?}"));
            }
            if let Err(e) = image::load_from_memory(&body) {
                return Some(format!("the output does not decode: {e}"));
            }
            absent
                .iter()
                .find(|needle| find(&body, needle).is_some())
                .map(|needle| {
                    format!(
                        "the output still holds {:?}",
                        String::from_utf8_lossy(needle)
                    )
                })
        }
    }
}

async fn a_16_bit_png_at_the_pixel_limit_is_served_and_one_row_more_is_413(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut config = test_config();
    // 640x480, a 16-bit RGBA PNG of 2.4 MB decoded: the limit, not the format, decides.
    config.limits.max_source_pixels = 640 * 480;
    let app = spawn_app(&store, config).await;
    let at = store
        .put_original("at.png", Bytes::from(png_16_bit(640, 480)))
        .await;
    let above = store
        .put_original("above.png", Bytes::from(png_16_bit(640, 481)))
        .await;
    let res = app.get(&format!("/w/64/{at}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (64, 48));
    let (status, message) = error_json(app.get(&format!("/w/64/{above}")).await).await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("640x481"), "{message}");
    app.stop().await;
    assert_eq!(store.probe.total_puts(), 1);
}

/// Bombs inside otherwise valid headers, through `sizer resize` (the server's pipeline, default limits)
/// with its address space capped: a decoder that allocated what a chunk inflates to, rather than what the
/// header declares, runs out and aborts. (A child's peak RSS cannot be measured from here: Linux counts
/// the parent's at exec into it.)
#[test]
fn bombs_inside_valid_headers_stay_within_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let png = png_rgb(32, 24);
    let bombs = [
        (
            "an iCCP chunk inflating to 256 MiB",
            png_with_chunks(&png, &[iccp_bomb(256 << 20)]),
            Some(0),
        ),
        (
            "a zTXt chunk inflating to 256 MiB",
            png_with_chunks(
                &png,
                &[png_chunk(
                    b"zTXt",
                    &[&b"Comment\0\0"[..], &zlib_zeros(256 << 20)].concat(),
                )],
            ),
            Some(0),
        ),
        (
            "an IDAT inflating to 256 MiB",
            png_raw(64, 64, 8, 0, &zlib_zeros(256 << 20)),
            Some(0),
        ),
        (
            "a 1x1 GIF screen holding an 8000x8000 frame",
            gif_manual((1, 1), (8000, 8000), &lzw_run(64_000_000)),
            Some(1),
        ),
    ];
    let input = dir.path().join("bomb");
    for (name, bytes, expected) in bombs {
        std::fs::write(&input, &bytes).expect("write the bomb");
        let code = resize_capped(&input, &dir.path().join("out"));
        assert_eq!(
            code, expected,
            "{name}: exit code {code:?} (none: killed, out of memory)"
        );
    }
}

/// Address space for `sizer resize`: the debug binary maps about 70 MiB, a 16-pixel resize of a small
/// image with an ICC profile as large as the decoder allowance stays under 100 MiB, and each bomb above
/// would take 256 MiB more if its chunk were inflated in full.
const ADDRESS_SPACE: libc::rlim_t = 192 << 20;

/// Runs `sizer resize INPUT OUTPUT --width 16` within [`ADDRESS_SPACE`]; its exit code (`None` if killed).
fn resize_capped(input: &std::path::Path, output: &std::path::Path) -> Option<i32> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sizer"));
    command
        .arg("resize")
        .arg(input)
        .arg(output)
        .args(["--width", "16"])
        // glibc reserves 64 MiB of address space for each malloc arena; one resize needs two at most.
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command.status().expect("sizer runs").code()
}

// ---------------------------------------------------------------------------------------------------
// The cases.

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    truncations(&mut cases);
    flips(&mut cases);
    garbage_and_non_images(&mut cases);
    metadata(&mut cases);
    bombs(&mut cases);
    jpeg_kinds(&mut cases);
    read_only_formats(&mut cases);
    cases
}

/// SVG: everything that would make it read outside itself, or cost far more than its bytes.
fn svg_cases(cases: &mut Vec<Case>) {
    let svg = |body: &str| {
        format!("<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' width='64' height='64'>{body}</svg>")
            .into_bytes()
    };
    let square = "<rect width='64' height='64' fill='#c04020'/>";
    cases.push(case("SVG, a square", svg(square), Served(&[])));
    // Billion laughs: ten entities of ten of the one before.
    let mut dtd = String::from("<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY l0 'lol'>");
    for i in 1..10 {
        dtd.push_str(&format!(
            "<!ENTITY l{i} '{}'>",
            format!("&l{};", i - 1).repeat(10)
        ));
    }
    dtd.push_str("]>");
    cases.push(case(
        "SVG billion laughs",
        [dtd.as_bytes(), &svg("<text>&l9;</text>")].concat(),
        Refused(422),
    ));
    cases.push(case(
        "SVG external entity (file:///etc/passwd)",
        [
            b"<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                .as_slice(),
            &svg("<text>&x;</text>"),
        ]
        .concat(),
        Refused(422),
    ));
    for href in [
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.png",
        "/etc/hostname",
    ] {
        cases.push(case(
            format!("SVG <image> of {href} (not read: the square alone)"),
            svg(&format!("{square}<image href='{href}' width='64' height='64'/><image xlink:href='{href}' width='64' height='64'/>")),
            Served(&[b"root:"]),
        ));
    }
    let png = png_rgb(8, 8);
    cases.push(case(
        "SVG <image> of a data: URI (not drawn either)",
        svg(&format!(
            "{square}<image href='data:image/png;base64,{}' width='64' height='64'/>",
            base64_encode(&png)
        )),
        Served(&[]),
    ));
    // <use> bomb: each level uses the one below ten times; eight levels are 10^8 elements.
    let mut defs = String::from("<defs><rect id='u0' width='1' height='1'/>");
    for i in 1..9 {
        defs.push_str(&format!("<g id='u{i}'>"));
        for _ in 0..10 {
            defs.push_str(&format!("<use href='#u{}'/>", i - 1));
        }
        defs.push_str("</g>");
    }
    defs.push_str("</defs><use href='#u8'/>");
    cases.push(case(
        "SVG <use> bomb (10^8 elements)",
        svg(&defs),
        Refused(422),
    ));
    cases.push(case(
        "SVG <use> of itself",
        svg("<g id='me'><use href='#me'/></g>"),
        Served(&[]),
    ));
    cases.push(case(
        "SVG nested 100000 deep",
        svg(&format!(
            "{}{}",
            "<g>".repeat(100_000),
            "</g>".repeat(100_000)
        )),
        Refused(422),
    ));
    cases.push(case(
        "SVG with 40 nested layers (opacity)",
        svg(&format!(
            "{}{square}{}",
            "<g opacity='0.99'>".repeat(40),
            "</g>".repeat(40)
        )),
        Refused(422),
    ));
    cases.push(case(
        "SVG declaring a 100000x100000 viewBox",
        b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 100000 100000'><rect width='10' height='10'/></svg>".to_vec(),
        Refused(413),
    ));
    cases.push(case(
        "SVG not UTF-8",
        [svg(square).as_slice(), b"\xFF\xFE"].concat(),
        Refused(422),
    ));
    let whole = svg(square);
    cases.push(case(
        "SVG cut short",
        whole[..whole.len() - 8].to_vec(),
        Refused(422),
    ));
}

/// TIFF, BMP and ICO (read, never written): bombs in their headers, lies about their data, and each
/// fixture cut short.
fn read_only_formats(cases: &mut Vec<Case>) {
    let rgb = picture(64, 48, 3);
    cases.push(case(
        "TIFF 64x48 RGB, whole",
        tiff_raw(64, 48, 3, &rgb, 64 * 48 * 3),
        Served(&[]),
    ));
    cases.push(case(
        "TIFF declaring 100000x100000 in 200 bytes",
        tiff_raw(100_000, 100_000, 3, &rgb[..64], 64),
        Refused(413),
    ));
    cases.push(case(
        "TIFF declaring 0x48",
        tiff_raw(0, 48, 3, &rgb, 64 * 48 * 3),
        Refused(422),
    ));
    cases.push(case(
        "TIFF whose strip claims 4 GB",
        tiff_raw(64, 48, 3, &rgb, u32::MAX),
        Refused(422),
    ));
    cases.push(case(
        "TIFF whose strip holds half its rows",
        tiff_raw(64, 48, 3, &rgb[..rgb.len() / 2], 64 * 48 * 3),
        Refused(422),
    ));
    let bgr = picture(64, 48, 3);
    cases.push(case("BMP 64x48, whole", bmp_raw(64, 48, &bgr), Served(&[])));
    // Over the pixel limit: refused from the header. Over the BMP reader's own cap (65535 a side): the
    // reader refuses it.
    cases.push(case(
        "BMP declaring 60000x60000",
        bmp_raw(60_000, 60_000, &bgr),
        Refused(413),
    ));
    cases.push(case(
        "BMP declaring 100000x100000",
        bmp_raw(100_000, 100_000, &bgr),
        Refused(422),
    ));
    cases.push(case(
        "BMP declaring -48 rows of 0 px",
        bmp_raw(0, -48, &bgr),
        // The BMP reader calls a zero width an unsupported feature.
        Refused(415),
    ));
    cases.push(case(
        "BMP holding half its rows",
        bmp_raw(64, 48, &bgr[..bgr.len() / 2]),
        Refused(422),
    ));
    // A JPEG XL header and nothing more: over the pixel limit, refused from the header; over the JPEG XL
    // profile's frame area (2^28 pixels at level 5), refused by jxl-oxide reading it.
    cases.push(case(
        "JPEG XL declaring 15000x15000",
        jxl_size_header(15_000, 15_000),
        Refused(413),
    ));
    cases.push(case(
        "JPEG XL declaring 2^30 x 2^30",
        jxl_size_header(1 << 30, 1 << 30),
        Refused(422),
    ));
    svg_cases(cases);
    for name in [
        "path-lzw.tif",
        "path-jpeg.tif",
        "path-24.bmp",
        "camera.ico",
        "path.jxl",
        "camera-alpha.jxl",
    ] {
        let whole = format_fixture(name);
        // 8 bytes of a BMP are too few to tell it from other files that start with "BM".
        let short = if name.ends_with(".bmp") { 415 } else { 422 };
        // 16 bytes short: in the pixel data (an icon's last PNG ends with a 12-byte IEND chunk).
        for (at, what, status) in [
            (8, "8 bytes", short),
            (whole.len() / 2, "50%", 422),
            (whole.len() - 16, "16 bytes short", 422),
        ] {
            cases.push(case(
                format!("{name} cut at {what}"),
                whole[..at].to_vec(),
                Refused(status),
            ));
        }
    }
}

/// Every input format cut short: at its magic number, in its header, just after the header, in the first
/// scan, half way, and one byte short.
fn truncations(cases: &mut Vec<Case>) {
    let baseline = jpeg(160, 120, false);
    let progressive = jpeg(160, 120, true);
    for (kind, j) in [("baseline", &baseline), ("progressive", &progressive)] {
        let sos = segment(j, 0xDA).expect("a scan");
        let dqt = segment(j, 0xDB).expect("tables");
        for (at, status, name) in [
            (2, 415, "SOI only"),
            (3, 422, "SOI and a marker byte"),
            (dqt.start + 30, 422, "mid-DQT"),
            (sos.start, 422, "all headers, no scan"),
            (sos.end + 16, 422, "16 bytes into the first scan"),
            (j.len() / 2, 422, "50%"),
            (j.len() - 1, 422, "1 byte short"),
        ] {
            cases.push(case(
                format!("JPEG {kind} cut at {name}"),
                j[..at].to_vec(),
                Refused(status),
            ));
        }
    }
    let png = png_rgb(160, 120);
    let idat = png_chunk_at(&png, b"IDAT").expect("IDAT");
    for (at, status, name) in [
        (8, 422, "signature only"),
        (20, 422, "mid-IHDR"),
        (idat.start, 422, "all headers, no IDAT"),
        (idat.start + 8 + 16, 422, "16 bytes into IDAT"),
        (png.len() / 2, 422, "50%"),
        (idat.end - 1, 422, "1 byte short of the IDAT CRC"),
    ] {
        cases.push(case(
            format!("PNG cut at {name}"),
            png[..at].to_vec(),
            Refused(status),
        ));
    }
    // Every pixel is there, only the trailer is cut: served, as browsers and libpng show it.
    cases.push(case(
        "PNG cut 1 byte short (in the IEND CRC)",
        png[..png.len() - 1].to_vec(),
        Served(&[]),
    ));
    for (kind, w) in [
        ("lossy", webp_lossy(160, 120)),
        ("lossless", webp_lossless(160, 120)),
    ] {
        for (at, status, name) in [
            (12, 422, "RIFF header only"),
            (24, 422, "mid-chunk header"),
            (20 + 16, 422, "16 bytes into the bitstream"),
            (w.len() / 2, 422, "50%"),
            (w.len() - 1, 422, "1 byte short"),
        ] {
            cases.push(case(
                format!("WebP {kind} cut at {name}"),
                w[..at].to_vec(),
                Refused(status),
            ));
        }
    }
    let gif = gif_frames(160, 120, 1);
    let descriptor = gif_image_descriptor(&gif).expect("an image");
    for (at, status, name) in [
        (6, 422, "signature only"),
        (10, 422, "mid-screen descriptor"),
        (descriptor, 422, "all headers, no image"),
        (descriptor + 10 + 16, 422, "16 bytes into the image data"),
        (gif.len() / 2, 422, "50%"),
    ] {
        cases.push(case(
            format!("GIF cut at {name}"),
            gif[..at].to_vec(),
            Refused(status),
        ));
    }
    // Every pixel is there, only the trailer (0x3B) is missing: served, as browsers show it.
    cases.push(case(
        "GIF cut 1 byte short (its trailer)",
        gif[..gif.len() - 1].to_vec(),
        Served(&[]),
    ));
}

/// Seeded, reproducible byte flips in headers and in data.
fn flips(cases: &mut Vec<Case>) {
    let inputs: [(&str, Vec<u8>); 6] = [
        ("JPEG baseline", jpeg(160, 120, false)),
        ("JPEG progressive", jpeg(160, 120, true)),
        ("PNG", png_rgb(160, 120)),
        ("WebP lossy", webp_lossy(160, 120)),
        ("WebP lossless", webp_lossless(160, 120)),
        ("GIF", gif_frames(160, 120, 1)),
    ];
    for (seed, (kind, bytes)) in (1u64..).zip(&inputs) {
        let header = header_range(kind, bytes);
        let data = header.end..bytes.len();
        for (n, (range, count, place)) in [
            (header.clone(), 1, "header"),
            (header.clone(), 4, "header"),
            (data.clone(), 1, "data"),
            (data.clone(), 16, "data"),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = seed * 100 + n as u64;
            let expect = flip_outcome(seed);
            cases.push(case(
                format!("{kind}: {count} byte(s) flipped in the {place}, seed {seed}"),
                flipped(bytes, range, count, seed),
                expect,
            ));
        }
    }
}

/// The outcome of each seeded flip, observed once and pinned: the bytes are the same on every run, so is
/// the outcome. A flip that leaves a decodable image (a table value, a pixel, a colour: neither JPEG's
/// entropy coding, nor GIF's LZW, nor WebP's bitstreams carry a checksum) is served; one in a magic number
/// leaves no known format (415); one in a size can make the image too large (413). PNG's CRCs catch all.
fn flip_outcome(seed: u64) -> Expect {
    match seed {
        100 | 502 | 503 | 600 | 602 => Served(&[]),
        200 => Refused(413),
        401 | 501 | 601 => Refused(415),
        _ => Refused(422),
    }
}

fn garbage_and_non_images(cases: &mut Vec<Case>) {
    let mut rng = Rng(0x5EED);
    cases.push(case("zero bytes", Vec::new(), Refused(415)));
    cases.push(case("random bytes", rng.bytes(4096), Refused(415)));
    // A valid header, then garbage.
    let j = jpeg(160, 120, false);
    let sos = segment(&j, 0xDA).expect("a scan");
    cases.push(case(
        "JPEG headers then garbage",
        [&j[..sos.end], &rng.bytes(4096)].concat(),
        Refused(422),
    ));
    let png = png_rgb(160, 120);
    let idat = png_chunk_at(&png, b"IDAT").expect("IDAT");
    cases.push(case(
        "PNG headers then garbage",
        [&png[..idat.start], &rng.bytes(4096)].concat(),
        Refused(422),
    ));
    cases.push(case(
        "PNG IDAT of garbage with a valid CRC",
        [
            &png[..idat.start],
            &png_chunk(b"IDAT", &rng.bytes(4096)),
            &png_chunk(b"IEND", &[]),
        ]
        .concat(),
        Refused(422),
    ));
    let w = webp_lossy(160, 120);
    cases.push(case(
        "WebP frame header then garbage",
        [&w[..30], &rng.bytes(4096)].concat(),
        Refused(422),
    ));
    let gif = gif_frames(160, 120, 1);
    let descriptor = gif_image_descriptor(&gif).expect("an image");
    cases.push(case(
        "GIF headers then garbage",
        [&gif[..descriptor + 10], &rng.bytes(4096)].concat(),
        Refused(422),
    ));
    // Documents and scripts under an image name: never served as what they are.
    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    cases.push(case("HTML", html.to_vec(), Refused(415)));
    cases.push(case(
        "SVG with a script (drawn, as PNG: no script survives)",
        br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script><rect width="10" height="10"/></svg>"#.to_vec(),
        Served(&[b"alert", b"<script", b"onload"]),
    ));
    cases.push(case(
        "SVG behind an XML declaration and a BOM (drawn, as PNG)",
        b"\xEF\xBB\xBF<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        Served(&[b"alert", b"<script"]),
    ));
    cases.push(case(
        "JavaScript",
        b"fetch('/steal?c=' + document.cookie);".to_vec(),
        Refused(415),
    ));
    cases.push(case(
        "plain text",
        b"just some text, no image here\n".to_vec(),
        Refused(415),
    ));
    cases.push(case(
        "PDF",
        b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\n%%EOF".to_vec(),
        Refused(415),
    ));
    cases.push(case(
        "\"BM\" then noise (no BMP header)",
        [b"BM".as_slice(), &rng.bytes(64)].concat(),
        Refused(415),
    ));
    cases.push(case(
        "a TIFF signature then noise",
        [b"II*\0".as_slice(), &rng.bytes(64)].concat(),
        Refused(422),
    ));
    cases.push(case(
        "HEIC (ISO-BMFF, not AVIF)",
        [&b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..], &rng.bytes(64)].concat(),
        Refused(415),
    ));
    // Polyglots.
    cases.push(case(
        "GIF/HTML polyglot (GIF89a/*...*/ with a script)",
        b"GIF89a/*=1;*/=1;<html><script>alert(1)</script></html>".to_vec(),
        Refused(413),
    ));
    cases.push(case(
        "GIF/HTML polyglot with a small screen",
        b"GIF89a\x10\x00\x10\x00\x00\x00\x00<html><script>alert(1)</script></html>".to_vec(),
        Refused(422),
    ));
    cases.push(case(
        "PNG signature then HTML",
        [&b"\x89PNG\r\n\x1a\n"[..], &html[..]].concat(),
        Refused(422),
    ));
    cases.push(case(
        "JPEG SOI then HTML",
        [&b"\xFF\xD8\xFF"[..], &html[..]].concat(),
        Refused(422),
    ));
    // Valid images with a payload: served re-encoded, without it.
    cases.push(case(
        "JPEG with a ZIP appended",
        [jpeg(160, 120, false), zip_with_html()].concat(),
        Served(&[b"PK\x03\x04", b"<script"]),
    ));
    cases.push(case(
        "GIF with an HTML comment extension",
        gif_with_comment(b"<html><script>alert(1)</script></html>"),
        Served(&[b"<script"]),
    ));
    cases.push(case(
        "PNG with HTML in a tEXt chunk",
        png_with_chunks(
            &png_rgb(32, 24),
            &[png_chunk(
                b"tEXt",
                b"Comment\0<html><script>alert(1)</script></html>",
            )],
        ),
        Served(&[b"<script"]),
    ));
}

fn metadata(cases: &mut Vec<Case>) {
    let j = jpeg(64, 48, false);
    // EXIF: a TIFF header whose first IFD lies past the end; an IFD claiming 65535 entries; a loop of
    // IFDs; an orientation out of range; a segment claiming more bytes than the file has.
    let bogus_offset = b"Exif\0\0MM\0\x2a\xFF\xFF\xFF\xF0".to_vec();
    cases.push(case(
        "EXIF with its IFD offset past the end",
        with_segment(&j, 0xE1, &bogus_offset),
        Served(&[b"Exif"]),
    ));
    let mut huge_count = b"Exif\0\0MM\0\x2a\0\0\0\x08\xFF\xFF".to_vec();
    huge_count.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    cases.push(case(
        "EXIF IFD claiming 65535 entries",
        with_segment(&j, 0xE1, &huge_count),
        Served(&[b"Exif"]),
    ));
    // IFD0 at 8: one entry, the Exif IFD pointer (0x8769) back to IFD0; next IFD also IFD0.
    let mut looped = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    looped.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 8]);
    cases.push(case(
        "EXIF IFDs pointing at themselves",
        with_segment(&j, 0xE1, &looped),
        Served(&[b"Exif"]),
    ));
    let mut orientation = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    orientation.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]);
    cases.push(case(
        "EXIF orientation 65535",
        with_segment(&j, 0xE1, &orientation),
        Served(&[b"Exif"]),
    ));
    let mut overlong = j.clone();
    overlong.splice(2..2, [0xFF, 0xE1, 0xFF, 0xFF, b'E', b'x', b'i', b'f', 0, 0]);
    cases.push(case("APP1 longer than the file", overlong, Refused(422)));
    // ICC: an APP2 chunk numbered 1 of 255, repeated 3000 times; an XMP packet of 100 segments.
    let mut chunk = b"ICC_PROFILE\0\x01\xFF".to_vec();
    chunk.extend_from_slice(&[0x41; 100]);
    cases.push(case(
        "3000 APP2 ICC chunks each claiming to be 1 of 255",
        with_segments(&j, 0xE2, &chunk, 3000),
        Served(&[b"ICC_PROFILE"]),
    ));
    let mut icc_zero = b"ICC_PROFILE\0\x00\x00".to_vec();
    icc_zero.extend_from_slice(&[0xFF; 64]);
    cases.push(case(
        "APP2 ICC chunk numbered 0 of 0",
        with_segment(&j, 0xE2, &icc_zero),
        Served(&[b"ICC_PROFILE"]),
    ));
    let mut packet = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>".to_vec();
    packet.resize(65000, b' ');
    cases.push(case(
        "100 XMP segments of 65 kB",
        with_segments(&j, 0xE1, &packet, 100),
        Served(&[b"xmpmeta"]),
    ));
    // PNG: an iCCP chunk inflating to 64 MiB, a zTXt bomb, an eXIf chunk of garbage, 2000 tEXt chunks.
    let png = png_rgb(32, 24);
    cases.push(case(
        "PNG iCCP inflating to 64 MiB",
        png_with_chunks(&png, &[iccp_bomb(64 << 20)]),
        Served(&[]),
    ));
    cases.push(case(
        "PNG zTXt inflating to 64 MiB",
        png_with_chunks(
            &png,
            &[png_chunk(
                b"zTXt",
                &[&b"Comment\0\0"[..], &zlib_zeros(64 << 20)].concat(),
            )],
        ),
        Served(&[]),
    ));
    cases.push(case(
        "PNG eXIf of garbage",
        png_with_chunks(&png, &[png_chunk(b"eXIf", &Rng(9).bytes(300))]),
        Served(&[]),
    ));
    let texts: Vec<Vec<u8>> = (0..2000)
        .map(|i| png_chunk(b"tEXt", format!("k{i}\0value {i}").as_bytes()))
        .collect();
    cases.push(case(
        "PNG with 2000 tEXt chunks",
        png_with_chunks(&png, &texts),
        Served(&[b"value 1999"]),
    ));
    cases.push(case(
        "PNG with two iCCP chunks, the second after IDAT",
        {
            let mut p = png_with_chunks(&png, &[iccp_bomb(1024)]);
            let iend = p.len() - 12;
            p.splice(iend..iend, iccp_bomb(2048));
            p
        },
        Served(&[]),
    ));
    // WebP: a VP8X claiming ICC and EXIF, with garbage in both.
    cases.push(case(
        "WebP VP8X with garbage ICCP and EXIF chunks",
        webp_with_metadata(
            &webp_lossy(32, 24),
            &Rng(11).bytes(200),
            &Rng(12).bytes(200),
        ),
        Served(&[]),
    ));
}

fn bombs(cases: &mut Vec<Case>) {
    // A scan bomb: each scan of a progressive JPEG costs a pass over the whole image, and libjpeg sets no
    // limit on their number. Its last scan repeated: 110 scans are refused from the container, before
    // decoding; 90 are under the cap, so they are decoded, and libjpeg's warning for the repeated
    // refinement (treated as an error here) makes it a 422.
    let progressive = jpeg(256, 256, true);
    cases.push(case(
        "progressive JPEG repeating its last scan to 110 scans",
        repeated_last_scan(&progressive, 110),
        Refused(413),
    ));
    cases.push(case(
        "progressive JPEG repeating its last scan to 90 scans",
        repeated_last_scan(&progressive, 90),
        Refused(422),
    ));
    // PNG declaring 100000x100000 in a 100-byte file.
    cases.push(case(
        "PNG declaring 100000x100000",
        png_raw(100_000, 100_000, 8, 2, &zlib_zeros(1024)),
        Refused(413),
    ));
    cases.push(case(
        "PNG declaring 2^31-1 x 1",
        png_raw(0x7FFF_FFFF, 1, 8, 0, &zlib_zeros(16)),
        Refused(413),
    ));
    cases.push(case(
        "PNG declaring 0x0",
        png_raw(0, 0, 8, 0, &zlib_zeros(16)),
        Refused(422),
    ));
    // 64x64 grey declares 64*65 bytes of scanlines; the IDAT inflates to 64 MiB.
    cases.push(case(
        "PNG IDAT inflating to 64 MiB, far more than declared",
        png_raw(64, 64, 8, 0, &zlib_zeros(64 << 20)),
        Served(&[]),
    ));
    cases.push(case(
        "PNG IDAT inflating to less than declared",
        png_raw(64, 64, 8, 0, &zlib_zeros(64 * 30)),
        Refused(422),
    ));
    cases.push(case(
        "PNG at the pixel limit whose IDAT is a 1 kB stub",
        png_raw(2000, 2000, 8, 6, &zlib_zeros(1000)),
        Refused(422),
    ));
    // GIF: a huge logical screen; a 1x1 screen with a 6000x6000 frame of LZW run data (36 MB of pixels in
    // 30 kB); thousands of frames.
    cases.push(case(
        "GIF logical screen 65535x65535",
        gif_manual((65535, 65535), (1, 1), &lzw_run(1)),
        Refused(413),
    ));
    cases.push(case(
        "GIF 1x1 screen holding a 6000x6000 frame",
        gif_manual((1, 1), (6000, 6000), &lzw_run(36_000_000)),
        Refused(422),
    ));
    cases.push(case(
        "GIF with 1000 frames (the frame cap)",
        gif_many_frames(1000),
        Served(&[]),
    ));
    cases.push(case(
        "GIF with 3000 frames",
        gif_many_frames(3000),
        Refused(413),
    ));
    // WebP: a VP8X canvas of 16384x16384 around a small frame; frame headers claiming the maximum.
    let lossy = webp_lossy(64, 48);
    cases.push(case(
        "WebP VP8X canvas 16384x16384",
        webp_with_canvas(&lossy, 16384, 16384),
        Refused(413),
    ));
    cases.push(case(
        "WebP VP8X canvas disagreeing with its frame",
        webp_with_canvas(&lossy, 1000, 1000),
        Refused(422),
    ));
    let mut vp8 = lossy.clone();
    vp8[26..30].copy_from_slice(&[0xFF, 0x3F, 0xFF, 0x3F]);
    cases.push(case(
        "WebP VP8 frame claiming 16383x16383",
        vp8,
        Refused(413),
    ));
    let mut vp8_small = lossy.clone();
    vp8_small[26..30].copy_from_slice(&[0xD0, 0x07, 0xD0, 0x07]);
    cases.push(case(
        "WebP VP8 frame claiming 2000x2000 with data for 64x48",
        vp8_small,
        Refused(422),
    ));
    let mut vp8l = webp_lossless(64, 48);
    vp8l[21..25].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x0F]);
    cases.push(case("WebP VP8L claiming 16384x16384", vp8l, Refused(413)));
    let mut riff = lossy.clone();
    riff[4..8].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    cases.push(case("WebP RIFF size 4 GiB", riff, Refused(422)));
    // JPEG: SOF claiming 65500x65500; a second, small SOF hidden where a lax header reader would find it
    // first.
    cases.push(case(
        "JPEG SOF claiming 65500x65500",
        with_sof(&jpeg(64, 48, false), |sof| {
            sof[5..9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
        }),
        Refused(413),
    ));
    cases.push(case(
        "JPEG SOF claiming 0 lines",
        with_sof(&jpeg(64, 48, false), |sof| {
            sof[5..7].copy_from_slice(&[0, 0]);
        }),
        Refused(422),
    ));
    cases.push(case(
        "JPEG of 2400x1800 disguised as 16x16 behind a fill byte",
        disguised_jpeg(&jpeg_grey(2400, 1800)),
        Refused(413),
    ));
    // Extreme shapes within the limit: formats with a dimension cap refuse what they cannot hold.
    cases.push(case_at(
        "PNG 1x70000 as JPEG (above JPEG's 65535 lines)",
        "f/jpeg",
        png_raw(1, 70_000, 8, 0, &zlib_zeros(70_000 * 2)),
        Refused(422),
    ));
    cases.push(case_at(
        "PNG 20000x1 as WebP (above WebP's 16383 columns)",
        "f/webp",
        png_raw(20_000, 1, 8, 0, &zlib_zeros(20_001)),
        Refused(422),
    ));
}

/// JPEG kinds: CMYK and YCCK are served (converted to sRGB, see `pipeline::cmyk`, whose tests check their
/// colours); what libjpeg-turbo (as built here) does not decode is refused.
fn jpeg_kinds(cases: &mut Vec<Case>) {
    cases.push(case(
        "CMYK JPEG (Adobe APP14)",
        jpeg_cmyk(64, 48, false, false),
        Served(&[]),
    ));
    cases.push(case(
        "YCCK JPEG (Adobe APP14)",
        jpeg_cmyk(64, 48, true, false),
        Served(&[]),
    ));
    cases.push(case_at(
        "progressive CMYK JPEG at a DC-only thumbnail size",
        "w/8",
        jpeg_cmyk(64, 48, false, true),
        Served(&[]),
    ));
    let j = jpeg(64, 48, false);
    let p = jpeg(64, 48, true);
    cases.push(case(
        "4 components without an Adobe marker",
        strip_segment(&jpeg_cmyk(64, 48, false, false), 0xEE),
        Served(&[]),
    ));
    cases.push(case(
        "12-bit precision",
        with_sof(&j, |sof| sof[4] = 12),
        Refused(415),
    ));
    cases.push(case(
        "16-bit precision",
        with_sof(&j, |sof| sof[4] = 16),
        Refused(415),
    ));
    cases.push(case(
        "12-bit progressive",
        with_sof(&p, |sof| sof[4] = 12),
        Refused(415),
    ));
    for (marker, kind) in [
        (0xC3, "lossless (SOF3)"),
        (0xC5, "hierarchical (SOF5)"),
        (0xC9, "arithmetic-coded (SOF9)"),
        (0xCA, "progressive arithmetic-coded (SOF10)"),
        (0xCB, "lossless arithmetic-coded (SOF11)"),
    ] {
        cases.push(case(
            format!("{kind} JPEG"),
            with_sof(&j, |sof| sof[1] = marker),
            Refused(415),
        ));
    }
    cases.push(case(
        "SOF with 0 components",
        with_sof(&j, |sof| sof[9] = 0),
        Refused(422),
    ));
    cases.push(case(
        "SOF with 2 components",
        with_sof(&j, |sof| sof[9] = 2),
        Refused(422),
    ));
    cases.push(case(
        "SOF with a sampling factor of 0",
        with_sof(&j, |sof| sof[11] = 0),
        Refused(422),
    ));
    cases.push(case(
        "scan header naming a component the frame lacks",
        {
            let mut b = j.clone();
            let sos = segment(&b, 0xDA).expect("a scan");
            b[sos.start + 5] = 0x77;
            b
        },
        Refused(422),
    ));
    cases.push(case(
        "DQT with an out-of-range table index",
        {
            let mut b = j.clone();
            let dqt = segment(&b, 0xDB).expect("a table");
            b[dqt.start + 4] = 0x07;
            b
        },
        Refused(422),
    ));
    cases.push(case(
        "DHT with more codes than a table holds",
        {
            let mut b = j.clone();
            let dht = segment(&b, 0xC4).expect("a table");
            b[dht.start + 5..dht.start + 21].fill(0xFF);
            b
        },
        Refused(422),
    ));
    cases.push(case(
        "two SOI markers",
        [&j[..2], &j[..]].concat(),
        Refused(422),
    ));
}
