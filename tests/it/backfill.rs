//! `sizer pregenerate` and `sizer purge`, the real binary on both real stores.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use bytes::Bytes;

both_stores!(
    pregenerate_backfills_skips_what_exists_and_reports_failures,
    an_interrupted_backfill_resumes_where_it_stopped,
    purge_removes_every_variant_of_one_original,
);

const VARIANTS: &str = r#"["w/300", "w/600", "w/900"]"#;

fn sizer(store: &TestStore, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sizer"));
    command
        .args(args.iter().take(1))
        .args(store.binary_flags())
        .args(args.iter().skip(1))
        .env("SIZER_PREGENERATE__VARIANTS", VARIANTS)
        .stdin(Stdio::null());
    command
}

fn run(store: &TestStore, args: &[&str]) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = sizer(store, args).output().expect("sizer runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.success(), text)
}

async fn count_variants(store: &TestStore, name: &str) -> usize {
    let mut n = 0;
    for width in [300, 600, 900] {
        if store
            .read(&format!("copy/{}/w{width}_q80", store.key(name)))
            .await
            .is_some()
        {
            n += 1;
        }
    }
    n
}

async fn pregenerate_backfills_skips_what_exists_and_reports_failures(backend: Backend) {
    let store = TestStore::new(backend).await;
    for name in ["a.jpg", "b/c.webp", "d.png"] {
        let sample_name = match name {
            "a.jpg" => "path.jpg",
            "b/c.webp" => "friends.webp",
            _ => "camera.png",
        };
        store
            .put_original(&format!("images/{name}"), sample(sample_name))
            .await;
    }
    store
        .put_original("images/notes.txt", Bytes::from_static(b"not an image"))
        .await;
    let prefix = format!("{}/images/", store.namespace);

    let (ok, out) = run(&store, &["pregenerate", "--prefix", &prefix, "--dry-run"]);
    assert!(ok, "{out}");
    // Decided from HEADs alone: the text file counts as an original without variants (documented).
    assert!(out.contains("12 variants missing or stale"), "{out}");
    assert_eq!(
        count_variants(&store, "images/a.jpg").await,
        0,
        "a dry run writes nothing"
    );

    let (ok, out) = run(&store, &["pregenerate", "--prefix", &prefix]);
    assert!(ok, "{out}");
    assert!(out.contains("3 done"), "{out}");
    assert!(out.contains("1 skipped"), "the text file: {out}");
    assert!(out.contains("9 variants written"), "{out}");
    for name in ["images/a.jpg", "images/b/c.webp", "images/d.png"] {
        assert_eq!(count_variants(&store, name).await, 3, "{name}");
    }
    let w600 = store
        .read(&format!("copy/{}/w600_q80", store.key("images/a.jpg")))
        .await
        .unwrap();
    assert_eq!(decoded_size(&w600), (600, 375));

    // Again: everything is fresh, nothing is written. Then a broken upload fails alone.
    store
        .put_original(
            "images/e.jpg",
            Bytes::from_static(b"\xFF\xD8\xFF\xE0 broken"),
        )
        .await;
    let (ok, out) = run(&store, &["pregenerate", "--prefix", &prefix]);
    assert!(
        !ok,
        "a failed original makes the exit status non-zero: {out}"
    );
    assert!(out.contains("3 up to date"), "{out}");
    assert!(out.contains("0 variants written"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
    assert!(out.contains("e.jpg"), "the failure names its key: {out}");
}

async fn an_interrupted_backfill_resumes_where_it_stopped(backend: Backend) {
    let store = TestStore::new(backend).await;
    let names: Vec<String> = (0..24).map(|i| format!("images/{i:02}.jpg")).collect();
    for name in &names {
        store.put_original(name, sample("path.jpg")).await;
    }
    let prefix = format!("{}/images/", store.namespace);
    let child = sizer(
        &store,
        &["pregenerate", "--prefix", &prefix, "--concurrency", "1"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("sizer starts");
    // Interrupt once the first original is done.
    let mut started = false;
    for _ in 0..600 {
        if count_variants(&store, &names[0]).await == 3 {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started, "the backfill made progress");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "interrupted is not success: {text}"
    );
    assert!(text.contains("interrupted"), "{text}");
    let mut done = 0;
    for name in &names {
        done += usize::from(count_variants(&store, name).await == 3);
    }
    assert!(done < names.len(), "stopped before the end ({done} done)");

    let (ok, out) = run(&store, &["pregenerate", "--prefix", &prefix]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{done} up to date")),
        "resumed: {out}"
    );
    for name in &names {
        assert_eq!(count_variants(&store, name).await, 3, "{name}");
    }
}

async fn purge_removes_every_variant_of_one_original(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/a.jpg", sample("path.jpg")).await;
    let other = store
        .put_original("images/a.jpg.png", sample("camera.png"))
        .await;
    let prefix = format!("{}/images/", store.namespace);
    let (ok, out) = run(&store, &["pregenerate", "--prefix", &prefix]);
    assert!(ok, "{out}");
    let (ok, out) = run(&store, &["purge", &key]);
    assert!(ok, "{out}");
    assert!(out.contains("removed 3 variants"), "{out}");
    assert_eq!(count_variants(&store, "images/a.jpg").await, 0);
    assert_eq!(
        count_variants(&store, "images/a.jpg.png").await,
        3,
        "{other} keeps its own"
    );
    assert!(store.read(&key).await.is_some(), "the original stays");
    let (ok, out) = run(&store, &["purge", &format!("copy/{key}/w300_q80")]);
    assert!(!ok && out.contains("copy prefix"), "{out}");
}
