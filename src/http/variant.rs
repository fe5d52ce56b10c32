//! `GET|HEAD /{options}/{key}`: parse (with the request's `Accept` and the clock) → variants → response.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::error::AppError;
use super::headers;
use super::{AppState, Deadline};
use crate::options::accept;
use crate::spec::{RequestContext, VariantSpec};

pub async fn serve(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
    deadline: Option<Extension<Deadline>>,
) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    let header = |name| {
        request_headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let context = RequestContext {
        accept: header(axum::http::header::ACCEPT.as_str()),
        // Only from the CDN, which proves itself with the shared secret; anyone else's token is ignored.
        accept_token: header(accept::TOKEN_HEADER).filter(|_| {
            accept::token_trusted(
                &state.config.output.accept_token_secret,
                header(accept::SECRET_HEADER),
            )
        }),
        ..RequestContext::at(std::time::SystemTime::now())
    };
    let spec = VariantSpec::from_request(uri.path(), &context, &state.rules)?;
    let mut timeout = state.config.request_timeout();
    if let Some(Extension(Deadline(deadline))) = deadline {
        timeout = timeout.min(deadline.saturating_duration_since(std::time::Instant::now()));
    }
    let served = tokio::time::timeout(timeout, state.variants.get(&spec))
        .await
        .map_err(|_| AppError::Timeout(timeout.as_millis().try_into().unwrap_or(u64::MAX)))??;
    let mut response = headers::respond(
        served,
        &spec,
        &method,
        &request_headers,
        &state.cache_control,
        context.now,
    );
    // A format chosen from the CDN's token varies on that header too.
    if spec.negotiated && context.accept_token.is_some() {
        response.headers_mut().insert(
            axum::http::header::VARY,
            axum::http::HeaderValue::from_static("Accept, Sizer-Accept"),
        );
    }
    Ok(response)
}
