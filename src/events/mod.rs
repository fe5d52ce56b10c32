//! Storage notifications → pre-generation, for `POST /events` and the Lambda runtime alike.
//!
//! A notification ([`shapes`]) becomes units of delivery (SQS messages, or the whole document), each a
//! list of object events. Within one notification, events for the same key are reduced to the latest by
//! S3's `sequencer` (a create and a delete of one key never race each other here); across notifications
//! the store's present state decides (see `pregenerate`). Distinct keys are worked on concurrently, the
//! CPU pool bounding the decoding.
//!
//! Failures are sorted by whether a retry can help: a store or pool failure, or a deadline, is reported
//! (an SQS message id in `batchItemFailures`, an error for a direct invocation, 503 for the webhook); an
//! original that can never be made into variants (undecodable, too large) is logged and counted, and the
//! event acknowledged, so a poison upload cannot cycle forever.

pub mod shapes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::pregenerate::{Ignored, Outcome, PregenerateError, Pregenerator};
use crate::telemetry::Metrics;
use crate::variants::Variants;
use shapes::{Change, Message, ObjectEvent};

/// Where an event sits in a notification: (message, event within the message).
type At = (usize, usize);

/// Why a notification could not be handled as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a storage notification this service understands: {0}")]
    Unrecognised(String),
    /// Some events failed in a way a retry can fix (store, pool, deadline); nothing was half-written.
    #[error("{failed} of {events} events failed and should be retried: {first}")]
    Retry {
        failed: usize,
        events: usize,
        first: String,
    },
}

/// The event side of the service, shared by `POST /events` and the Lambda runtime.
pub struct Events {
    pregenerator: Arc<Pregenerator>,
    variants: Variants,
    metrics: Arc<Metrics>,
    /// Events naming another bucket are not ours (S3 stores only; a directory store takes any).
    bucket: Option<String>,
    /// Keys worked on at once.
    concurrency: usize,
}

/// Tally of one notification.
#[derive(Debug, Default)]
struct Tally {
    events: usize,
    generated: usize,
    written: usize,
    up_to_date: usize,
    removed: usize,
    ignored: usize,
    refused: usize,
    failed: usize,
    first_failure: Option<String>,
}

impl Events {
    pub fn new(
        pregenerator: Arc<Pregenerator>,
        variants: Variants,
        metrics: Arc<Metrics>,
        bucket: Option<String>,
        concurrency: usize,
    ) -> Events {
        Events {
            pregenerator,
            variants,
            metrics,
            bucket,
            concurrency: concurrency.max(1),
        }
    }

    /// Handles one notification document (S3, SQS batch, SNS, EventBridge, MinIO webhook) and returns the
    /// JSON to answer with: for an SQS batch `{"batchItemFailures": [{"itemIdentifier": id}, ...]}` naming
    /// only the messages to retry; otherwise a summary, or [`EventError::Retry`] when a retry is needed.
    /// Work not started before `deadline` is reported as failed, never begun.
    pub async fn handle_notification(
        &self,
        document: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, EventError> {
        let messages = shapes::parse(&document).map_err(EventError::Unrecognised)?;
        let batch = messages.iter().any(|m| m.id.is_some());
        let results = self.run(&messages, deadline).await;
        let mut tally = Tally::default();
        let mut retry_ids = Vec::new();
        for (message, outcomes) in messages.iter().zip(results) {
            let mut retry = false;
            match outcomes {
                Err(why) => {
                    tracing::warn!(message = ?message.id, error = why, "unreadable notification message");
                    Metrics::add(&self.metrics.event_failures);
                    tally.failed += 1;
                    tally.first_failure.get_or_insert(why);
                    retry = true;
                }
                Ok(outcomes) => {
                    for outcome in outcomes {
                        retry |= tally.add(outcome, &self.metrics);
                    }
                }
            }
            if retry && let Some(id) = &message.id {
                retry_ids.push(json!({ "itemIdentifier": id }));
            }
        }
        if batch {
            return Ok(json!({ "batchItemFailures": retry_ids }));
        }
        if tally.failed > 0 {
            return Err(EventError::Retry {
                failed: tally.failed,
                events: tally.events,
                first: tally.first_failure.unwrap_or_default(),
            });
        }
        Ok(tally.summary())
    }

    /// Works on every message's events, each key once (its latest event), `concurrency` keys at a time;
    /// returns, per message, the outcome of each of its events.
    async fn run(
        &self,
        messages: &[Message],
        deadline: Option<Instant>,
    ) -> Vec<Result<Vec<Result<Outcome, PregenerateError>>, String>> {
        // The latest event of each (bucket, key) across the notification, by sequencer.
        let mut latest: HashMap<(&str, &str), (At, &ObjectEvent)> = HashMap::new();
        for (m, message) in messages.iter().enumerate() {
            for (e, event) in message.events.iter().flatten().enumerate() {
                let slot = latest
                    .entry((event.bucket.as_str(), event.key.as_str()))
                    .or_insert(((m, e), event));
                if is_later(event, slot.1) {
                    *slot = ((m, e), event);
                }
            }
        }
        let work: Vec<(At, ObjectEvent)> = latest
            .into_values()
            .map(|(at, event)| (at, event.clone()))
            .collect();
        let mut done: HashMap<At, Result<Outcome, PregenerateError>> =
            futures_util::stream::iter(work)
                .map(|(at, event)| async move { (at, self.handle_event(&event, deadline).await) })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        messages
            .iter()
            .enumerate()
            .map(|(m, message)| {
                let events = message.events.as_ref().map_err(Clone::clone)?;
                Ok((0..events.len())
                    .map(|e| {
                        done.remove(&(m, e))
                            // Superseded by a later event for the same key, which was worked on.
                            .unwrap_or(Ok(Outcome::Ignored(Ignored::Superseded)))
                    })
                    .collect())
            })
            .collect()
    }

    async fn handle_event(
        &self,
        event: &ObjectEvent,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PregenerateError> {
        Metrics::add(&self.metrics.events);
        // An event that names no bucket is no proof it is about ours: ignored like another bucket's.
        if let Some(bucket) = &self.bucket
            && &event.bucket != bucket
        {
            tracing::warn!(
                event_bucket = event.bucket,
                bucket,
                key = event.key,
                "event for another bucket ignored"
            );
            return Ok(Outcome::Ignored(Ignored::NotAnOriginal));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PregenerateError::Deadline);
        }
        let outcome = match event.change {
            Change::Created => self.pregenerator.created(&event.key, deadline).await,
            Change::Removed => self.pregenerator.removed(&event.key).await,
            Change::Other => return Ok(Outcome::Ignored(Ignored::NotAnOriginal)),
        };
        if matches!(
            outcome,
            Ok(Outcome::Generated { .. } | Outcome::Removed { .. })
        ) {
            // The memory tier must not keep serving what the store no longer has.
            self.variants.forget_original(&event.key);
        }
        tracing::info!(event = event.name, key = event.key, outcome = ?outcome, "storage event");
        outcome
    }
}

/// Whether `a` happened after `b` (both for one key): by sequencer when both have one; otherwise the
/// later in the notification wins.
fn is_later(a: &ObjectEvent, b: &ObjectEvent) -> bool {
    match (&a.sequencer, &b.sequencer) {
        (Some(a), Some(b)) => shapes::later(a, b),
        _ => true,
    }
}

impl Tally {
    /// Counts one event's outcome; returns whether its message must be retried.
    fn add(&mut self, outcome: Result<Outcome, PregenerateError>, metrics: &Metrics) -> bool {
        self.events += 1;
        match outcome {
            Ok(Outcome::Generated { written, .. }) => {
                self.generated += 1;
                self.written += written;
            }
            Ok(Outcome::UpToDate { .. }) => self.up_to_date += 1,
            Ok(Outcome::Removed { .. }) => self.removed += 1,
            Ok(Outcome::Ignored(reason)) => {
                if reason == Ignored::NotAnOriginal {
                    Metrics::add(&metrics.events_ignored);
                }
                self.ignored += 1;
            }
            Err(e) if e.is_retryable() => {
                Metrics::add(&metrics.event_failures);
                self.failed += 1;
                self.first_failure.get_or_insert(e.to_string());
                return true;
            }
            Err(e) => {
                Metrics::add(&metrics.event_failures);
                tracing::warn!(error = %e, "original refused for pre-generation; not retried");
                self.refused += 1;
            }
        }
        false
    }

    fn summary(&self) -> Value {
        json!({
            "events": self.events,
            "generated": self.generated,
            "variants_written": self.written,
            "up_to_date": self.up_to_date,
            "removed": self.removed,
            "ignored": self.ignored,
            "refused": self.refused,
            "failed": self.failed,
        })
    }
}
