//! The JSON shapes storage notifications arrive in, reduced to [`ObjectEvent`]s:
//!
//! - S3 event notifications (`{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`), sent to Lambda
//!   directly, as an SQS message body, or inside an SNS message. Keys are form-URL-encoded (`+` is a
//!   space).
//! - MinIO's webhook and queue targets: the same records (`eventSource: "minio:s3"`, event names prefixed
//!   `s3:`) with `EventName` and `Key` beside them; keys are query-escaped, `/` included (`%2F`).
//! - SQS batches (`eventSource: "aws:sqs"`): each message is a unit of retry, its body one of these
//!   documents.
//! - SNS (`EventSource: "aws:sns"`, or an SNS envelope `{"Type": "Notification", "Message": "..."}` in an
//!   SQS body): the message is one of these documents.
//! - EventBridge (`"source": "aws.s3"`, `"detail-type": "Object Created" | "Object Deleted"`); keys are
//!   not encoded there.
//! - `s3:TestEvent`, which S3 sends once when a notification is configured: no objects, success.

use serde_json::Value;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `ObjectCreated:*` (Put, Post, Copy, CompleteMultipartUpload) or EventBridge "Object Created".
    Created,
    /// `ObjectRemoved:*`, `LifecycleExpiration:*` or EventBridge "Object Deleted".
    Removed,
    /// Anything else (restores, replication, tagging): acknowledged, nothing to do.
    Other,
}

/// One object event, key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub change: Change,
    /// The event's name as sent (`ObjectCreated:Put`, `Object Deleted`).
    pub name: String,
    pub bucket: String,
    pub key: String,
    /// S3's per-key ordering token (hex), when the event has one.
    pub sequencer: Option<String>,
}

/// A unit of delivery and retry: one SQS message, or the whole document otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The SQS message id, reported back when the message must be retried.
    pub id: Option<String>,
    /// Its object events (none for a test event), or why it could not be read.
    pub events: Result<Vec<ObjectEvent>, String>,
}

/// Splits a notification into its units of delivery; `Err` when it is no storage notification at all.
pub fn parse(document: &Value) -> Result<Vec<Message>, String> {
    let records = document.get("Records").and_then(Value::as_array);
    if let Some(records) = records
        && !records.is_empty()
        && records.iter().all(|r| r["eventSource"] == "aws:sqs")
    {
        return Ok(records
            .iter()
            .map(|record| Message {
                id: record["messageId"].as_str().map(str::to_string),
                events: match record["body"].as_str() {
                    Some(body) => serde_json::from_str::<Value>(body)
                        .map_err(|e| format!("SQS message body is not JSON: {e}"))
                        .and_then(|doc| objects_in(&doc)),
                    None => Err("SQS message has no body".into()),
                },
            })
            .collect());
    }
    Ok(vec![Message {
        id: None,
        events: Ok(objects_in(document)?),
    }])
}

/// The object events of one document (S3, MinIO, SNS, EventBridge or a test event).
fn objects_in(document: &Value) -> Result<Vec<ObjectEvent>, String> {
    if document["Event"] == "s3:TestEvent" {
        return Ok(Vec::new());
    }
    // An SNS envelope, as SNS delivers to SQS without raw message delivery.
    if document["Type"] == "Notification"
        && let Some(message) = document["Message"].as_str()
    {
        return embedded(message, "SNS message");
    }
    if document["source"] == "aws.s3"
        && let Some(detail_type) = document["detail-type"].as_str()
    {
        return eventbridge(detail_type, &document["detail"]).map(|e| vec![e]);
    }
    let Some(records) = document.get("Records").and_then(Value::as_array) else {
        return Err(
            "expected an S3, SNS, SQS, EventBridge or MinIO notification (no Records, no detail-type)"
                .into(),
        );
    };
    let mut events = Vec::new();
    for record in records {
        if record["EventSource"] == "aws:sns" {
            let message = record["Sns"]["Message"]
                .as_str()
                .ok_or("SNS record without Sns.Message")?;
            events.extend(embedded(message, "SNS message")?);
        } else if record.get("s3").is_some() {
            events.push(s3_record(record)?);
        } else {
            return Err(format!(
                "record from {} is not an S3 event",
                record["eventSource"]
                    .as_str()
                    .or(record["EventSource"].as_str())
                    .unwrap_or("an unknown source")
            ));
        }
    }
    Ok(events)
}

fn embedded(text: &str, what: &str) -> Result<Vec<ObjectEvent>, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| format!("{what} is not JSON: {e}"))?;
    objects_in(&document)
}

fn s3_record(record: &Value) -> Result<ObjectEvent, String> {
    let name = record["eventName"]
        .as_str()
        .ok_or("S3 record without eventName")?;
    let s3 = &record["s3"];
    let raw_key = s3["object"]["key"]
        .as_str()
        .ok_or("S3 record without s3.object.key")?;
    Ok(ObjectEvent {
        change: change_of_record(name),
        name: name.to_string(),
        bucket: s3["bucket"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        key: form_decode(raw_key)?,
        sequencer: sequencer(&s3["object"]["sequencer"])?,
    })
}

fn change_of_record(name: &str) -> Change {
    // MinIO prefixes names with `s3:`.
    let name = name.strip_prefix("s3:").unwrap_or(name);
    if name.starts_with("ObjectCreated:") {
        Change::Created
    } else if name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:") {
        Change::Removed
    } else {
        Change::Other
    }
}

fn eventbridge(detail_type: &str, detail: &Value) -> Result<ObjectEvent, String> {
    let key = detail["object"]["key"]
        .as_str()
        .ok_or("EventBridge S3 event without detail.object.key")?;
    Ok(ObjectEvent {
        change: match detail_type {
            "Object Created" => Change::Created,
            "Object Deleted" => Change::Removed,
            _ => Change::Other,
        },
        name: detail_type.to_string(),
        bucket: detail["bucket"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        key: key.to_string(),
        sequencer: sequencer(&detail["object"]["sequencer"])?,
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then `%XX` escapes (MinIO's `%2F` too).
fn form_decode(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {raw:?} is not UTF-8 once decoded"))
}

/// Longest `sequencer` accepted. S3's are 16 to 20 hex digits; a longer one is no S3 event, and the
/// document carrying it is refused (400 over HTTP) rather than compared at any length.
pub const MAX_SEQUENCER_CHARS: usize = 64;

/// The event's `sequencer`, if any: bounded and plain hex digits, as S3 sends them.
fn sequencer(value: &Value) -> Result<Option<String>, String> {
    let Some(sequencer) = value.as_str() else {
        return Ok(None);
    };
    if sequencer.len() > MAX_SEQUENCER_CHARS || !sequencer.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "sequencer is not a hex string of at most {MAX_SEQUENCER_CHARS} digits ({} characters)",
            sequencer.chars().count()
        ));
    }
    Ok(Some(sequencer.to_string()))
}

/// Whether sequencer `a` is later than `b`. S3's rule: left-pad the shorter with zeros, then compare
/// (hex digits, in either case). Compared in place, whatever the lengths: `format!`'s padding width
/// panics past 65535.
pub fn later(a: &str, b: &str) -> bool {
    fn padded(s: &str, width: usize) -> impl Iterator<Item = u8> + '_ {
        std::iter::repeat_n(b'0', width - s.len()).chain(s.bytes().map(|c| c.to_ascii_uppercase()))
    }
    let width = a.len().max(b.len());
    padded(a, width).gt(padded(b, width))
}

#[cfg(test)]
mod tests;
