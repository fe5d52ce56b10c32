//! `POST /events`: storage notifications from self-hosted S3 servers (MinIO's webhook target sends the
//! AWS shape) and anything else that can POST an S3, SNS, SQS or EventBridge document. Off (404) unless
//! `events.webhook_token` is set; the bearer token is compared in constant time before the body is read.
//! The body must arrive whole within `server.body_read_timeout_ms` (408 otherwise).
//! Answers once the work is done: 200 with a summary, 503 + `Retry-After` when a retry can help.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::AppError;
use crate::options::UrlError;

/// Largest notification accepted. An S3 notification holds one record; an SQS batch at most ten.
const MAX_BODY_BYTES: usize = 1 << 20;

/// How much of an oversized body is read and thrown away before the 413 is sent. Answering while the
/// sender is still writing makes the server close a connection with unread bytes in it, and the
/// sender's kernel then resets it, often before the sender has read the answer: it sees "connection
/// reset", not the 413 (a CI run failed that way). Past this much the sender is not a notification
/// source, and the connection is closed on it.
const DRAIN_BODY_BYTES: usize = 16 << 20;

pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let expected = state.config.events.webhook_token.as_bytes();
    if expected.is_empty() {
        return Err(UrlError::NoRoute.into());
    }
    check_bearer(&headers, expected)?;
    // A sender trickling its body cannot hold the request (and its connection) past the timeout.
    let timeout = state.config.body_read_timeout();
    let bytes = tokio::time::timeout(timeout, read_capped(body, &headers))
        .await
        .map_err(|_| AppError::BodyTimeout(millis(timeout)))??;
    let document: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| AppError::EventNotJson(e.to_string()))?;
    let deadline = std::time::Instant::now() + state.config.request_timeout();
    let summary = state
        .events
        .handle_notification(document, Some(deadline))
        .await?;
    Ok(axum::Json(summary).into_response())
}

/// The body, if it is at most `MAX_BODY_BYTES`. A longer one is read on (and discarded) up to
/// `DRAIN_BODY_BYTES`, so that the sender is reading when the 413 comes; one that announces more than
/// that in its `Content-Length` is refused without reading.
async fn read_capped(body: Body, headers: &HeaderMap) -> Result<bytes::Bytes, AppError> {
    use futures_util::StreamExt;
    let too_large = AppError::EventTooLarge(MAX_BODY_BYTES);
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > DRAIN_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        // A sender that went away mid-body: nobody reads the answer.
        let chunk = chunk.map_err(|_| AppError::EventNotJson("the body was cut off".into()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > DRAIN_BODY_BYTES {
            return Err(too_large);
        }
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large);
    }
    Ok(kept.freeze())
}

fn millis(duration: std::time::Duration) -> u64 {
    duration.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Checks that `headers` carry `Authorization: Bearer <expected>` (compared in constant time): for
/// `POST /events` and, with `telemetry.metrics_token`, `/metrics`.
pub(super) fn check_bearer(headers: &HeaderMap, expected: &[u8]) -> Result<(), AppError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(AppError::TokenMissing)?;
    if !bool::from(presented.trim().as_bytes().ct_eq(expected)) {
        return Err(AppError::TokenWrong);
    }
    Ok(())
}
