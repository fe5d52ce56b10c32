//! A store on an S3 bucket through aws-sdk-s3: AWS itself, or any S3-compatible server (MinIO, Garage, R2)
//! through an endpoint override, with path-style addressing whenever such an endpoint is set.
//!
//! Faults: every attempt is bounded (`store.connect_timeout_ms`, `store.read_timeout_ms`, the latter also
//! between the pieces of a body, which the SDK does not watch once the reply has started). Reads and
//! deletes are retried by the SDK's standard mode (`store.max_attempts`, exponential backoff with full
//! jitter, a retry quota that empties during a long outage); so are the PUTs of pre-generation, where the
//! write is the work (`PutOptions::retried`). Write-backs are tried once, as a failed one only costs a
//! recompute and retrying writes adds load to a store that is already struggling. What is
//! left after the retries becomes [`StoreError::TimedOut`], [`StoreError::Throttled`] or
//! [`StoreError::Failed`]; a body cut short is an error, never a shorter object.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{
    Listing, OUTPUT_MARK, ObjectInfo, PutOptions, SOURCE_ETAG, Store, StoreError, StoredObject,
    Written,
};
use crate::config::StoreConfig;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Set once the server has answered a conditional PUT with 501 (some S3-compatible servers do not
    /// implement `If-None-Match`): from then on, the HEAD before it decides alone.
    no_conditional_puts: Arc<AtomicBool>,
    /// Longest gap between two pieces of a body being read.
    read_timeout: Duration,
}

impl S3Store {
    /// Builds a client from the standard AWS environment (credential chain, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`), with the overrides of `store.endpoint` and `store.region`, and the timeouts and
    /// retries of `store.*`.
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
        let read_timeout = Duration::from_millis(config.read_timeout_ms);
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                    .read_timeout(read_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.max_attempts)
                    .with_initial_backoff(Duration::from_millis(config.retry_backoff_ms)),
            )
            .build();
        S3Store {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            no_conditional_puts: Arc::new(AtomicBool::new(false)),
            read_timeout,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// What an SDK error (after the SDK's retries) means for the caller: no answer in time, throttling, or
/// any other failure (refused, reset, an error reply).
fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
    key: &str,
    e: SdkError<E, HttpResponse>,
) -> StoreError {
    let timed_out = match &e {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    };
    // S3 answers 503 only to say "slow down" (`SlowDown`; bodiless for HEAD, so the status decides).
    let throttled = matches!(status_of(&e), Some(503 | 429)) || e.code() == Some("SlowDown");
    let message = format!("{key}: {}", DisplayErrorContext(&e));
    if timed_out {
        StoreError::TimedOut(message)
    } else if throttled {
        StoreError::Throttled(message)
    } else {
        StoreError::Failed(message)
    }
}

/// The HTTP status of a service's reply, when the error is one.
fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn is_marked(metadata: Option<&std::collections::HashMap<String, String>>) -> bool {
    metadata.is_some_and(|m| m.contains_key(OUTPUT_MARK))
}

fn time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn etag(t: Option<&str>) -> Option<String> {
    t.map(|t| t.trim_matches('"').to_string())
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
            Err(e) if status_of(&e) == Some(404) => return Err(StoreError::NotFound),
            Err(e) => return Err(failed(key, e)),
        };
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StoreError::Failed(format!("{key}: no Content-Length")))?;
        let last_modified = time(out.last_modified());
        let etag = etag(out.e_tag());
        let marked = is_marked(out.metadata());
        let key: Arc<str> = Arc::from(key);
        let idle = self.read_timeout;
        // The SDK's timeouts end when the reply starts: a body that stalls is bounded here. The stream ends
        // after its first error; a reset or a body shorter than its Content-Length is an error from hyper.
        let body = futures_util::stream::unfold(Some(out.body), move |body| {
            let key = Arc::clone(&key);
            async move {
                let mut body: SdkByteStream = body?;
                match tokio::time::timeout(idle, body.next()).await {
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                    Ok(Some(Err(e))) => Some((
                        Err(StoreError::Failed(format!(
                            "{key}: body: {}",
                            DisplayErrorContext(&e)
                        ))),
                        None,
                    )),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(StoreError::TimedOut(format!(
                            "{key}: no body data for {} ms",
                            idle.as_millis()
                        ))),
                        None,
                    )),
                }
            }
        })
        .boxed();
        Ok(StoredObject {
            size,
            last_modified,
            etag,
            marked,
            body,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if status_of(&e) == Some(404) => return Err(StoreError::NotFound),
            Err(e) => return Err(failed(key, e)),
        };
        Ok(ObjectInfo {
            key: key.to_string(),
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            last_modified: time(out.last_modified()),
            etag: etag(out.e_tag()),
            marked: is_marked(out.metadata()),
            source_etag: out.metadata().and_then(|m| m.get(SOURCE_ETAG)).cloned(),
        })
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: PutOptions<'_>,
    ) -> Result<Written, StoreError> {
        let conditional =
            options.only_if_absent && !self.no_conditional_puts.load(Ordering::Relaxed);
        // HEAD first: some servers (Garage) accept `If-None-Match: *` and ignore it. What is left is a
        // race between two writers of one variant, and those write the same bytes.
        if options.only_if_absent {
            match self.head(key).await {
                Ok(_) => return Ok(Written::AlreadyThere),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(options.content_type)
            .body(SdkByteStream::from(body.clone()));
        if let Some(source_etag) = options.variant_of {
            request = request.metadata(OUTPUT_MARK, "1");
            if let Some(source_etag) = source_etag.filter(|t| t.is_ascii()) {
                request = request.metadata(SOURCE_ETAG, source_etag);
            }
        }
        if conditional {
            request = request.if_none_match("*");
        }
        // A write-back gets one attempt: failing costs a recompute later; retrying would add writes to a
        // store that is failing or throttling. Pre-generation's writes keep the client's retries.
        let sent = if options.retried {
            request.send().await
        } else {
            let once = aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled());
            request.customize().config_override(once).send().await
        };
        match sent {
            Ok(_) => Ok(Written::Written),
            // Taken (412), or a concurrent conditional write in progress (409): someone else wrote it.
            Err(e) if conditional && matches!(status_of(&e), Some(412 | 409)) => {
                Ok(Written::AlreadyThere)
            }
            Err(e) if conditional && status_of(&e) == Some(501) => {
                tracing::info!(
                    bucket = self.bucket,
                    "the S3 server does not implement conditional PUTs; checking with HEAD instead"
                );
                self.no_conditional_puts.store(true, Ordering::Relaxed);
                Box::pin(self.put(key, body, options)).await
            }
            Err(e) => Err(failed(key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Listing {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let prefix = prefix.to_string();
        futures_util::stream::unfold(
            (pages, VecDeque::new(), false),
            move |(mut pages, mut ready, mut done)| {
                let prefix = prefix.clone();
                async move {
                    loop {
                        if let Some(info) = ready.pop_front() {
                            return Some((Ok(info), (pages, ready, done)));
                        }
                        if done {
                            return None;
                        }
                        match pages.next().await {
                            None => done = true,
                            Some(Err(e)) => {
                                done = true;
                                return Some((Err(failed(&prefix, e)), (pages, ready, done)));
                            }
                            Some(Ok(page)) => {
                                ready.extend(page.contents().iter().filter_map(|o| {
                                    Some(ObjectInfo {
                                        key: o.key()?.to_string(),
                                        size: o
                                            .size()
                                            .and_then(|n| u64::try_from(n).ok())
                                            .unwrap_or(0),
                                        last_modified: time(o.last_modified()),
                                        etag: etag(o.e_tag()),
                                        marked: false,
                                        source_etag: None,
                                    })
                                }));
                            }
                        }
                    }
                }
            },
        )
        .boxed()
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(failed(key, e)),
        }
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
