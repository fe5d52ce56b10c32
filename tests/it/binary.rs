//! The `sizer` binary itself: the embedded default serves the shipped samples; `resize` runs the pipeline.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::decoded_size;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
