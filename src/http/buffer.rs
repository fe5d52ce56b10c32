//! Whole response bodies in memory, with a cap: what a buffered AWS Lambda answer needs (the Runtime API
//! takes the response as one JSON document of at most 6 MB, the body base64-encoded inside it; see
//! `lambda`). A body over the cap becomes `AppError::ResponseTooLarge` (413) here, inside the router, so it
//! gets the error caching and the log line every error gets. Never used by the HTTP server, which streams.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::AppError;
use crate::store::StoreError;
use crate::variants::VariantError;

/// Runs the request and collects its response body, refusing one larger than `limit` bytes.
pub async fn collect(request: Request, next: Next, limit: usize) -> Response {
    let (parts, body) = next.run(request).await.into_parts();
    // A whole variant knows its size: refuse it before copying anything. A streamed one (a large variant
    // from the copy prefix) is read only up to the limit.
    if body.size_hint().lower() > limit as u64 {
        return AppError::ResponseTooLarge(limit).into_response();
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                total = total.saturating_add(chunk.len());
                if total > limit {
                    return AppError::ResponseTooLarge(limit).into_response();
                }
                chunks.push(chunk);
            }
            // Only a streamed variant can fail here: its store read broke off.
            Err(e) => {
                return AppError::from(VariantError::Store(StoreError::Failed(e.to_string())))
                    .into_response();
            }
        }
    }
    let body = match chunks.len() {
        0 => Body::empty(),
        1 => Body::from(chunks.swap_remove(0)),
        _ => Body::from(chunks.concat()),
    };
    Response::from_parts(parts, body)
}
