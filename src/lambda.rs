//! AWS Lambda: the same binary and the same router, without a listener.
//!
//! When `AWS_LAMBDA_RUNTIME_API` is set (Lambda sets it for every function), `sizer serve` runs [`run`]
//! instead of binding a port: it takes invocations from the Lambda Runtime API one at a time (through
//! `lambda_runtime`) and answers each with one JSON document. Two kinds of event reach this one entry
//! point, told apart by their shape:
//!
//! - **HTTP events**: a Function URL or an API Gateway HTTP API (payload format 2.0), an API Gateway REST
//!   API (1.0), an Application Load Balancer. Each becomes an `http::Request` whose path is the event's
//!   raw path byte for byte (the URL grammar and the signatures read the raw path, so nothing is decoded,
//!   normalised or prefixed with an API Gateway stage; only bytes a URI cannot hold at all, which a decoded
//!   REST path may contain, are percent-encoded). It goes through `http::buffered_router`: the server's
//!   routes, headers and errors exactly. The answer goes back in the event source's own response shape,
//!   images base64-encoded (`isBase64Encoded: true`), JSON errors as text. sizer's grammar has no query
//!   parameters, so query strings are not carried over.
//! - **Anything else** (S3, SQS, SNS, EventBridge notifications, `s3:TestEvent`) goes to
//!   `Events::handle_notification`, whose answer is the invocation's result (for SQS, the
//!   `batchItemFailures` list); its error fails the invocation, so Lambda retries or dead-letters the event.
//!
//! Lambda's limits shape the rest. A buffered answer is at most 6 MB of JSON, so a body may be at most
//! [`MAX_BODY_BYTES`] before base64: a larger variant is a 413 JSON error, not a failed invocation. A
//! request's time budget ends [`SAFETY_MARGIN`] before the invocation's deadline. And since the execution
//! environment is frozen as soon as an answer is returned, the write-backs a computed variant started are
//! awaited before answering: otherwise they might never run, and the variant would be computed again on
//! every cold request.
//!
//! Never used by the HTTP server; nothing here knows about images.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as EventBody;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use base64::Engine as _;
use lambda_runtime::tower::ServiceExt as _;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::events::EventError;
use crate::http::{self, AppState, Deadline};

/// Set by Lambda in every function's environment: where the Runtime API is.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
/// Also set by Lambda; `lambda_runtime` cannot start without them.
const FUNCTION_VARS: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Lambda's cap on a buffered (synchronous) response: the whole JSON document.
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;
/// Room left in that document for the status, the headers and the JSON around the body.
const ENVELOPE_RESERVE: usize = 64 * 1024;
/// The largest body that still fits once base64-encoded (4 bytes for every 3): about 4.45 MiB.
pub const MAX_BODY_BYTES: usize = (RESPONSE_LIMIT - ENVELOPE_RESERVE) / 4 * 3;
const _: () = assert!(MAX_BODY_BYTES.div_ceil(3) * 4 + ENVELOPE_RESERVE <= RESPONSE_LIMIT);
/// Time kept back from the invocation's deadline, so an answer (even a 504) is returned before Lambda
/// kills the invocation.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(1);

/// Whether this process runs as a Lambda function.
pub fn detected() -> bool {
    std::env::var_os(RUNTIME_API_VAR).is_some()
}

/// Why the function could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(
        "{RUNTIME_API_VAR} is set, so sizer runs as an AWS Lambda function, but {0} is not set (Lambda sets \
         it; an emulator must too)"
    )]
    Environment(&'static str),
    #[error("the Lambda runtime stopped: {0}")]
    Runtime(String),
}

/// Why one invocation failed. Lambda reports it to the caller, and retries or dead-letters an
/// asynchronous event (an HTTP client sees a 502 from the Function URL or gateway).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("malformed {origin} event: {reason}")]
    MalformedHttpEvent {
        origin: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("cannot encode the HTTP response: {0}")]
    Response(String),
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Diagnostic {
        let error_type = match error {
            InvocationError::MalformedHttpEvent { .. } => "Sizer.MalformedHttpEvent",
            InvocationError::Event(_) => "Sizer.EventError",
            InvocationError::Response(_) => "Sizer.ResponseError",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// Runs the function until the Runtime API goes away (Lambda ends the process instead).
pub async fn run(state: Arc<AppState>) -> Result<(), LambdaError> {
    if let Some(missing) = FUNCTION_VARS
        .into_iter()
        .find(|var| std::env::var_os(var).is_none())
    {
        return Err(LambdaError::Environment(missing));
    }
    let function = Arc::new(Function::new(state));
    tracing::info!("sizer running as an AWS Lambda function");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            let deadline = budget_end(event.context.deadline);
            function.handle(event.payload, deadline).await
        }
    }))
    .await
    .map_err(|e| LambdaError::Runtime(e.to_string()))
}

/// The invocation's deadline (milliseconds since the epoch, as the Runtime API gives it) less the safety
/// margin, on the monotonic clock. Lambda ends an invocation at its deadline, so one already past when the
/// invocation starts cannot be real: it is an emulator's placeholder (cargo-lambda sends a constant
/// 600000), and then only the configured timeouts apply (`None`).
fn budget_end(deadline_ms: u64) -> Option<Instant> {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let remaining = deadline.duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + remaining.saturating_sub(SAFETY_MARGIN))
}

/// One warm function: the state and the buffered router, kept across invocations (the memory cache too).
pub struct Function {
    state: Arc<AppState>,
    router: Router,
}

impl Function {
    pub fn new(state: Arc<AppState>) -> Function {
        Function {
            router: http::buffered_router(Arc::clone(&state), MAX_BODY_BYTES),
            state,
        }
    }

    /// Answers one event, by `deadline` when there is one.
    pub async fn handle(
        &self,
        event: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, InvocationError> {
        let answer = match Origin::of(&event) {
            Some(origin) => self.serve(origin, event, deadline).await,
            None => Ok(self
                .state
                .events
                .handle_notification(event, deadline)
                .await?),
        };
        // The environment may be frozen (or never thawed) once we answer: finish writing variants first.
        let wait = deadline.map_or(self.state.config.shutdown_grace(), |d| {
            d.saturating_duration_since(Instant::now())
        });
        if !self.state.variants.drain_write_backs(wait).await {
            tracing::warn!("invocation deadline reached with write-backs pending");
        }
        answer
    }

    async fn serve(
        &self,
        origin: Origin,
        event: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, InvocationError> {
        let malformed = |reason: String| InvocationError::MalformedHttpEvent {
            origin: origin.name(),
            reason,
        };
        let mut request = origin.request(event).map_err(malformed)?;
        if let Some(deadline) = deadline {
            request.extensions_mut().insert(Deadline(deadline));
        }
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
        let (parts, body) = response.into_parts();
        // Already whole and within MAX_BODY_BYTES (`http::buffer`); this only takes it out.
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|e| InvocationError::Response(e.to_string()))?;
        origin
            .response(parts, body)
            .map_err(|e| InvocationError::Response(e.to_string()))
    }
}

/// Which HTTP event source an event came from, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A Function URL or an API Gateway HTTP API: payload format 2.0.
    HttpApi,
    /// An API Gateway REST API: payload format 1.0.
    RestApi,
    /// An Application Load Balancer target group.
    Alb,
}

/// A request as every HTTP event carries it.
struct HttpParts {
    method: Method,
    raw_path: String,
    headers: HeaderMap,
    body: Option<String>,
    base64: bool,
}

impl Origin {
    /// `None`: not an HTTP event (a storage notification, or anything else).
    fn of(event: &Value) -> Option<Origin> {
        let context = event.get("requestContext")?;
        if context.get("elb").is_some() {
            Some(Origin::Alb)
        } else if context.get("http").is_some() {
            Some(Origin::HttpApi)
        } else if event.get("httpMethod").is_some() {
            Some(Origin::RestApi)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Origin::HttpApi => "Function URL / HTTP API",
            Origin::RestApi => "API Gateway REST",
            Origin::Alb => "ALB",
        }
    }

    fn parts(self, event: Value) -> Result<HttpParts, serde_json::Error> {
        Ok(match self {
            Origin::HttpApi => {
                let event: ApiGatewayV2httpRequest = serde_json::from_value(event)?;
                let mut headers = event.headers;
                // Payload 2.0 moves cookies out of the headers.
                if let Some(cookies) = event.cookies.filter(|c| !c.is_empty())
                    && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
                {
                    headers.insert(header::COOKIE, value);
                }
                HttpParts {
                    method: event.request_context.http.method,
                    raw_path: event.raw_path.unwrap_or_default(),
                    headers,
                    body: event.body,
                    base64: event.is_base64_encoded,
                }
            }
            Origin::RestApi => {
                let event: ApiGatewayProxyRequest = serde_json::from_value(event)?;
                HttpParts {
                    method: event.http_method,
                    raw_path: event.path.unwrap_or_default(),
                    headers: all_values(event.multi_value_headers, event.headers),
                    body: event.body,
                    base64: event.is_base64_encoded,
                }
            }
            Origin::Alb => {
                let event: AlbTargetGroupRequest = serde_json::from_value(event)?;
                HttpParts {
                    method: event.http_method,
                    raw_path: event.path.unwrap_or_default(),
                    headers: all_values(event.multi_value_headers, event.headers),
                    body: event.body,
                    base64: event.is_base64_encoded,
                }
            }
        })
    }

    fn request(self, event: Value) -> Result<Request<Body>, String> {
        let parts = self.parts(event).map_err(|e| e.to_string())?;
        let uri: Uri = request_path(&parts.raw_path)
            .parse()
            .map_err(|e| format!("path {:?}: {e}", parts.raw_path))?;
        let body = match parts.body {
            None => Body::empty(),
            Some(body) if parts.base64 => Body::from(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|e| format!("body is not base64: {e}"))?,
            ),
            Some(body) => Body::from(body),
        };
        let mut request = Request::new(body);
        *request.method_mut() = parts.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = parts.headers;
        Ok(request)
    }

    /// The response in this event source's shape.
    fn response(
        self,
        parts: axum::http::response::Parts,
        body: Bytes,
    ) -> Result<Value, serde_json::Error> {
        let status = parts.status;
        let (body, is_base64_encoded) = event_body(&parts.headers, body);
        match self {
            Origin::HttpApi => {
                let mut response = ApiGatewayV2httpResponse::default();
                response.status_code = status.as_u16().into();
                response.headers = joined(&parts.headers);
                response.body = body;
                response.is_base64_encoded = is_base64_encoded;
                serde_json::to_value(response)
            }
            Origin::RestApi => {
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = status.as_u16().into();
                // REST APIs merge `headers` into `multiValueHeaders`: one of them, or values come twice.
                response.multi_value_headers = parts.headers;
                response.body = body;
                response.is_base64_encoded = is_base64_encoded;
                serde_json::to_value(response)
            }
            Origin::Alb => {
                let mut response = AlbTargetGroupResponse::default();
                response.status_code = status.as_u16().into();
                response.status_description = Some(format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or_default()
                ));
                // A target group reads one or the other, as its multi-value setting says.
                response.headers = joined(&parts.headers);
                response.multi_value_headers = parts.headers;
                response.body = body;
                response.is_base64_encoded = is_base64_encoded;
                serde_json::to_value(response)
            }
        }
    }
}

/// API Gateway REST sends both `headers` (the last value of each) and `multiValueHeaders` (all of them);
/// an ALB sends one or the other, as its target group is set up. Take all values when there are any.
fn all_values(multi: HeaderMap, single: HeaderMap) -> HeaderMap {
    if multi.is_empty() { single } else { multi }
}

/// One value per name, repeated ones joined with commas (what single-value header maps expect).
fn joined(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(&values.join(&b", "[..])) {
            out.insert(name.clone(), value);
        }
    }
    out
}

/// JSON and text go back as text; everything else (images) base64-encoded.
fn event_body(headers: &HeaderMap, body: Bytes) -> (Option<EventBody>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let textual = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|t| t.starts_with("text/") || t == "application/json" || t.ends_with("+json"));
    if textual && let Ok(text) = std::str::from_utf8(&body) {
        return (Some(EventBody::Text(text.to_owned())), false);
    }
    (Some(EventBody::Binary(body.to_vec())), true)
}

/// The event's raw path as a request path: unchanged, except for the bytes a URI path cannot hold at all
/// (controls, space, `#`, `<`, `>`, `?`, backtick), which only a decoded path (API Gateway REST's `path`)
/// contains, and a missing leading `/`. The same bytes the server's HTTP parser would accept pass as they
/// are, so the router sees what it would see behind a listener.
fn request_path(raw: &str) -> String {
    let mut path = String::with_capacity(raw.len() + 1);
    if !raw.starts_with('/') {
        path.push('/');
    }
    for c in raw.chars() {
        if c.is_ascii_control() || matches!(c, ' ' | '#' | '<' | '>' | '?' | '`') {
            path.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            path.push(c);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_paths_reach_the_router_unchanged() {
        for raw in [
            "/w/100/images/a%20b.jpg",
            "/w/100/images/../images/path.jpg",
            "/w/100/a%2Fb/%2e%2e/c.jpg",
            "/w/300/a\\..\\b",
            "/w/100/images/caf\u{e9}.jpg",
            "/s/abc_-/w/1/{k}|\"x\"",
        ] {
            let path = request_path(raw);
            assert_eq!(path, raw);
            let uri: Uri = path.parse().unwrap();
            assert_eq!(uri.path(), raw);
        }
    }

    #[test]
    fn decoded_paths_are_encoded_only_where_a_uri_cannot_hold_them() {
        assert_eq!(
            request_path("/w/100/images/my photo?.jpg"),
            "/w/100/images/my%20photo%3F.jpg"
        );
        assert_eq!(request_path("x#\n"), "/x%23%0A");
        assert_eq!(request_path(""), "/");
    }

    #[test]
    fn events_are_told_apart_by_shape() {
        use serde_json::json;
        let http = json!({"method": "GET"});
        let cases = [
            (
                json!({"rawPath": "/", "requestContext": {"http": http}}),
                Some(Origin::HttpApi),
            ),
            (
                json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}}),
                Some(Origin::RestApi),
            ),
            (
                json!({"httpMethod": "GET", "requestContext": {"elb": {}}}),
                Some(Origin::Alb),
            ),
            (json!({"Records": [{"eventSource": "aws:s3"}]}), None),
            (
                json!({"detail-type": "Object Created", "source": "aws.s3"}),
                None,
            ),
        ];
        for (event, origin) in cases {
            assert_eq!(Origin::of(&event), origin, "{event}");
        }
    }

    #[test]
    fn multiple_values_are_joined_for_single_value_maps() {
        let mut headers = HeaderMap::new();
        headers.append(header::VARY, HeaderValue::from_static("Accept"));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(header::ETAG, HeaderValue::from_static("\"x\""));
        let one = joined(&headers);
        assert_eq!(one[header::VARY], "Accept, Origin");
        assert_eq!(one[header::ETAG], "\"x\"");
    }

    #[test]
    fn the_budget_ends_a_margin_before_the_deadline_and_ignores_a_past_one() {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let end = budget_end(now_ms + 10_000).unwrap();
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(9) && left > Duration::from_secs(8),
            "{left:?}"
        );
        assert_eq!(
            budget_end(now_ms + 500).map(|end| end <= Instant::now()),
            Some(true)
        );
        assert_eq!(budget_end(600_000), None);
    }
}
