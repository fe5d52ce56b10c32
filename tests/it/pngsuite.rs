//! The PNG conformance suite (Willem van Schaik's PngSuite, `testdata/pngsuite/`) over HTTP: every valid
//! file is served, at its own size and as PNG, with exactly the pixels an independent decoder reads from
//! it (every colour type and bit depth, interlaced or not, palettes, tRNS transparency, 16-bit); every
//! deliberately corrupt `x*` file is a 4xx with a JSON body, and nothing is written.

use std::path::Path;

use crate::common::*;

fn suite() -> Vec<(String, bytes::Bytes)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pngsuite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/pngsuite is in the repository")
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().expect("ASCII names"))
        .filter(|name| name.ends_with(".png") && name != "PngSuite.png")
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).expect("readable");
            (name, bytes::Bytes::from(bytes))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_file_keeps_its_pixels_and_every_corrupt_one_is_refused() {
    let store = TestStore::new(Backend::Fs).await;
    let app = spawn_app(&store, test_config()).await;
    let files = suite();
    assert!(files.len() > 150, "the suite is there: {}", files.len());
    let (mut served, mut refused) = (0, 0);
    let mut failures = Vec::new();
    let (mut corrupt_keys, mut valid_keys) = (Vec::new(), Vec::new());
    for (name, bytes) in files {
        let key = store
            .put_original(&format!("pngsuite/{name}"), bytes.clone())
            .await;
        let res = app.get(&format!("/f/png/{key}")).await;
        let status = res.status().as_u16();
        if name.starts_with('x') {
            let (status, message) = error_json(res).await;
            if !(400..500).contains(&status) {
                failures.push(format!("{name}: corrupt file answered {status}: {message}"));
            }
            refused += 1;
            corrupt_keys.push(key);
            continue;
        }
        if status != 200 {
            failures.push(format!(
                "{name}: {status} {}",
                res.text().await.unwrap_or_default()
            ));
            continue;
        }
        let body = res.bytes().await.unwrap();
        let ours = image::load_from_memory(&body).expect("a PNG").into_rgba8();
        let theirs = image::load_from_memory(&bytes)
            .expect("the reference decoder reads every valid file")
            .into_rgba8();
        if ours.dimensions() != theirs.dimensions() {
            failures.push(format!(
                "{name}: {:?} instead of {:?}",
                ours.dimensions(),
                theirs.dimensions()
            ));
        } else if let Some((i, (a, b))) = ours
            .pixels()
            .zip(theirs.pixels())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            failures.push(format!("{name}: pixel {i} is {a:?}, expected {b:?}"));
        }
        served += 1;
        valid_keys.push(key);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(refused, 14);
    assert!(served > 140);
    // Stopping drains the write-backs: every valid file's variant is stored, no corrupt file's is.
    app.stop().await;
    for key in &valid_keys {
        assert!(
            store.read(&format!("copy/{key}/q80.png")).await.is_some(),
            "{key}"
        );
    }
    for key in &corrupt_keys {
        assert!(
            store.read(&format!("copy/{key}/q80.png")).await.is_none(),
            "{key}"
        );
    }
    assert_eq!(store.probe.total_puts(), valid_keys.len());
}
