//! Memory under attack, against the real binary: the admission budget (`limits.memory_budget_bytes`)
//! bounds what in-flight image work holds, so many concurrent requests for large originals wait their
//! turn or get a 503, never an OOM, and the waiting does not waste the machine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use crate::common::*;

both_stores!(
    sixty_four_clients_on_large_originals_stay_within_the_budget,
    forty_eight_clients_on_incompressible_originals_stay_within_the_budget_and_keep_the_cores_busy,
    six_requests_on_two_cores_are_all_served_also_through_a_sigterm,
);

fn peak_rss_kib(child: &std::process::Child) -> u64 {
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
    let _alone = crate::alone().await;
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

/// Four 9000x7000 photographs of noise at quality 85 (about 48 MB each: incompressible, as film grain or
/// foliage are), made once per test process.
fn noise_originals() -> &'static [Bytes] {
    static MADE: std::sync::OnceLock<Vec<Bytes>> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let made: Vec<_> = (0..4u32)
            .map(|seed| {
                std::thread::spawn(move || Bytes::from(noise_jpeg(9000, 7000, seed + 1, 85)))
            })
            .collect();
        made.into_iter()
            .map(|t| t.join().expect("noise JPEG"))
            .collect()
    })
}

async fn put_noise_originals(store: &TestStore) -> Vec<String> {
    let originals = tokio::task::spawn_blocking(noise_originals).await.unwrap();
    let mut keys = Vec::new();
    for (i, bytes) in originals.iter().enumerate() {
        keys.push(
            store
                .put_original(&format!("big{i}.jpg"), bytes.clone())
                .await,
        );
    }
    keys
}

/// The default server's budgets: what its peak RSS may reach beside the documented overhead.
const BUDGET_MIB: u64 = 512;
const CACHES_MIB: u64 = 256 + 96;
/// The process, its runtime, code and connection buffers, allocator slack: README's figure.
const OVERHEAD_MIB: u64 = 128;
const DEADLINE: Duration = Duration::from_secs(15);

/// The attack of issue 15, against the real binary in its default configuration: 48 clients at once,
/// each asking for a different large variant of four incompressible originals. The peak RSS stays within
/// the budget, the caches and the overhead; every answer is a 200 or a 503 within the deadline; and the
/// shedding does not waste the machine: at least 80 % as many 200s as the same server completes with the
/// requests sent one after another in the same time.
async fn forty_eight_clients_on_incompressible_originals_stay_within_the_budget_and_keep_the_cores_busy(
    backend: Backend,
) {
    let _alone = crate::alone().await;
    let store = TestStore::new(backend).await;
    let keys = put_noise_originals(&store).await;
    let sizer = Sizer::start(&store, &[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..48).map(|i| {
        let (client, url) = (
            client.clone(),
            sizer.url(&format!("/w/{}/{}", 3600 + 10 * i, keys[i % 4])),
        );
        async move {
            let asked = Instant::now();
            let status = client.get(&url).send().await.map(|r| r.status());
            (status, asked.elapsed())
        }
    }))
    .await;
    let together = started.elapsed();
    let peak = sizer.peak_rss_kib() / 1024;
    let mut served = 0;
    for (status, took) in &answers {
        let status = status.as_ref().expect("every request is answered");
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        assert!(
            *took <= DEADLINE + Duration::from_millis(500),
            "answered after {took:?}"
        );
        served += usize::from(*status == StatusCode::OK);
    }
    let refused_early = sizer
        .metric("sizer_memory_budget_refusals_total{reason=\"would_miss_deadline\"}")
        .await;
    // The same server, the same kind of requests (fresh widths: nothing cached), one after another for
    // as long as the attack took.
    let mut alone = 0;
    let sequential = Instant::now();
    let mut i = 0;
    while sequential.elapsed() < together {
        let url = sizer.url(&format!("/w/{}/{}", 3605 + 10 * i, keys[i % 4]));
        let status = client.get(&url).send().await.map(|r| r.status());
        if sequential.elapsed() <= together && matches!(status, Ok(StatusCode::OK)) {
            alone += 1;
        }
        i += 1;
    }
    let (status, _) = sizer.exit_now().await;
    eprintln!(
        "incompressible attack ({backend:?}): {served}/48 served in {together:?} \
         ({refused_early} refused at once), {alone} served one at a time in as long; peak RSS {peak} MiB"
    );
    assert!(
        status.is_none(),
        "the process was alive to the end: {status:?}"
    );
    assert!(
        peak <= BUDGET_MIB + CACHES_MIB + OVERHEAD_MIB,
        "peak RSS {peak} MiB above {BUDGET_MIB} MiB budget + {CACHES_MIB} MiB caches + {OVERHEAD_MIB} MiB"
    );
    assert!(
        served * 10 >= alone * 8,
        "{served} served under attack, {alone} one at a time"
    );
}

/// Six requests on two cores are no overload: all six are served (they wait their turn for memory
/// instead of being refused after a fixed wait), and with a SIGTERM 0.3 s in, all six are still served,
/// their write-backs land and the process exits 0.
async fn six_requests_on_two_cores_are_all_served_also_through_a_sigterm(backend: Backend) {
    let _alone = crate::alone().await;
    let store = TestStore::new(backend).await;
    let keys = put_noise_originals(&store).await;
    for sigterm in [false, true] {
        // The default settings, but for the deadline: the suite's debug build is about three times
        // slower than a release build, where the default 15 s holds six such jobs with room to spare.
        // (A fixed wait of 2 s, as the budget had, refused four of the six either way.) The drain's
        // grace is stretched alike: six such jobs of the debug build on two cores can outlast the
        // default 30 s (they did on a slower machine: the last connections were closed unanswered),
        // and what is tested is that a drain serves what it admitted, within its grace.
        let sizer = Sizer::start(
            &store,
            &[
                ("SIZER_SERVER__REQUEST_TIMEOUT_MS", "60000"),
                ("SIZER_SERVER__SHUTDOWN_GRACE_MS", "60000"),
            ],
        )
        .await;
        let client = reqwest::Client::new();
        let widths: Vec<u32> = (0..6)
            .map(|i| 3000 + i + if sigterm { 10 } else { 0 })
            .collect();
        let requests = futures_util::future::join_all(widths.iter().enumerate().map(|(i, w)| {
            let url = sizer.url(&format!("/w/{w}/{}", keys[i % 4]));
            let client = client.clone();
            async move { client.get(&url).send().await.map(|r| r.status()) }
        }));
        let statuses = if sigterm {
            let (statuses, ()) = futures_util::join!(requests, async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                // A connection whose request was not read yet is closed at SIGTERM like an idle one
                // (README, "Drain and slow clients"): the six are inside by now on an idle machine.
                sizer.wait_for_requests(6).await;
                sizer.terminate();
            });
            statuses
        } else {
            requests.await
        };
        let statuses: Vec<_> = statuses.into_iter().map(|s| s.expect("answered")).collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "sigterm {sigterm}: {statuses:?}"
        );
        if sigterm {
            let (status, _) = sizer.exit(Duration::from_secs(30)).await;
            assert!(status.is_some_and(|s| s.success()), "exit {status:?}");
            for (i, w) in widths.iter().enumerate() {
                let key = format!("copy/{}/w{w}_q80", keys[i % 4]);
                assert!(store.read(&key).await.is_some(), "{key} written back");
            }
        } else {
            sizer.exit_now().await;
        }
    }
}
