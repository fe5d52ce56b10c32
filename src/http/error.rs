//! The one place errors become HTTP statuses. Every error answer is a short JSON body
//! `{"error": "...", "status": N}`; client mistakes are 4xx and never 500.

use std::any::Any;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::budget::BudgetError;
use crate::events::EventError;
use crate::options::UrlError;
use crate::pipeline::PipelineError;
use crate::pool::PoolError;
use crate::store::StoreError;
use crate::variants::VariantError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Variant(#[from] VariantError),
    #[error("method not allowed: use GET or HEAD")]
    MethodNotAllowed,
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// Readiness: the store does not answer.
    #[error("not ready: {0}")]
    NotReady(StoreError),
    #[error("missing bearer token: send Authorization: Bearer <events.webhook_token>")]
    TokenMissing,
    #[error("wrong bearer token")]
    TokenWrong,
    /// The request body did not arrive whole within `server.body_read_timeout_ms`.
    #[error("the request body did not arrive within {0} ms")]
    BodyTimeout(u64),
    #[error("event body is above {0} bytes")]
    EventTooLarge(usize),
    #[error("event body is not JSON: {0}")]
    EventNotJson(String),
    #[error(transparent)]
    Event(#[from] EventError),
    /// The answer would not fit a buffered AWS Lambda response (see `http::buffer`).
    #[error(
        "the response is larger than {0} bytes, the most an AWS Lambda function can answer with \
         (6 MB once base64-encoded): ask for a smaller size, a lower quality or a denser format"
    )]
    ResponseTooLarge(usize),
}

/// Seconds a client should wait after a 503.
const RETRY_AFTER_SECS: &str = "1";

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Url(e) => match e {
                UrlError::NoRoute => StatusCode::NOT_FOUND,
                UrlError::SignatureRequired | UrlError::SignatureInvalid => StatusCode::FORBIDDEN,
                UrlError::Expired(_) => StatusCode::GONE,
                UrlError::KeyTooLong { .. } => StatusCode::URI_TOO_LONG,
                _ => StatusCode::BAD_REQUEST,
            },
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TokenMissing => StatusCode::UNAUTHORIZED,
            AppError::TokenWrong => StatusCode::FORBIDDEN,
            AppError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::EventTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::EventNotJson(_) | AppError::Event(EventError::Unrecognised(_)) => {
                StatusCode::BAD_REQUEST
            }
            // The work can succeed when sent again; the sender (MinIO, a queue) retries on 5xx.
            AppError::Event(EventError::Retry { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::ResponseTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Variant(e) => match e {
                VariantError::OriginalNotFound(_) | VariantError::OriginalIsVariant(_) => {
                    StatusCode::NOT_FOUND
                }
                VariantError::SourceTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                // Refused, reset, an error reply, a body cut short: the store failed us.
                VariantError::Store(StoreError::NotFound | StoreError::Failed(_)) => {
                    StatusCode::BAD_GATEWAY
                }
                // S3's 503 `SlowDown` outlasted the retries: the same request can succeed a little later.
                VariantError::Store(StoreError::Throttled(_)) => StatusCode::SERVICE_UNAVAILABLE,
                // Accepted and never answered (or a body that stalled), on every attempt.
                VariantError::Store(StoreError::TimedOut(_)) => StatusCode::GATEWAY_TIMEOUT,
                VariantError::Pipeline(p) => match p {
                    PipelineError::TooManyPixels { .. }
                    | PipelineError::TooManyFrames { .. }
                    | PipelineError::TooManyScans { .. }
                    | PipelineError::AnimationTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    // The URL asked for too large an output: the client's to change.
                    PipelineError::OutputTooLarge { .. } | PipelineError::AvifTooLarge { .. } => {
                        StatusCode::BAD_REQUEST
                    }
                    PipelineError::Unsupported | PipelineError::UnsupportedVariant(_) => {
                        StatusCode::UNSUPPORTED_MEDIA_TYPE
                    }
                    PipelineError::Undecodable(_) | PipelineError::Encode(_) => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    PipelineError::DeadlinePassed => StatusCode::GATEWAY_TIMEOUT,
                },
                VariantError::Pool(PoolError::Overloaded(_)) => StatusCode::SERVICE_UNAVAILABLE,
                VariantError::Budget(BudgetError::Busy(_)) => StatusCode::SERVICE_UNAVAILABLE,
                VariantError::Budget(BudgetError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
                VariantError::Pool(PoolError::Panicked(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// What the client is told. Store failures are detailed in the log only.
    fn public_message(&self) -> String {
        match self {
            AppError::Variant(VariantError::Store(StoreError::Throttled(_))) => {
                "the image store asked us to slow down; retry shortly".into()
            }
            AppError::Variant(VariantError::Store(StoreError::TimedOut(_))) => {
                "the image store did not answer in time".into()
            }
            AppError::Variant(VariantError::Store(_)) => {
                "the image store failed or could not be reached".into()
            }
            AppError::NotReady(_) => "the image store is not reachable".into(),
            AppError::Event(EventError::Retry { failed, events, .. }) => {
                format!("{failed} of {events} events failed; send the notification again")
            }
            AppError::Variant(VariantError::Pool(PoolError::Panicked(_))) => {
                "internal error".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut response = error_body(status, &self.public_message());
        let headers = response.headers_mut();
        match self {
            AppError::Variant(VariantError::Pool(PoolError::Overloaded(_)))
            | AppError::Variant(VariantError::Budget(BudgetError::Busy(_)))
            | AppError::Variant(VariantError::Store(StoreError::Throttled(_)))
            | AppError::NotReady(_)
            | AppError::Event(EventError::Retry { .. }) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            AppError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            AppError::TokenMissing => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body may still be on its way: this connection can carry no next request.
            AppError::BodyTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (
        status,
        // Messages can quote the request (a key, a value); no browser may sniff one into a document, or
        // run anything in it if opened directly.
        [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, super::headers::SANDBOX_CSP),
        ],
        Json(serde_json::json!({ "error": message, "status": status.as_u16() })),
    )
        .into_response()
}

/// A panic anywhere in a handler still answers with the JSON error shape.
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error_body(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(e: impl Into<AppError>) -> u16 {
        e.into().status().as_u16()
    }

    #[test]
    fn client_mistakes_are_4xx_and_store_trouble_is_5xx() {
        assert_eq!(status_of(UrlError::Repeated("w")), 400);
        assert_eq!(
            status_of(UrlError::UnderCopyPrefix("copy/x".into(), "copy/".into())),
            400
        );
        assert_eq!(status_of(UrlError::NoRoute), 404);
        assert_eq!(status_of(UrlError::SignatureRequired), 403);
        assert_eq!(status_of(UrlError::SignatureInvalid), 403);
        assert_eq!(status_of(UrlError::Expired(1)), 410);
        let too_long = UrlError::KeyTooLong {
            what: "key",
            bytes: 892,
            limit: 891,
        };
        assert_eq!(status_of(too_long), 414);
        assert_eq!(status_of(UrlError::OnlyPresets), 400);
        let too_big = PipelineError::OutputTooLarge {
            width: 1,
            height: 1,
            pixels: 1,
            limit: 0,
        };
        assert_eq!(status_of(VariantError::Pipeline(too_big)), 400);
        assert_eq!(status_of(VariantError::OriginalNotFound("x".into())), 404);
        assert_eq!(
            status_of(VariantError::SourceTooLarge { size: 2, limit: 1 }),
            413
        );
        let too_many = PipelineError::TooManyPixels {
            width: 1,
            height: 1,
            pixels: 1,
            limit: 0,
        };
        assert_eq!(status_of(VariantError::Pipeline(too_many)), 413);
        assert_eq!(
            status_of(VariantError::Pipeline(PipelineError::Unsupported)),
            415
        );
        assert_eq!(
            status_of(VariantError::Pipeline(PipelineError::Undecodable(
                "eof".into()
            ))),
            422
        );
        assert_eq!(
            status_of(VariantError::Store(StoreError::Failed("down".into()))),
            502
        );
        assert_eq!(
            status_of(VariantError::Store(StoreError::Throttled(
                "SlowDown".into()
            ))),
            503
        );
        assert_eq!(
            status_of(VariantError::Store(StoreError::TimedOut("no reply".into()))),
            504
        );
        assert_eq!(
            status_of(VariantError::Pipeline(PipelineError::DeadlinePassed)),
            504
        );
        assert_eq!(status_of(AppError::Timeout(10)), 504);
        assert_eq!(status_of(VariantError::Pool(PoolError::Overloaded(2))), 503);
        assert_eq!(status_of(AppError::MethodNotAllowed), 405);
        assert_eq!(status_of(AppError::BodyTimeout(10)), 408);
        assert_eq!(status_of(AppError::ResponseTooLarge(6)), 413);
    }

    #[test]
    fn errors_are_json_that_no_browser_sniffs_into_a_document() {
        let e = AppError::from(VariantError::OriginalNotFound(
            "<script>alert(1)</script>.jpg".into(),
        ));
        let response = e.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; sandbox"
        );
    }

    #[test]
    fn overload_and_throttling_say_when_to_retry() {
        let response = AppError::from(VariantError::Pool(PoolError::Overloaded(2))).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let throttled = VariantError::Store(StoreError::Throttled("SlowDown".into()));
        let response = AppError::from(throttled).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let failed = VariantError::Store(StoreError::Failed("reset".into()));
        let response = AppError::from(failed).into_response();
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn store_details_stay_out_of_the_body() {
        let e = AppError::from(VariantError::Store(StoreError::Failed(
            "secret-host:9000 refused".into(),
        )));
        assert!(!e.public_message().contains("secret-host"));
        let e = AppError::NotReady(StoreError::Failed("secret-host:9000 refused".into()));
        assert!(!e.public_message().contains("secret-host"));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
