//! Memory under attack: the admission budget (`limits.memory_budget_bytes`) bounds what in-flight image
//! work holds, so many concurrent requests for large originals queue or get a 503, never an OOM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    work_beyond_the_budget_waits_then_gets_503_and_one_image_above_it_is_413,
    sixty_four_clients_on_large_originals_stay_within_the_budget,
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
    assert_eq!(
        app.metric("sizer_memory_budget_bytes{state=\"in_use\"}")
            .await,
        0,
        "every reservation given back"
    );
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

fn peak_rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 64 clients at once, each asking for a different variant of 40-60 MP originals, against the real binary:
/// its peak RSS stays within the budget plus the documented overhead, and every answer is a 200 or a 503.
async fn sixty_four_clients_on_large_originals_stay_within_the_budget(backend: Backend) {
    const BUDGET_MIB: u64 = 192;
    /// The process, its runtime and code, the memory tier of what it served, allocator slack.
    const OVERHEAD_MIB: u64 = 160;
    let store = TestStore::new(backend).await;
    let mut keys = Vec::new();
    for (i, (w, h)) in [(7300u16, 5500u16), (8000, 6000), (8900, 6700), (7600, 5700)]
        .into_iter()
        .enumerate()
    {
        let bytes = tokio::task::spawn_blocking(move || large_jpeg(w, h, i as u32 + 1))
            .await
            .unwrap();
        keys.push(
            store
                .put_original(&format!("huge-{i}.jpg"), bytes.into())
                .await,
        );
    }
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .arg("serve")
        .args(store.binary_flags())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env(
            "SIZER_LIMITS__MEMORY_BUDGET_BYTES",
            (BUDGET_MIB << 20).to_string(),
        )
        .env("SIZER_LIMITS__MEMORY_WAIT_MS", "1000")
        .env("SIZER_SERVER__REQUEST_TIMEOUT_MS", "120000")
        .env("SIZER_POOL__WORKERS", "2")
        .env("SIZER_POOL__QUEUE", "64")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sizer starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = peak_rss_kib(&child);
    let requests: Vec<String> = (0..64)
        // Up to 2460 px: the largest decode (4/8 of the 8900-px original) and its resize stay within the
        // budget, so each request is a 200 or waits its turn (503), never a 413 for being alone too large.
        .map(|i| format!("{base}/w/{}/{}", 1200 + i * 20, keys[i % keys.len()]))
        .collect();
    let statuses = if ready {
        futures_util::future::join_all(requests.iter().map(|url| client.get(url).send())).await
    } else {
        Vec::new()
    };
    let peak = peak_rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "sizer answered");
    let mut served = 0;
    for status in statuses {
        let status = status.expect("every request is answered").status();
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        served += usize::from(status == StatusCode::OK);
    }
    eprintln!(
        "memory attack ({backend:?}): idle {} MiB, peak {} MiB, budget {BUDGET_MIB} MiB, {served}/64 served",
        idle / 1024,
        peak / 1024
    );
    assert!(
        served >= 2,
        "the budget admits work, it does not starve it: {served}"
    );
    assert!(
        peak / 1024 <= BUDGET_MIB + OVERHEAD_MIB,
        "peak RSS {} MiB above {BUDGET_MIB} MiB budget + {OVERHEAD_MIB} MiB overhead",
        peak / 1024
    );
}
