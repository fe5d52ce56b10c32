//! A store on an S3 bucket through aws-sdk-s3: AWS itself, or any S3-compatible server (MinIO, Garage, R2)
//! through an endpoint override, with path-style addressing whenever such an endpoint is set.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{Store, StoreError, StoredObject};
use crate::config::StoreConfig;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    /// Builds a client from the standard AWS environment (credential chain, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`), with the overrides of `store.endpoint` and `store.region`.
    pub async fn connect(config: &StoreConfig) -> S3Store {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if !config.endpoint.is_empty() {
            loader = loader.endpoint_url(&config.endpoint);
        }
        if !config.region.is_empty() {
            loader = loader.region(aws_config::Region::new(config.region.clone()));
        }
        let shared = loader.load().await;
        let custom_endpoint = shared.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            .build();
        S3Store {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
    key: &str,
    e: SdkError<E, R>,
) -> StoreError {
    StoreError::Failed(format!("{key}: {}", DisplayErrorContext(&e)))
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<StoredObject, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(StoreError::NotFound);
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Err(StoreError::NotFound);
            }
            Err(e) => return Err(failed(key, e)),
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StoreError::Failed(format!("{key}: no Content-Length")))?;
        let last_modified = out
            .last_modified()
            .and_then(|t| SystemTime::try_from(*t).ok());
        let etag = out.e_tag().map(|t| t.trim_matches('"').to_string());
        let key = key.to_string();
        let body = futures_util::stream::unfold(out.body, move |mut body: SdkByteStream| {
            let key = key.clone();
            async move {
                match body.next().await {
                    Some(Ok(chunk)) => Some((Ok(chunk), body)),
                    Some(Err(e)) => Some((Err(StoreError::Failed(format!("{key}: {e}"))), body)),
                    None => None,
                }
            }
        })
        .boxed();
        Ok(StoredObject {
            size,
            last_modified,
            etag,
            body,
        })
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| failed(key, e))?;
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(drop)
            .map_err(|e| failed(&self.bucket, e))
    }

    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
