//! sizer as an AWS Lambda function: the real binary under a real Lambda Runtime API emulator
//! (cargo-lambda's `watch --only-lambda-apis`, which `scripts/test` installs), invoked through the
//! emulator's Invoke API with the events AWS sends (shapes from the AWS docs, in tests/fixtures/events/).
//! The store is a temporary directory with the sample images in it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{Backend, TestStore, decoded_size, free_port, sample, test_config};

/// The README's signing test vector key.
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The emulator: `CARGO_LAMBDA` if set, else `cargo-lambda` on the PATH.
fn emulator_command() -> Command {
    Command::new(std::env::var_os("CARGO_LAMBDA").unwrap_or_else(|| "cargo-lambda".into()))
}

/// A fixture event with its request path set (the fixtures keep AWS's own placeholder paths).
fn http_event(fixture: &str, path: &str) -> Value {
    let mut event = fixture_event(fixture);
    match fixture {
        "function-url.json" => {
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["path"] = json!(path);
        }
        _ => event["path"] = json!(path),
    }
    event
}

fn fixture_event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The real binary running as a Lambda function under the emulator, over its own store directory.
struct Function {
    emulator: Child,
    sizer: Child,
    port: u16,
    store: tempfile::TempDir,
    log: PathBuf,
    _work: tempfile::TempDir,
    client: reqwest::Client,
}

impl Function {
    async fn start(env: &[(&str, &str)]) -> Function {
        let work = tempfile::tempdir().unwrap();
        // `cargo lambda watch` reads a Cargo project's metadata even when it starts no function: give it
        // a stub, so it never touches (or waits on) this repository's build.
        let project = work.path().join("emulator");
        std::fs::create_dir_all(project.join("src")).unwrap();
        std::fs::write(
            project.join("Cargo.toml"),
            "[package]\nname = \"emulator-stub\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(project.join("src/main.rs"), "fn main() {}\n").unwrap();
        let port = free_port();
        let emulator_log = std::fs::File::create(work.path().join("emulator.log")).unwrap();
        let emulator = emulator_command()
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(&project)
            .stdin(Stdio::null())
            .stdout(emulator_log.try_clone().unwrap())
            .stderr(emulator_log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the Lambda Runtime API emulator `cargo-lambda` ({e}): run the suite with \
                     scripts/test, which installs it (pip install cargo-lambda), or set CARGO_LAMBDA to \
                     its path"
                )
            });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the emulator did not listen on {port}: {}",
                std::fs::read_to_string(work.path().join("emulator.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let store = tempfile::tempdir().unwrap();
        let images = store.path().join("images");
        std::fs::create_dir_all(&images).unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/images");
        for name in ["path.jpg", "grey.jpg"] {
            std::fs::copy(samples.join(name), images.join(name)).unwrap();
        }
        let log = work.path().join("sizer.log");
        let sizer_log = std::fs::File::create(&log).unwrap();
        let sizer = Command::new(env!("CARGO_BIN_EXE_sizer"))
            // What Lambda (here cargo-lambda, as `watch` prints) sets in a function's environment.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("SIZER_STORE__KIND", "fs")
            .env("SIZER_STORE__ROOT", store.path())
            .env("SIZER_POOL__WORKERS", "2")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(sizer_log.try_clone().unwrap())
            .stderr(sizer_log)
            .spawn()
            .expect("sizer starts");
        Function {
            emulator,
            sizer,
            port,
            store,
            log,
            _work: work,
            client: reqwest::Client::new(),
        }
    }

    /// Invokes the function synchronously: `Ok(answer)`, or `Err({errorType, errorMessage})` when the
    /// invocation failed.
    async fn invoke(&self, event: &Value) -> Result<Value, Value> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        let res = self
            .client
            .post(&url)
            .body(serde_json::to_vec(event).unwrap())
            .timeout(Duration::from_secs(180))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke: {e}\nsizer's log:\n{}", self.logs()));
        let ok = res.status().is_success();
        let body = res.bytes().await.unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "invocation answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        if ok { Ok(value) } else { Err(value) }
    }

    /// An HTTP event's answer, which must not be a failed invocation.
    async fn http(&self, event: &Value) -> Value {
        self.invoke(event)
            .await
            .unwrap_or_else(|e| panic!("the invocation failed: {e}\nsizer's log:\n{}", self.logs()))
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        for child in [&mut self.sizer, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn status(answer: &Value) -> u64 {
    answer["statusCode"].as_u64().expect("statusCode")
}

/// A base64 answer's bytes.
fn binary_body(answer: &Value) -> Vec<u8> {
    assert_eq!(answer["isBase64Encoded"], true, "{answer:#}");
    base64::engine::general_purpose::STANDARD
        .decode(answer["body"].as_str().expect("body"))
        .expect("base64 body")
}

/// A JSON error answer: its status and message, checked against the body's own status.
fn error_body(answer: &Value) -> (u64, String) {
    assert_eq!(answer["isBase64Encoded"], false, "{answer:#}");
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("JSON");
    assert_eq!(body["status"].as_u64(), Some(status(answer)), "{body}");
    (
        status(answer),
        body["error"].as_str().expect("error").to_string(),
    )
}

#[tokio::test]
async fn a_function_url_event_gets_the_variant_base64_encoded_and_it_is_written_back() {
    // Variants over 1 KiB are neither kept in memory nor buffered from the copy prefix: the second answer
    // is streamed from the store, and must come back whole all the same.
    let function = Function::start(&[("SIZER_CACHE__MAX_ITEM_BYTES", "1024")]).await;
    let event = http_event("function-url.json", "/w/100/images/path.jpg");

    let answer = function.http(&event).await;
    assert_eq!(status(&answer), 200, "{answer:#}");
    assert_eq!(answer["headers"]["content-type"], "image/jpeg");
    assert_eq!(answer["headers"]["sizer-tier"], "computed");
    let jpeg = binary_body(&answer);
    assert_eq!(
        image::guess_format(&jpeg).unwrap(),
        image::ImageFormat::Jpeg
    );
    assert_eq!(decoded_size(&jpeg).0, 100);
    // Written back before the invocation answered: a frozen environment would never finish it later.
    let copy = function.store.path().join("copy/images/path.jpg/w100_q80");
    assert_eq!(std::fs::read(&copy).expect("variant written back"), jpeg);

    let again = function.http(&event).await;
    assert_eq!(status(&again), 200);
    assert_eq!(again["headers"]["sizer-tier"], "copy");
    assert_eq!(binary_body(&again), jpeg);

    // One plain log line per request on stdout (CloudWatch): no terminal colour codes.
    let logs = function.logs();
    assert!(
        logs.contains("path=/w/100/images/path.jpg status=200"),
        "{logs}"
    );
    assert!(!logs.contains('\u{1b}'), "colour codes in the log: {logs}");
}

#[tokio::test]
async fn http_errors_are_the_servers_json_errors_and_oversized_variants_a_413() {
    let function = Function::start(&[]).await;
    // Noise does not compress: a 1400x1400 PNG of it is about 5.9 MB, over what a Lambda answer carries.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise = image::RgbImage::from_fn(1400, 1400, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    noise
        .save(function.store.path().join("images/noise.png"))
        .unwrap();
    let get = |path: &str| http_event("function-url.json", path);

    let (code, message) = error_body(&function.http(&get("/w/abc/images/path.jpg")).await);
    assert_eq!(code, 400);
    assert!(message.contains("'w'"), "{message}");
    let answer = function.http(&get("/w/abc/images/path.jpg")).await;
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(answer["headers"]["cache-control"], "no-store");

    // The raw path reaches the router as sent: `..` is refused, never resolved into another key.
    let (code, message) = error_body(
        &function
            .http(&get("/w/100/images/../images/path.jpg"))
            .await,
    );
    assert_eq!(code, 400);
    assert!(message.contains("'..'"), "{message}");

    assert_eq!(
        error_body(&function.http(&get("/w/100/images/missing.jpg")).await).0,
        404
    );

    let answer = function.http(&get("/w/1400/images/noise.png")).await;
    let (code, message) = error_body(&answer);
    assert_eq!(code, 413, "{answer:#}");
    assert!(message.contains("AWS Lambda"), "{message}");
    assert_eq!(answer["headers"]["cache-control"], "no-store");
    // The same variant smaller fits.
    let answer = function.http(&get("/w/700/images/noise.png")).await;
    assert_eq!(status(&answer), 200);
    assert_eq!(decoded_size(&binary_body(&answer)), (700, 700));
}

#[tokio::test]
async fn rest_api_and_alb_events_get_their_own_response_shapes_and_signed_raw_paths_verify() {
    let keys = format!("[\"{KEY}\"]");
    let function = Function::start(&[("SIZER_SIGNING__KEYS", &keys)]).await;

    // API Gateway REST: the stage ("prod") is not part of the path the grammar reads.
    let answer = function
        .http(&http_event(
            "api-gateway-rest.json",
            "/w/100/images/path.jpg",
        ))
        .await;
    assert_eq!(status(&answer), 200, "{answer:#}");
    assert_eq!(
        answer["multiValueHeaders"]["content-type"],
        json!(["image/jpeg"])
    );
    assert_eq!(decoded_size(&binary_body(&answer)).0, 100);

    let answer = function
        .http(&http_event("alb.json", "/w/50/images/grey.jpg"))
        .await;
    assert_eq!(status(&answer), 200, "{answer:#}");
    assert_eq!(answer["statusDescription"], "200 OK");
    assert_eq!(answer["headers"]["content-type"], "image/jpeg");
    assert_eq!(
        answer["multiValueHeaders"]["content-type"],
        json!(["image/jpeg"])
    );
    assert_eq!(decoded_size(&binary_body(&answer)).0, 50);

    // A signature covers the path exactly as sent, percent-encoding included.
    std::fs::copy(
        function.store.path().join("images/path.jpg"),
        function.store.path().join("images/a b.jpg"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args(["sign", "/w/60/images/a%20b.jpg"])
        .env("SIZER_SIGNING__KEYS", &keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for fixture in ["function-url.json", "alb.json"] {
        let answer = function.http(&http_event(fixture, &signed)).await;
        assert_eq!(status(&answer), 200, "{fixture}: {answer:#}");
        assert_eq!(decoded_size(&binary_body(&answer)).0, 60);
    }
    let tampered = signed.replace("a%20b", "a%20B");
    let answer = function
        .http(&http_event("function-url.json", &tampered))
        .await;
    assert_eq!(error_body(&answer).0, 403);
}

#[tokio::test]
async fn storage_notifications_pregenerate_under_the_emulator() {
    let function =
        Function::start(&[("SIZER_PREGENERATE__VARIANTS", r#"["w/300", "w/600"]"#)]).await;
    let copy = function.store.path().join("copy/images/path.jpg");
    // S3 → Lambda directly: the answer is the summary, and the variants exist.
    let answer = function
        .invoke(&fixture_event("s3-put-images.json"))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", function.logs()));
    assert!(
        answer.get("statusCode").is_none(),
        "never an HTTP response: {answer:#}"
    );
    assert_eq!(answer["variants_written"], 2, "{answer:#}");
    for name in ["w300_q80", "w600_q80"] {
        let bytes = std::fs::read(copy.join(name)).unwrap();
        assert_eq!(
            decoded_size(&bytes).0,
            if name == "w300_q80" { 300 } else { 600 }
        );
    }
    // S3 → SQS → Lambda: the same original again (nothing to do) and a test event; no failures.
    let answer = function
        .invoke(&fixture_event("sqs-s3-notifications.json"))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // The seed's accident: an event for a variant is acknowledged and ignored.
    let mut own = fixture_event("s3-put-images.json");
    own["Records"][0]["s3"]["object"]["key"] = json!("copy/images/path.jpg/w300_q80");
    let answer = function
        .invoke(&own)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        (
            answer["ignored"].as_u64(),
            answer["variants_written"].as_u64()
        ),
        (Some(1), Some(0))
    );
    // A direct invocation whose work fails in a retryable way fails the invocation (Lambda retries it).
    std::fs::remove_dir_all(function.store.path().join("copy")).unwrap();
    std::fs::write(
        function.store.path().join("copy"),
        b"a file where a directory must go",
    )
    .unwrap();
    match function.invoke(&fixture_event("s3-put-images.json")).await {
        Err(error) => assert_eq!(error["errorType"], "Sizer.EventError", "{error:#}"),
        Ok(answer) => panic!("expected a failed invocation, got {answer:#}"),
    }
}

#[tokio::test]
async fn the_request_budget_ends_with_the_invocation() {
    // In process: the emulator gives no real deadline (cargo-lambda sends a constant placeholder).
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("images")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/images/path.jpg"),
        store.path().join("images/path.jpg"),
    )
    .unwrap();
    let mut config = sizer::Config::default();
    config.store.root = store.path().to_path_buf();
    config.pool.workers = 2;
    let state = sizer::startup::build_state(config).await.expect("state");
    let function = sizer::lambda::Function::new(state);
    let event = http_event("function-url.json", "/w/100/images/path.jpg");

    let answer = function
        .handle(event.clone(), Some(Instant::now()))
        .await
        .expect("an HTTP answer");
    let (code, message) = error_body(&answer);
    assert_eq!(code, 504, "{answer:#}");
    assert!(message.contains("after 0 ms"), "{message}");

    let answer = function
        .handle(event, Some(Instant::now() + Duration::from_secs(60)))
        .await
        .expect("an HTTP answer");
    assert_eq!(status(&answer), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_answers_only_once_its_write_backs_are_done() {
    // A frozen execution environment would never finish a write-back left running: the variant would be
    // computed again on every cold request. In process, with the store's writes held.
    let store = TestStore::new(Backend::Fs).await;
    let key = store.put_original("path.jpg", sample("path.jpg")).await;
    let state =
        sizer::startup::build_state_with_store(test_config(), store.probe.clone()).expect("state");
    let function = sizer::lambda::Function::new(state);
    let gate = store.probe.hold_puts();
    let event = http_event("function-url.json", &format!("/w/100/{key}"));
    let mut answer = std::pin::pin!(function.handle(event, None));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut answer)
            .await
            .is_err(),
        "answered with its write-back still held"
    );
    gate.add_permits(1);
    let answer = answer.await.expect("an HTTP answer");
    assert_eq!(status(&answer), 200);
    assert_eq!(store.probe.total_puts(), 1);
    assert!(store.read(&format!("copy/{key}/w100_q80")).await.is_some());
}

#[test]
fn the_release_profile_keeps_unwinding_under_cargo_lambda() {
    // `cargo lambda build` adds panic = "abort" to a release profile that names no panic strategy; then a
    // corrupt JPEG (libjpeg errors unwind through mozjpeg) would end the whole function, not answer 422.
    let manifest = include_str!("../../Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a release profile")
        .split("\n[")
        .next()
        .unwrap_or_default();
    assert!(
        release.lines().any(|l| l.trim() == "panic = \"unwind\""),
        "[profile.release] must say panic = \"unwind\""
    );
}

#[test]
fn a_lambda_environment_without_the_function_variables_is_refused_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env("SIZER_STORE__ROOT", env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_LAMBDA_FUNCTION_NAME"), "{stderr}");
    // An error message, not the runtime library's panic.
    assert!(stderr.starts_with("sizer: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
