//! The store operations pre-generation relies on, against both real stores: HEAD, listing in key order
//! across pages, deletion, writes only-if-absent, and sizer's output mark.

use crate::common::*;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sizer::store::{PutOptions, Store, StoreError, Written};

both_stores!(
    head_reports_size_and_absence,
    listing_is_in_key_order_and_bounded_by_the_prefix,
    listing_pages_through_more_than_a_thousand_keys,
    delete_is_idempotent,
    a_write_only_if_absent_never_replaces,
    variants_carry_the_output_mark_where_the_store_keeps_metadata,
);

async fn head_reports_size_and_absence(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("a.jpg", Bytes::from_static(b"12345"))
        .await;
    let info = store.probe.head(&key).await.unwrap();
    assert_eq!((info.key.as_str(), info.size), (key.as_str(), 5));
    assert!(info.etag.is_some() && info.last_modified.is_some());
    assert!(!info.marked);
    assert_eq!(
        store.probe.head(&store.key("nope.jpg")).await.unwrap_err(),
        StoreError::NotFound
    );
}

async fn listing_is_in_key_order_and_bounded_by_the_prefix(backend: Backend) {
    let store = TestStore::new(backend).await;
    for name in [
        "b/x.jpg",
        "a.jpg",
        "a/b/c.jpg",
        "a.jpg.png",
        "ab.jpg",
        "c.jpg",
    ] {
        store.put_original(name, Bytes::from_static(b"x")).await;
    }
    let ns = format!("{}/", store.namespace);
    let probe = &store.probe;
    let list = |prefix: String| {
        let ns = ns.clone();
        async move {
            let keys: Vec<String> = probe
                .list(&prefix)
                .map_ok(|o| o.key)
                .try_collect()
                .await
                .unwrap();
            keys.into_iter()
                .map(|k| k.trim_start_matches(&ns).to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(format!("{}/", store.namespace)).await,
        [
            "a.jpg",
            "a.jpg.png",
            "a/b/c.jpg",
            "ab.jpg",
            "b/x.jpg",
            "c.jpg"
        ]
    );
    assert_eq!(
        list(store.key("a")).await,
        ["a.jpg", "a.jpg.png", "a/b/c.jpg", "ab.jpg"]
    );
    assert_eq!(list(store.key("a.jpg")).await, ["a.jpg", "a.jpg.png"]);
    assert_eq!(list(store.key("a/")).await, ["a/b/c.jpg"]);
    assert!(list(store.key("zzz/")).await.is_empty());
}

async fn listing_pages_through_more_than_a_thousand_keys(backend: Backend) {
    let store = TestStore::new(backend).await;
    let names: Vec<String> = (0..1005).map(|i| format!("many/{i:05}.jpg")).collect();
    futures_util::stream::iter(names.iter())
        .for_each_concurrent(32, |name| {
            let store = &store;
            async move {
                store.put_original(name, Bytes::from_static(b"x")).await;
            }
        })
        .await;
    let keys: Vec<String> = store
        .probe
        .list(&store.key("many/"))
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<String> = names.iter().map(|n| store.key(n)).collect();
    assert_eq!(
        keys, expected,
        "every key once, in order, past S3's 1000-key page"
    );
}

async fn delete_is_idempotent(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("copy-like/a/w300_q80", Bytes::from_static(b"x"))
        .await;
    store.probe.delete(&key).await.unwrap();
    assert_eq!(store.read(&key).await, None);
    store.probe.delete(&key).await.unwrap();
    let listed: Vec<_> = store
        .probe
        .list(&format!("{}/", store.namespace))
        .collect()
        .await;
    assert!(listed.is_empty(), "nothing left, not even a directory");
}

async fn a_write_only_if_absent_never_replaces(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.key("v/w300_q80");
    let mut options = PutOptions::variant("image/jpeg", Some("abc"));
    options.only_if_absent = true;
    let first = store
        .probe
        .put(&key, Bytes::from_static(b"first"), options)
        .await
        .unwrap();
    assert_eq!(first, Written::Written);
    let second = store
        .probe
        .put(&key, Bytes::from_static(b"second"), options)
        .await
        .unwrap();
    assert_eq!(second, Written::AlreadyThere);
    assert_eq!(
        store.read(&key).await.unwrap(),
        Bytes::from_static(b"first")
    );
    // Without the condition, a write replaces.
    store
        .probe
        .put(
            &key,
            Bytes::from_static(b"third"),
            PutOptions::plain("image/jpeg"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.read(&key).await.unwrap(),
        Bytes::from_static(b"third")
    );
}

async fn variants_carry_the_output_mark_where_the_store_keeps_metadata(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.key("v/w600_q80");
    store
        .probe
        .put(
            &key,
            Bytes::from_static(b"x"),
            PutOptions::variant("image/jpeg", Some("0123abcd")),
        )
        .await
        .unwrap();
    let info = store.probe.head(&key).await.unwrap();
    let object = store.probe.get(&key).await.unwrap();
    match backend {
        Backend::S3 => {
            assert!(info.marked && object.marked);
            assert_eq!(info.source_etag.as_deref(), Some("0123abcd"));
        }
        // A directory has no metadata: the copy prefix alone guards it (documented).
        Backend::Fs => assert!(!info.marked && info.source_etag.is_none()),
    }
}

/// A link inside the root to a file outside it would serve that file's bytes (resized, when it is an
/// image), and a linked directory would carry reads and writes out: neither is followed. A link that
/// stays inside the root works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_store_never_follows_links_out_of_its_root() {
    use std::os::unix::fs::symlink;
    let store = TestStore::new(Backend::Fs).await;
    let root = store.root().expect("a directory store").to_path_buf();
    let original = store
        .put_original("images/real.jpg", sample("path.jpg"))
        .await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.png"), sample("camera.png")).unwrap();
    let ns = root.join(&store.namespace);
    symlink(outside.path().join("secret.png"), ns.join("images/out.png")).unwrap();
    symlink(outside.path(), ns.join("elsewhere")).unwrap();
    symlink(root.join(&original), ns.join("images/alias.jpg")).unwrap();
    // The variants of this namespace would be written through a link to another directory outside.
    let variants_outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.join("copy")).unwrap();
    symlink(
        variants_outside.path(),
        root.join("copy").join(&store.namespace),
    )
    .unwrap();
    let app = spawn_app(&store, test_config()).await;

    for name in ["images/out.png", "elsewhere/secret.png"] {
        let (status, message) =
            error_json(app.get(&format!("/w/300/{}", store.key(name))).await).await;
        assert_eq!(status, 404, "{name}: {message}");
    }
    let listed: Vec<String> = store
        .probe
        .list(&format!("{}/", store.namespace))
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed,
        [store.key("images/alias.jpg"), original.clone()],
        "links out are not listed either"
    );
    for key in [&original, &store.key("images/alias.jpg")] {
        let res = app.get(&format!("/w/300/{key}")).await;
        assert_eq!(res.status(), 200, "{key}");
        assert_eq!(decoded_size(&res.bytes().await.unwrap()).0, 300);
    }
    app.stop().await;
    assert_eq!(
        std::fs::read_dir(variants_outside.path()).unwrap().count(),
        0,
        "no variant written outside the root"
    );
}
