//! `GET|HEAD /w/{width}/{key}`: parse → variants → response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::AppState;
use super::error::AppError;
use super::headers;
use crate::spec::VariantSpec;

pub async fn serve(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    let spec = VariantSpec::parse(uri.path(), &state.rules)?;
    let timeout = state.config.request_timeout();
    let served = tokio::time::timeout(timeout, state.variants.get(&spec))
        .await
        .map_err(|_| AppError::Timeout(state.config.server.request_timeout_ms))??;
    Ok(headers::respond(
        served,
        &spec,
        &method,
        &request_headers,
        &state.config,
    ))
}
