//! The `sizer` binary itself: the embedded default serves the shipped samples; `resize` runs the pipeline.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{decoded_size, free_port};

#[tokio::test]
async fn the_binary_serves_the_embedded_samples_and_stops_on_sigterm() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sizer starts");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/w/300/images/path.jpg");
    let mut response = None;
    for _ in 0..100 {
        if let Ok(res) = client.get(&url).send().await {
            response = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = response.expect("the service answered");
    assert_eq!(res.status(), 200);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (300, 188));
    assert_eq!(
        client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}");
}

#[test]
fn resize_command_writes_the_server_pipeline_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.webp");
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/images/path.jpg");
    let status = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args([
            "resize",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--width",
            "600",
            "--format",
            "webp",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::WebP
    );
    assert_eq!(decoded_size(&bytes), (600, 375));

    let bad = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args(["resize", "/nonexistent.jpg", "/tmp/x.jpg", "--width", "10"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nonexistent"));
}

#[test]
fn resize_reads_a_pipe_as_well_as_a_mapped_file() {
    // A regular file is memory-mapped; a pipe cannot be, and is read instead. Same bytes out.
    let dir = tempfile::tempdir().unwrap();
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/images/path.jpg");
    let mapped = dir.path().join("mapped.jpg");
    let piped = dir.path().join("piped.jpg");
    let run = |from: &str, to: &std::path::Path, stdin: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_sizer"))
            .args(["resize", from, to.to_str().unwrap(), "--width", "300"])
            .stdin(stdin)
            .status()
            .unwrap()
    };
    assert!(run(input.to_str().unwrap(), &mapped, Stdio::null()).success());
    let file = std::fs::File::open(&input).unwrap();
    let mut cat = Command::new("cat")
        .stdin(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = Stdio::from(cat.stdout.take().unwrap());
    assert!(run("/dev/stdin", &piped, pipe).success());
    assert!(cat.wait().unwrap().success());
    let (a, b) = (
        std::fs::read(&mapped).unwrap(),
        std::fs::read(&piped).unwrap(),
    );
    assert_eq!(decoded_size(&a), (300, 188));
    assert!(a == b, "the piped input gave different output");

    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args([
            "resize",
            empty.to_str().unwrap(),
            "/dev/null",
            "--width",
            "10",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty.jpg"));
}

#[test]
fn sign_prints_a_path_the_server_accepts() {
    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let sign = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sizer"))
            .arg("sign")
            .args(args)
            .env("SIZER_SIGNING__KEYS", format!("[\"{KEY}\"]"))
            .output()
            .unwrap()
    };
    let out = sign(&["/w/300/images/path.jpg"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "/s/YecLzr7sOsdjr5oKcf5PV7TQOwL10VbJsbTjkf4IIQw/w/300/images/path.jpg",
        "the README's test vector"
    );
    let mut config = sizer::Config::default();
    config.signing.keys = vec![KEY.into()];
    config.signing.required = true;
    let rules = sizer::spec::SpecRules::from_config(&config).unwrap();
    let out = sign(&[
        "--exp",
        "4102444800",
        "/w/300/h/200/fit/cover/images/path.jpg",
    ]);
    let path = String::from_utf8(out.stdout).unwrap();
    let spec = sizer::spec::VariantSpec::parse(path.trim(), &rules).expect("the server accepts it");
    assert_eq!((spec.width, spec.height), (Some(300), Some(200)));
    assert!(path.contains("/exp/4102444800/"));

    let unkeyed = Command::new(env!("CARGO_BIN_EXE_sizer"))
        .args(["sign", "/w/300/a.jpg"])
        .env_remove("SIZER_SIGNING__KEYS")
        .output()
        .unwrap();
    assert!(!unkeyed.status.success());
    assert!(String::from_utf8_lossy(&unkeyed.stderr).contains("signing"));
}
