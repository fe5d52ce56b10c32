//! SIGTERM under load, against the real binary: the listener closes at once (new connections are
//! refused), every request in flight is answered whole, the write-backs of what they made land in the store,
//! and the process exits 0 within `server.shutdown_grace_ms`; when requests outlast the grace, the exit
//! still comes at the grace.

use std::time::{Duration, Instant};

use crate::common::*;

/// The margin over the grace allowed for the exit itself (runtime shut-down, process teardown).
const EXIT_MARGIN: Duration = Duration::from_millis(1_500);

/// Connects until the listener refuses (after SIGTERM); the instant it did, or `None` within `within`.
/// A connection the listener still took before the signal was handled is dropped and retried.
async fn refused_within(port: u16, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            // Refused; or reset: the handshake completed into the listener's queue just as the listener
            // closed, and the kernel reset it (connect reports that when it looks after the close).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return Some(Instant::now());
            }
            Err(e) => panic!("connecting after SIGTERM: {e}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    None
}

/// Large originals, so that a handful of cold requests is still being worked on when SIGTERM comes.
async fn large_originals(store: &TestStore, n: u32, (width, height): (u16, u16)) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..n {
        let bytes = tokio::task::spawn_blocking(move || large_jpeg(width, height, i + 1))
            .await
            .unwrap();
        keys.push(
            store
                .put_original(&format!("large-{i}.jpg"), bytes.into())
                .await,
        );
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_request_in_flight_lands_the_write_backs_and_exits_in_time()
 {
    // Ample: the work takes a few seconds (the test build, on two shared cores); the grace is not what this
    // test is about, but that everything finishes inside it.
    const GRACE_MS: u64 = 60_000;
    let store = TestStore::new(Backend::Fs).await;
    let mut requests: Vec<(String, u32)> = Vec::new();
    for key in large_originals(&store, 2, (3000, 2000)).await {
        // Widths above half the original's: decoded at full size, the slow path.
        requests.extend([(key.clone(), 1600), (key, 1900)]);
    }
    let small = store.put_original("small.jpg", sample("path.jpg")).await;
    requests.extend([(small.clone(), 300), (small, 500)]);
    let grace = GRACE_MS.to_string();
    let sizer = Sizer::start(
        &store,
        &[
            ("SIZER_SERVER__SHUTDOWN_GRACE_MS", grace.as_str()),
            ("SIZER_SERVER__REQUEST_TIMEOUT_MS", "60000"),
            ("SIZER_POOL__WORKERS", "2"),
            ("SIZER_POOL__QUEUE", "64"),
            ("SIZER_LIMITS__MEMORY_WAIT_MS", "60000"),
        ],
    )
    .await;

    // Every request on a connection of its own, as independent clients would send them.
    let in_flight: Vec<_> = requests
        .iter()
        .map(|(key, width)| {
            let url = sizer.url(&format!("/w/{width}/{key}"));
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                let res = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{url} answered: {e}"));
                let status = res.status();
                let body = res
                    .bytes()
                    .await
                    .unwrap_or_else(|e| panic!("{url} sent a whole body: {e}"));
                (status, body, Instant::now())
            })
        })
        .collect();
    // Every request inside the service (its head read: a connection whose request is not yet read is
    // idle, and the drain closes idle connections), none of the large ones near done.
    sizer.wait_for_requests(requests.len() as u64).await;
    let signalled = sizer.terminate();
    let port = sizer.port;

    let refused = refused_within(port, Duration::from_secs(5))
        .await
        .expect("new connections are refused after SIGTERM");
    let mut answered = Vec::new();
    for task in in_flight {
        answered.push(task.await.unwrap());
    }
    let (status, exited) = sizer
        .exit(Duration::from_millis(GRACE_MS) + EXIT_MARGIN)
        .await;
    let status = status.expect("sizer exits within the grace");
    assert!(status.success(), "exit status {status}");

    let last_answer = answered.iter().map(|(_, _, at)| *at).max().unwrap();
    let after_signal = answered.iter().filter(|(_, _, at)| *at > signalled).count();
    eprintln!(
        "drain: {} requests, {after_signal} answered after SIGTERM; refused new connections after {:?}; \
         last answer after {:?}; exit after {:?} (grace {GRACE_MS} ms)",
        answered.len(),
        refused - signalled,
        last_answer - signalled,
        exited - signalled
    );
    assert!(
        after_signal >= 2,
        "requests were in flight at SIGTERM ({after_signal} answered after it): make the originals larger"
    );
    assert!(
        refused < last_answer,
        "the listener closed at the signal, not after the drain"
    );
    for ((key, width), (status, body, _)) in requests.iter().zip(&answered) {
        assert_eq!(*status, 200, "/w/{width}/{key}");
        assert_eq!(
            decoded_size(body).0,
            *width,
            "a whole image for /w/{width}/{key}"
        );
        let written = store
            .read(&format!("copy/{key}/w{width}_q80"))
            .await
            .unwrap_or_else(|| panic!("the write-back of /w/{width}/{key} landed"));
        assert_eq!(&written, body, "the stored variant is the served one");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_outlast_the_grace_do_not_hold_the_exit() {
    const GRACE_MS: u64 = 1_000;
    let store = TestStore::new(Backend::Fs).await;
    let keys = large_originals(&store, 2, (5000, 3500)).await;
    let grace = GRACE_MS.to_string();
    let sizer = Sizer::start(
        &store,
        &[
            ("SIZER_SERVER__SHUTDOWN_GRACE_MS", grace.as_str()),
            ("SIZER_SERVER__REQUEST_TIMEOUT_MS", "60000"),
            // One worker, a queue of many: more work than the grace can hold.
            ("SIZER_POOL__WORKERS", "1"),
            ("SIZER_POOL__QUEUE", "64"),
            ("SIZER_LIMITS__MEMORY_WAIT_MS", "60000"),
        ],
    )
    .await;
    let in_flight: Vec<_> = (0..8)
        .map(|i| {
            let url = sizer.url(&format!("/w/{}/{}", 2600 + i * 100, keys[i % keys.len()]));
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                client.get(url).send().await.map(|r| r.status())
            })
        })
        .collect();
    sizer.wait_for_requests(8).await;
    let signalled = sizer.terminate();
    let (status, exited) = sizer
        .exit(Duration::from_millis(GRACE_MS) + EXIT_MARGIN)
        .await;
    let status = status.expect("sizer exits within the grace, work or no work");
    assert!(status.success(), "exit status {status}");
    let mut cut = 0;
    for task in in_flight {
        // Answered in time, or cut off when the grace ran out: never left hanging.
        let result = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("no client is left hanging")
            .unwrap();
        cut += usize::from(result.is_err());
    }
    eprintln!(
        "drain past the grace: exit after {:?} (grace {GRACE_MS} ms), {cut} of 8 requests cut off",
        exited - signalled
    );
    assert!(
        cut > 0,
        "the work outlasted the grace: make the originals larger"
    );
}
