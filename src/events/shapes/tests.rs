use super::*;

/// A fixture from `tests/fixtures/events/` with its placeholders filled in.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text.replace("{ns}", "ns").replace("{bucket}", "photos")).unwrap()
}

fn only_events(doc: &Value) -> Vec<ObjectEvent> {
    let messages = parse(doc).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id, None);
    messages[0].events.clone().unwrap()
}

const SPACED: &str = "ns/images/summer beach (1).jpg";

#[test]
fn direct_s3_records_decode_form_encoded_keys() {
    let events = only_events(&fixture("s3-put.json"));
    assert_eq!(
        events,
        vec![ObjectEvent {
            change: Change::Created,
            name: "ObjectCreated:Put".into(),
            bucket: "photos".into(),
            key: SPACED.into(),
            sequencer: Some("0055AED6DCD90281E5".into()),
        }]
    );
    let removed = only_events(&fixture("s3-delete.json"));
    assert_eq!(removed[0].change, Change::Removed);
    assert_eq!(removed[0].key, SPACED);
    let multipart = only_events(&fixture("s3-multipart.json"));
    assert_eq!(multipart[0].change, Change::Created);
}

#[test]
fn a_plus_in_a_key_is_a_space_and_an_escaped_plus_is_a_plus() {
    assert_eq!(form_decode("a+b%2Bc.jpg").unwrap(), "a b+c.jpg");
    assert_eq!(form_decode("caf%C3%A9.jpg").unwrap(), "café.jpg");
    assert!(form_decode("%FF.jpg").is_err());
}

#[test]
fn minio_webhook_events_decode_escaped_slashes_and_prefixed_names() {
    let events = only_events(&fixture("minio-put.json"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].change, Change::Created);
    assert_eq!(events[0].name, "s3:ObjectCreated:Put");
    assert_eq!(events[0].key, SPACED);
}

#[test]
fn the_s3_test_event_has_no_objects() {
    assert_eq!(only_events(&fixture("s3-test-event.json")), vec![]);
}

#[test]
fn sqs_batches_keep_one_unit_per_message() {
    let messages = parse(&fixture("sqs-s3.json")).unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[0].id.as_deref(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    let first = messages[0].events.as_ref().unwrap();
    assert_eq!(first[0].key, "ns/images/path.jpg");
    assert_eq!(first[0].name, "ObjectCreated:Post");
    assert_eq!(messages[1].events, Ok(vec![]), "the test event");
    assert_eq!(
        messages[2].events.as_ref().unwrap()[0].key,
        "ns/images/missing.jpg"
    );
}

#[test]
fn sns_messages_are_unwrapped_directly_and_through_sqs() {
    let direct = only_events(&fixture("sns-s3.json"));
    assert_eq!(direct[0].key, "ns/images/path.jpg");
    assert_eq!(direct[0].name, "ObjectCreated:Copy");
    let queued = parse(&fixture("sqs-sns-s3.json")).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].events.as_ref().unwrap(), &direct);
}

#[test]
fn eventbridge_keys_are_taken_as_they_are() {
    let created = only_events(&fixture("eventbridge-created.json"));
    assert_eq!(created[0].change, Change::Created);
    assert_eq!(created[0].key, SPACED);
    assert_eq!(created[0].bucket, "photos");
    let deleted = only_events(&fixture("eventbridge-deleted.json"));
    assert_eq!(deleted[0].change, Change::Removed);
}

#[test]
fn other_documents_are_refused_and_bad_messages_fail_alone() {
    for doc in [
        serde_json::json!({}),
        serde_json::json!({"Records": [{"eventSource": "aws:dynamodb"}]}),
        serde_json::json!({"requestContext": {"http": {"method": "GET"}}}),
        serde_json::json!([1, 2]),
    ] {
        assert!(parse(&doc).is_err(), "{doc}");
    }
    let batch = serde_json::json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "a", "body": "not json"},
        {"eventSource": "aws:sqs", "messageId": "b", "body": "{\"Event\": \"s3:TestEvent\"}"},
    ]});
    let messages = parse(&batch).unwrap();
    assert!(messages[0].events.is_err());
    assert_eq!(messages[1].events, Ok(vec![]));
}

#[test]
fn other_event_kinds_are_neither_created_nor_removed() {
    assert_eq!(change_of_record("ObjectRestore:Completed"), Change::Other);
    assert_eq!(change_of_record("ObjectTagging:Put"), Change::Other);
    assert_eq!(
        change_of_record("ObjectRemoved:DeleteMarkerCreated"),
        Change::Removed
    );
    assert_eq!(
        change_of_record("LifecycleExpiration:Delete"),
        Change::Removed
    );
}

#[test]
fn sequencers_compare_after_left_padding() {
    assert!(later("0055AED6DCD90281E6", "0055AED6DCD90281E5"));
    assert!(!later("0055AED6DCD90281E5", "0055AED6DCD90281E5"));
    // Different lengths: the shorter is left-padded with zeros.
    assert!(later("10", "F"));
    assert!(!later("F", "10"));
    assert!(later("0a", "09"), "case-insensitive hex");
}

#[test]
fn sequencers_of_any_length_compare_without_panicking() {
    let long = "F".repeat(70_000);
    assert!(later(&long, "F"));
    assert!(!later("F", &long));
    assert!(!later(&long, &long));
}

#[test]
fn an_overlong_or_non_hex_sequencer_refuses_the_document() {
    let mut doc = fixture("s3-put.json");
    doc["Records"][0]["s3"]["object"]["sequencer"] = Value::from("0".repeat(70_000));
    let error = parse(&doc).unwrap_err();
    assert!(error.contains("sequencer"), "{error}");
    doc["Records"][0]["s3"]["object"]["sequencer"] = Value::from("00-55");
    assert!(parse(&doc).is_err());
    doc["Records"][0]["s3"]["object"]["sequencer"] = Value::from("0".repeat(MAX_SEQUENCER_CHARS));
    assert!(parse(&doc).is_ok());
}
