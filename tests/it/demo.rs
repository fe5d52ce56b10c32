//! The demo page: in a real headless browser (Debian's chromium) against the real binary on the embedded
//! default, every image loads, `f/auto` images arrive as AVIF or WebP, each is laid out at its intended
//! size, and the page's script runs under the page's own Content-Security-Policy; with any other store the
//! page does not exist.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "no chromium on PATH: the demo page test needs a real browser. `scripts/test` installs Debian's \
         chromium; or `apt-get install chromium`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_loads_every_image_in_a_real_browser() {
    let browser = chromium();
    let port = free_port();
    let _server = Running(
        Command::new(env!("CARGO_BIN_EXE_sizer"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            // The page asks for 16 cold images at once, several of them AVIF, while the rest of the
            // suite loads the same two cores: give each request time, and room in the queue.
            .env("SIZER_SERVER__REQUEST_TIMEOUT_MS", "180000")
            .env("SIZER_POOL__QUEUE", "64")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sizer starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut page = None;
    for _ in 0..200 {
        if let Ok(res) = client.get(format!("{base}/")).send().await {
            page = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = page.expect("the service answered");
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    // Its own policy: the page's script runs by its hash (the report below proves the hash right).
    let policy = header(&page, "content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("script-src 'sha256-") && !policy.contains("unsafe"),
        "{policy}"
    );

    let profile = tempfile::tempdir().unwrap();
    let url = format!("{base}/");
    let dom = tokio::task::spawn_blocking(move || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,1000",
                &format!("--user-data-dir={}", profile.path().display()),
                "--virtual-time-budget=60000",
                "--dump-dom",
                &url,
            ])
            .stderr(Stdio::null())
            .output()
            .expect("chromium runs")
    })
    .await
    .unwrap();
    assert!(dom.status.success(), "chromium failed: {}", dom.status);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let report = dom
        .split("<pre id=\"report\"")
        .nth(1)
        .and_then(|rest| rest.split_once('>'))
        .filter(|(attrs, _)| attrs.contains("data-done=\"true\""))
        .and_then(|(_, rest)| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the page's report never completed:\n{dom}"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(report).expect("report is JSON");
    assert_eq!(rows.len(), 16, "4 samples x 4 images: {report}");
    for row in &rows {
        let url = row["url"].as_str().unwrap();
        assert_eq!(row["loaded"], true, "{url} did not load: {row}");
        assert_eq!(
            row["cssWidth"], row["expectedCssWidth"],
            "{url} laid out at the wrong width: {row}"
        );
        let natural = row["natural"][0].as_u64().unwrap();
        let format = row["format"].as_str().unwrap_or("?");
        if url.contains("/f/auto/") {
            assert!(
                format == "avif" || format == "webp",
                "{url}: the browser accepts AVIF and WebP but got {format}"
            );
        }
        if url.contains("/dpr/2/") {
            assert_eq!(natural, 300, "{url}: a 2x image for 150 CSS px: {row}");
        }
        if url.contains("/fit/cover/") {
            assert_eq!(row["natural"], serde_json::json!([200, 200]), "{url}");
        }
        assert!(row["bytes"].as_u64().unwrap_or(0) > 0, "{url}: {row}");
    }
}

#[tokio::test]
async fn the_demo_page_can_be_turned_off() {
    let port = free_port();
    let _server = Running(
        Command::new(env!("CARGO_BIN_EXE_sizer"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("SIZER_SERVER__DEMO_PAGE", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sizer starts"),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let mut status = None;
    for _ in 0..200 {
        if let Ok(res) = client.get(&url).send().await {
            status = Some(res.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(404), "GET / with server.demo_page = false");
}

#[tokio::test]
async fn the_demo_page_is_off_for_any_other_store() {
    let store = TestStore::new(Backend::Fs).await;
    let app = spawn_app(&store, test_config()).await;
    let (status, _) = error_json(app.get("/").await).await;
    assert_eq!(status, 404);
    app.stop().await;
}
