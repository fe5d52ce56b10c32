//! `/readyz`: 200 while the store answers, 503 (with `Retry-After`, details only in the log) while it
//! does not (a missing directory or bucket, an endpoint nothing listens on), and ready again once it is
//! back; `/healthz` stays 200 throughout (the process is alive).

use std::sync::Arc;

use crate::common::*;
use sizer::config::StoreConfig;
use sizer::store::{FsStore, S3Store, Store};

async fn status_of(app: &TestApp, path: &str) -> (u16, serde_json::Value, Option<String>) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    let retry = header(&res, "retry-after").map(str::to_string);
    let body = serde_json::from_slice(&res.bytes().await.expect("a body")).expect("a JSON body");
    (status, body, retry)
}

#[tokio::test]
async fn a_directory_store_is_ready_only_while_its_root_exists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir(&root).unwrap();
    let store: Arc<dyn Store> = Arc::new(FsStore::open(&root).unwrap());
    let app = spawn_app_on(store, test_config()).await;
    let (status, body, _) = status_of(&app, "/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    std::fs::remove_dir(&root).unwrap();
    let (status, body, retry) = status_of(&app, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], 503);
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        !body["error"]
            .as_str()
            .unwrap()
            .contains(dir.path().to_str().unwrap()),
        "no paths in the body"
    );
    assert_eq!(
        status_of(&app, "/healthz").await.0,
        200,
        "alive all the same"
    );

    std::fs::create_dir(&root).unwrap();
    assert_eq!(status_of(&app, "/readyz").await.0, 200, "ready again");
    app.stop().await;
}

#[tokio::test]
async fn an_s3_store_is_ready_only_while_its_bucket_answers() {
    let good: Arc<dyn Store> = Arc::new(S3Store::connect(&s3_config()).await);
    let app = spawn_app_on(good, test_config()).await;
    assert_eq!(status_of(&app, "/readyz").await.0, 200);
    app.stop().await;

    let missing = StoreConfig {
        bucket: "sizer-no-such-bucket".into(),
        ..s3_config()
    };
    let app = spawn_app_on(Arc::new(S3Store::connect(&missing).await), test_config()).await;
    let (status, body, _) = status_of(&app, "/readyz").await;
    assert_eq!(status, 503);
    assert!(!body["error"].as_str().unwrap().contains("no-such-bucket"));
    app.stop().await;
}

#[tokio::test]
async fn an_s3_endpoint_nothing_listens_on_is_not_ready() {
    let unreachable = StoreConfig {
        endpoint: format!("http://127.0.0.1:{}", free_port()),
        max_attempts: 1,
        ..s3_config()
    };
    let app = spawn_app_on(
        Arc::new(S3Store::connect(&unreachable).await),
        test_config(),
    )
    .await;
    let (status, body, retry) = status_of(&app, "/readyz").await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")));
    assert!(!body["error"].as_str().unwrap().contains("127.0.0.1"));
    assert_eq!(status_of(&app, "/healthz").await.0, 200);
    app.stop().await;
}
