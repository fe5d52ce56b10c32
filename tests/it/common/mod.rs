//! Test harness: starts the real service on a random port over a real store (a temporary directory, or
//! the S3 server `scripts/test` starts), and talks to it over HTTP.
//!
//! The store is wrapped in a [`Probe`] that counts calls and can inject faults; the bytes still go
//! through the real store underneath.
//! [`faults::FaultProxy`] injects faults one level lower, on the wire between sizer's S3 client and the
//! real S3 server.
#![allow(dead_code)]
#![allow(unsafe_code)] // FFI: libc's kill, to stop the server under test.

pub mod faults;
pub mod images;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use sizer::Application;
use sizer::config::{Config, StoreConfig, StoreKind};
use sizer::store::{
    FsStore, Listing, ObjectInfo, PutOptions, S3Store, Store, StoreError, StoredObject, Written,
};
use tokio::sync::{Semaphore, oneshot};

/// Which real store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Fs,
    S3,
}

/// Runs one behaviour against both stores: `both_stores!(name);` makes `fs::name` and `s3::name` from
/// `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Fs).await })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::S3).await })*
        }
    };
}

pub fn sample(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/images")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A store of either kind, with a fresh key namespace so tests sharing a bucket never meet.
pub struct TestStore {
    pub backend: Backend,
    pub probe: Arc<Probe>,
    pub namespace: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let namespace = format!(
            "t{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let (inner, dir): (Arc<dyn Store>, _) = match backend {
            Backend::Fs => {
                let dir = tempfile::tempdir().expect("temp dir");
                (
                    Arc::new(FsStore::open(dir.path()).expect("fs store")),
                    Some(dir),
                )
            }
            Backend::S3 => (Arc::new(S3Store::connect(&s3_config()).await), None),
        };
        TestStore {
            backend,
            probe: Arc::new(Probe::new(inner)),
            namespace,
            _dir: dir,
        }
    }

    /// The command-line flags that point the `sizer` binary at this store (`--root DIR` or
    /// `--bucket NAME`; the S3 endpoint and credentials come from the environment).
    pub fn binary_flags(&self) -> Vec<String> {
        match &self._dir {
            Some(dir) => vec!["--root".into(), dir.path().display().to_string()],
            None => vec!["--bucket".into(), s3_config().bucket],
        }
    }

    /// The directory of a directory store.
    pub fn root(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|dir| dir.path())
    }

    /// The key of an original in this test's namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    /// Uploads an original through the real store (not counted).
    pub async fn put_original(&self, name: &str, bytes: Bytes) -> String {
        let key = self.key(name);
        self.probe
            .inner
            .put(&key, bytes, PutOptions::plain("application/octet-stream"))
            .await
            .expect("upload original");
        key
    }

    /// Reads an object back through the real store (not counted); `None` if absent.
    pub async fn read(&self, key: &str) -> Option<Bytes> {
        match self.probe.inner.get(key).await {
            Ok(object) => Some(object.read_all().await.expect("read object")),
            Err(StoreError::NotFound) => None,
            Err(e) => panic!("reading {key}: {e}"),
        }
    }
}

/// The S3 server the test script started (`scripts/s3-server start` prints these variables).
pub fn s3_config() -> StoreConfig {
    let need = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the S3 tests need a running S3 server. Run the suite with `scripts/test`, \
                 which starts one, or export AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY and S3_BUCKET yourself."
            )
        })
    };
    need("AWS_ENDPOINT_URL");
    need("AWS_ACCESS_KEY_ID");
    StoreConfig {
        kind: StoreKind::S3,
        bucket: need("S3_BUCKET"),
        ..StoreConfig::default()
    }
}

/// Counts store calls per key and injects faults, passing everything else to the real store.
pub struct Probe {
    pub inner: Arc<dyn Store>,
    gets: Mutex<HashMap<String, usize>>,
    puts: Mutex<HashMap<String, usize>>,
    pub fail_puts: AtomicBool,
    /// Every call on a key containing this fails, as a store outage for just those keys would.
    pub fail_keys_containing: Mutex<Option<String>>,
    pub get_delay_ms: AtomicU64,
    /// When set, every put waits for a permit first.
    put_gate: Mutex<Option<Arc<Semaphore>>>,
}

impl Probe {
    fn new(inner: Arc<dyn Store>) -> Probe {
        Probe {
            inner,
            gets: Mutex::default(),
            puts: Mutex::default(),
            fail_puts: AtomicBool::new(false),
            fail_keys_containing: Mutex::new(None),
            get_delay_ms: AtomicU64::new(0),
            put_gate: Mutex::new(None),
        }
    }

    pub fn gets(&self, key: &str) -> usize {
        self.gets.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn puts(&self, key: &str) -> usize {
        self.puts.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn injected_failure(&self, key: &str) -> Result<(), StoreError> {
        match &*self.fail_keys_containing.lock().unwrap() {
            Some(part) if key.contains(part.as_str()) => {
                Err(StoreError::Failed(format!("injected failure for {key}")))
            }
            _ => Ok(()),
        }
    }

    pub fn total_puts(&self) -> usize {
        self.puts.lock().unwrap().values().sum()
    }

    /// Holds every put until the returned semaphore gets permits.
    pub fn hold_puts(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.put_gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }
}

#[async_trait]
impl Store for Probe {
    async fn get(&self, key: &str) -> Result<StoredObject, StoreError> {
        *self
            .gets
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
        let delay = self.get_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.injected_failure(key)?;
        self.inner.get(key).await
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.injected_failure(key)?;
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: PutOptions<'_>,
    ) -> Result<Written, StoreError> {
        *self
            .puts
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
        let gate = self.put_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            let _permit = gate.acquire().await.expect("gate open");
        }
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(StoreError::Failed("injected put failure".into()));
        }
        self.injected_failure(key)?;
        self.inner.put(key, body, options).await
    }

    fn list(&self, prefix: &str) -> Listing {
        self.inner.list(prefix)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }

    fn describe(&self) -> String {
        format!("probe({})", self.inner.describe())
    }
}

/// A running service.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.pool.workers = 2;
    config
}

pub async fn spawn_app(store: &TestStore, config: Config) -> TestApp {
    let store: Arc<dyn Store> = Arc::clone(&store.probe) as Arc<dyn Store>;
    spawn_app_on(store, config).await
}

pub async fn spawn_app_on(store: Arc<dyn Store>, config: Config) -> TestApp {
    let config = config.validate().expect("valid test config");
    let app = Application::build_with_store(config, store)
        .await
        .expect("app builds");
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET reaches the service")
    }

    /// A GET with request headers (`If-None-Match`, `Accept`, ...).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("GET reaches the service")
    }

    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.client
            .head(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HEAD reaches the service")
    }

    /// Sends the shutdown signal and waits until the service has stopped (write-backs drained).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("service task")
                .expect("service stopped cleanly");
        }
    }

    /// The `/metrics` page as text.
    pub async fn metrics_text(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn metric(&self, name: &str) -> u64 {
        metric_in(&self.metrics_text().await, name)
    }
}

/// The value of the series `name` (with its labels) in a `/metrics` page.
pub fn metric_in(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
}

pub fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Decodes an image with the independent `image` crate and returns its size.
pub fn decoded_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("the service returned a decodable image");
    (img.width(), img.height())
}

/// Polls until `key` exists in the store (write-backs run in the background).
pub async fn wait_for_object(store: &TestStore, key: &str) -> Bytes {
    for _ in 0..200 {
        if let Some(bytes) = store.read(key).await {
            return bytes;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{key} was never written");
}

/// Error bodies are `{"error": "...", "status": N}`.
pub async fn error_json(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body = res.bytes().await.expect("error body");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("error body is JSON");
    assert_eq!(
        json["status"].as_u64(),
        Some(u64::from(status)),
        "body status matches HTTP status"
    );
    (
        status,
        json["error"].as_str().expect("error message").to_string(),
    )
}

/// Sends `GET {path}` byte for byte over a plain TCP connection (HTTP clients normalise `..` and
/// percent-encoded dots away, so attacks on the path need this), and returns the status and body.
pub async fn raw_get(app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the service");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.as_bytes().to_vec())
        .unwrap_or_default();
    (status, body)
}

/// A large photograph-like JPEG (smooth gradients plus noise, so it compresses like a photo).
/// A photograph of noise: every pixel random, so it compresses as badly as film grain or foliage do (at
/// quality 85 about 0.75 bytes a pixel).
pub fn noise_jpeg(width: u16, height: u16, seed: u32, quality: u8) -> Vec<u8> {
    let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    let mut data = vec![0u8; usize::from(width) * usize::from(height) * 3];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&data, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

pub fn large_jpeg(width: u16, height: u16, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let (w, h) = (usize::from(width), usize::from(height));
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state & 15) as usize;
            data.push(((x * 255 / w + noise) & 255) as u8);
            data.push(((y * 255 / h + noise) & 255) as u8);
            data.push((((x + y) * 127 / (w + h)) + noise) as u8);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&data, width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A port nothing listens on right now, for tests that start the real binary.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("bound address")
        .port()
}

/// The real `sizer` binary, started by a test on a port of its own; killed when dropped (a failed test
/// leaves no server behind).
pub struct Sizer {
    pub child: std::process::Child,
    pub port: u16,
}

impl Drop for Sizer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sizer {
    /// Starts `sizer serve` on `store` with `settings` (`SIZER_*` variables) and waits until it answers.
    pub async fn start(store: &TestStore, settings: &[(&str, &str)]) -> Sizer {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sizer"))
            .arg("serve")
            .args(store.binary_flags())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .envs(settings.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("sizer starts");
        let sizer = Sizer { child, port };
        for _ in 0..200 {
            if reqwest::get(sizer.url("/healthz")).await.is_ok() {
                return sizer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sizer did not answer");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics body");
        metric_in(&text, name)
    }

    /// Waits until `n` variant requests have reached the service: in flight now, or already answered.
    pub async fn wait_for_requests(&self, n: u64) {
        let mut seen = 0;
        for _ in 0..300 {
            // The scrape is in flight itself.
            let in_flight = self.metric("sizer_requests_in_flight").await - 1;
            let answered = self.metric("sizer_served_total{tier=\"computed\"}").await;
            seen = in_flight + answered;
            if seen >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{seen} of {n} requests reached the service");
    }

    /// The process's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status of sizer");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }

    pub fn terminate(&self) -> Instant {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) with a pid this test spawned and has not reaped; no memory is involved.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        Instant::now()
    }

    /// Kills the process; its exit status if it had already exited.
    pub async fn exit_now(mut self) -> (Option<std::process::ExitStatus>, Instant) {
        let status = self.child.try_wait().expect("wait");
        let _ = self.child.kill();
        let _ = self.child.wait();
        (status, Instant::now())
    }

    /// Waits for the exit, at most `within`; kills the process past it.
    pub async fn exit(mut self, within: Duration) -> (Option<std::process::ExitStatus>, Instant) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (Some(status), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, Instant::now())
    }
}
