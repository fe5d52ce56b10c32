//! The HTTP face: routes, the variant handler, response headers, and the one error-to-status mapping.
//! Never decodes an image; everything below `variants` is reached through `Variants::get`.

pub mod buffer;
pub mod connections;
pub mod demo;
pub mod error;
pub mod events;
pub mod headers;
pub mod variant;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::settings::Settings;
use crate::spec::SpecRules;
use crate::telemetry;
use crate::variants::Variants;

/// Shared by every request.
pub struct AppState {
    pub config: Config,
    pub rules: SpecRules,
    pub variants: Variants,
    /// Storage notifications: `POST /events` and the Lambda runtime's non-HTTP events.
    pub events: crate::events::Events,
    /// The demo page and its `Content-Security-Policy`, when the store is the embedded default and
    /// `server.demo_page` is on.
    demo: Option<(String, HeaderValue)>,
    cache_control: HeaderValue,
    error_cache_control: HeaderValue,
}

impl AppState {
    /// `demo_root`: the embedded default's directory, when that is the store (the demo page is shown
    /// only then).
    pub fn new(
        config: Config,
        settings: &Settings,
        variants: Variants,
        events: crate::events::Events,
        demo_root: Option<&std::path::Path>,
    ) -> Result<AppState, crate::config::ConfigError> {
        let demo = match demo_root.filter(|_| config.server.demo_page) {
            Some(root) => {
                let preset = config.presets.keys().next().map(String::as_str);
                let page = demo::render(&demo::sample_keys(root), preset);
                let policy = HeaderValue::from_str(&demo::policy()).map_err(|_| {
                    crate::config::ConfigError::Invalid(
                        "the demo page's policy is not a header value".into(),
                    )
                })?;
                Some((page, policy))
            }
            None => None,
        };
        Ok(AppState {
            rules: settings.rules.clone(),
            config,
            variants,
            events,
            demo,
            cache_control: settings.cache_control.clone(),
            error_cache_control: settings.error_cache_control.clone(),
        })
    }
}

/// The latest moment a request may still be answered, when its caller has one: a Lambda invocation's
/// deadline (see `lambda`). Put in the request's extensions, it shortens `server.request_timeout_ms` to fit.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub std::time::Instant);

/// The HTTP service: every route, with the cross-cutting layers.
pub fn router(state: Arc<AppState>) -> Router {
    with_layers(routes(), state)
}

/// The same service with every response body collected in memory, up to `max_body_bytes` (a larger one is
/// a 413): what the Lambda runtime drives, since a Lambda answer is one buffered document.
pub fn buffered_router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    let routes = routes().layer(axum::middleware::from_fn(move |request, next| {
        buffer::collect(request, next, max_body_bytes)
    }));
    with_layers(routes, state)
}

fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(demo_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/events", axum::routing::post(events::receive))
        .fallback(variant::serve)
}

/// Errors get their caching, panics a JSON 500, every request an id, a span, a log line and its place in
/// the latency histogram: the layers outside the routes (and outside the Lambda body buffer, so its 413
/// gets them all).
fn with_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    routes
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&state),
            error_caching,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state.variants.metrics()),
            telemetry::observe_request,
        ))
        .with_state(state)
}

async fn demo_page(State(state): State<Arc<AppState>>) -> Response {
    match &state.demo {
        Some((page, policy)) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (header::CONTENT_SECURITY_POLICY, policy.clone()),
            ],
            page.clone(),
        )
            .into_response(),
        None => error::AppError::from(crate::options::UrlError::NoRoute).into_response(),
    }
}

/// How long readiness waits for the store.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: 200 when the store answers, 503 when it does not (details in the log, not the body), so a
/// load balancer or Kubernetes stops sending traffic to an instance that cannot serve.
async fn readyz(State(state): State<Arc<AppState>>) -> Result<Response, error::AppError> {
    state
        .variants
        .check_store(READY_WITHIN)
        .await
        .map_err(error::AppError::NotReady)?;
    Ok(axum::Json(serde_json::json!({ "status": "ready" })).into_response())
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// `/metrics`: public unless `telemetry.metrics_token` is set, then for that bearer token only.
async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, error::AppError> {
    let token = state.config.telemetry.metrics_token.as_bytes();
    if !token.is_empty() {
        events::check_bearer(&headers, token)?;
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.variants.render_metrics().await,
    )
        .into_response())
}

/// Errors get the configured short (or no) caching, whichever handler produced them.
async fn error_caching(State(state): State<Arc<AppState>>, mut response: Response) -> Response {
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, state.error_cache_control.clone());
    }
    response
}
