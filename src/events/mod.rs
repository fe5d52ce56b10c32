//! Storage notifications → pre-generation. (Being built: the shapes of S3, SQS, SNS, EventBridge and MinIO
//! notifications, the loop guard, and one decode for every configured variant.)

use std::time::Instant;

/// Why a notification could not be handled at all (per-record failures are reported in the answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a storage notification this service understands: {0}")]
    Unrecognised(String),
}

/// The event side of the service, shared by `POST /events` and the Lambda runtime.
#[derive(Default)]
pub struct Events {}

impl Events {
    /// Handles one notification document (S3, SQS batch, SNS, EventBridge, MinIO webhook) and returns the
    /// JSON to answer with: for an SQS batch `{"batchItemFailures": [{"itemIdentifier": id}, ...]}` naming
    /// only the messages to retry; otherwise a summary. Finishes (or gives up, reporting failure) before
    /// `deadline`.
    pub async fn handle_notification(
        &self,
        event: serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<serde_json::Value, EventError> {
        let _ = deadline;
        Err(EventError::Unrecognised(
            event
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
        ))
    }
}
