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
    let bytes = tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES))
        .await
        .map_err(|_| AppError::BodyTimeout(millis(timeout)))?
        .map_err(|_| AppError::EventTooLarge(MAX_BODY_BYTES))?;
    let document: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| AppError::EventNotJson(e.to_string()))?;
    let deadline = std::time::Instant::now() + state.config.request_timeout();
    let summary = state
        .events
        .handle_notification(document, Some(deadline))
        .await?;
    Ok(axum::Json(summary).into_response())
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
