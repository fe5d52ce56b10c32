//! The tiers: computed → memory → copy store, against both real stores.

use crate::common::*;
use reqwest::StatusCode;

both_stores!(
    first_request_computes_and_writes_the_variant,
    second_request_is_served_from_memory,
    restarted_service_serves_from_the_copy_store_without_recomputing,
    head_has_the_headers_of_get_and_no_body,
    matching_etag_gets_304,
    width_above_the_original_is_clamped_and_says_so,
);

async fn first_request_computes_and_writes_the_variant(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let app = spawn_app(&store, test_config()).await;

    let res = app.get(&format!("/w/600/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "sizer-tier"), Some("computed"));
    assert_eq!(header(&res, "content-type"), Some("image/jpeg"));
    assert_eq!(
        header(&res, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(header(&res, "etag").is_some_and(|e| e.starts_with('"')));
    assert!(header(&res, "last-modified").is_some());
    let length: usize = header(&res, "content-length").unwrap().parse().unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), length);
    // 2560x1600 at 600 wide keeps the aspect ratio: 375 high.
    assert_eq!(decoded_size(&body), (600, 375));

    let variant_key = format!("copy/{key}/w600_q80");
    let stored = wait_for_object(&store, &variant_key).await;
    assert_eq!(stored, body, "the written variant is the served one");
    assert_eq!(store.probe.gets(&key), 1);
    app.stop().await;
}

async fn second_request_is_served_from_memory(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let app = spawn_app(&store, test_config()).await;

    let first = app.get(&format!("/w/300/{key}")).await;
    // A computed response says where its time went; a memory hit has nothing to time.
    let timing = header(&first, "server-timing").unwrap().to_string();
    for stage in [
        "tier;desc=computed",
        "fetch;dur=",
        "decode;dur=",
        "resize;dur=",
        "encode;dur=",
    ] {
        assert!(timing.contains(stage), "{stage} missing from {timing}");
    }
    let first_etag = header(&first, "etag").unwrap().to_string();
    let first_body = first.bytes().await.unwrap();
    let second = app.get(&format!("/w/300/{key}")).await;
    assert_eq!(header(&second, "sizer-tier"), Some("memory"));
    assert_eq!(
        header(&second, "server-timing"),
        Some("tier;desc=memory, format;desc=jpg")
    );
    assert_eq!(header(&second, "etag"), Some(first_etag.as_str()));
    assert_eq!(second.bytes().await.unwrap(), first_body);
    assert_eq!(store.probe.gets(&key), 1, "the original is read once");
    assert_eq!(app.metric("sizer_served_total{tier=\"memory\"}").await, 1);
    app.stop().await;
}

async fn restarted_service_serves_from_the_copy_store_without_recomputing(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("path.jpg")).await;
    let app = spawn_app(&store, test_config()).await;
    let computed = app
        .get(&format!("/w/600/{key}"))
        .await
        .bytes()
        .await
        .unwrap();
    // Stopping waits for the write-back.
    app.stop().await;

    let app = spawn_app(&store, test_config()).await;
    let res = app.get(&format!("/w/600/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "sizer-tier"), Some("copy"));
    assert_eq!(res.bytes().await.unwrap(), computed);
    assert_eq!(
        store.probe.gets(&key),
        1,
        "the original was not read again after the restart"
    );
    assert_eq!(
        store.probe.puts(&format!("copy/{key}/w600_q80")),
        1,
        "nothing was written again"
    );
    assert_eq!(app.metric("sizer_original_fetches_total").await, 0);
    // And the copy-tier hit went into memory.
    assert_eq!(
        header(&app.get(&format!("/w/600/{key}")).await, "sizer-tier"),
        Some("memory")
    );
    app.stop().await;
}

async fn head_has_the_headers_of_get_and_no_body(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("images/x.webp", sample("friends.webp"))
        .await;
    let app = spawn_app(&store, test_config()).await;

    let head = app.head(&format!("/w/320/{key}")).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-type"), Some("image/webp"));
    let head_length = header(&head, "content-length").unwrap().to_string();
    let head_etag = header(&head, "etag").unwrap().to_string();
    assert!(head.bytes().await.unwrap().is_empty());

    let get = app.get(&format!("/w/320/{key}")).await;
    assert_eq!(header(&get, "content-length"), Some(head_length.as_str()));
    assert_eq!(header(&get, "etag"), Some(head_etag.as_str()));
    assert_eq!(decoded_size(&get.bytes().await.unwrap()).0, 320);
    app.stop().await;
}

async fn matching_etag_gets_304(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store.put_original("images/x.jpg", sample("grey.jpg")).await;
    let app = spawn_app(&store, test_config()).await;
    let path = format!("/w/200/{key}");
    let etag = header(&app.get(&path).await, "etag").unwrap().to_string();

    let res = app.get_with(&path, &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&res, "etag"), Some(etag.as_str()));
    let res = app.get_with(&path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

async fn width_above_the_original_is_clamped_and_says_so(backend: Backend) {
    let store = TestStore::new(backend).await;
    let key = store
        .put_original("icons/camera.png", sample("camera.png"))
        .await;
    let app = spawn_app(&store, test_config()).await;

    let res = app.get(&format!("/w/900/{key}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "sizer-clamped-width"), Some("512"));
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (512, 512));
    // Within the original's width there is no such header.
    let res = app.get(&format!("/w/256/{key}")).await;
    assert_eq!(header(&res, "sizer-clamped-width"), None);

    // With upscaling allowed, the width is honoured.
    let mut config = test_config();
    config.widths.allow_upscale = true;
    config.keys.copy_prefix = "copy-upscaled/".into();
    let app2 = spawn_app(&store, config).await;
    let res = app2.get(&format!("/w/900/{key}")).await;
    assert_eq!(header(&res, "sizer-clamped-width"), None);
    assert_eq!(decoded_size(&res.bytes().await.unwrap()), (900, 900));
    app.stop().await;
    app2.stop().await;
}
