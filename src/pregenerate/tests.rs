use super::*;
use crate::pipeline::Format;
use crate::store::memory::MemoryStore;

fn config(variants: &[&str]) -> Config {
    let mut config = Config::default();
    config.pregenerate.variants = variants.iter().map(|v| v.to_string()).collect();
    config
}

fn pregenerator(store: &Arc<MemoryStore>, config: &Config) -> Pregenerator {
    Pregenerator::new(
        config,
        &Settings::parse(config).unwrap(),
        Arc::clone(store) as Arc<dyn Store>,
        CpuPool::new(1, 4).unwrap(),
        Arc::new(Metrics::default()),
    )
}

fn jpeg(width: u32, height: u32, value: u8) -> Bytes {
    Bytes::from(pipeline::flat_image(Format::Jpeg, width, height, value))
}

async fn upload(store: &MemoryStore, key: &str, bytes: Bytes) {
    store
        .put(key, bytes, PutOptions::plain("image/jpeg"))
        .await
        .unwrap();
}

fn object(store: &MemoryStore, key: &str) -> Option<Bytes> {
    store.objects.lock().unwrap().get(key).cloned()
}

fn variant_keys(store: &MemoryStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("copy/"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

const SEED: [&str; 3] = ["w/300", "w/600", "w/900"];

#[tokio::test]
async fn every_variant_is_made_marked_and_a_duplicate_event_does_nothing() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "images/a.jpg", jpeg(1200, 800, 90)).await;
    let pre = pregenerator(&store, &config(&SEED));
    let outcome = pre.created("images/a.jpg", None).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Generated {
                written: 3,
                fresh: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        variant_keys(&store),
        [
            "copy/images/a.jpg/w300_q80",
            "copy/images/a.jpg/w600_q80",
            "copy/images/a.jpg/w900_q80"
        ]
    );
    for (key, width) in [("w300_q80", 300), ("w900_q80", 900)] {
        let key = format!("copy/images/a.jpg/{key}");
        let bytes = object(&store, &key).unwrap();
        assert_eq!(pipeline::probe::probe(&bytes).unwrap().width, width);
        assert!(store.head(&key).await.unwrap().marked, "{key} is marked");
    }
    assert_eq!(Metrics::get(&pre.metrics.original_fetches), 1, "one read");
    // At-least-once delivery: the same event again finds everything fresh and reads nothing.
    let again = pre.created("images/a.jpg", None).await.unwrap();
    assert_eq!(again, Outcome::UpToDate { fresh: 3 });
    assert_eq!(Metrics::get(&pre.metrics.original_fetches), 1);
}

#[tokio::test]
async fn a_replaced_original_gets_its_variants_remade() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "images/a.jpg", jpeg(1200, 800, 20)).await;
    let pre = pregenerator(&store, &config(&["w/300"]));
    pre.created("images/a.jpg", None).await.unwrap();
    upload(&store, "images/a.jpg", jpeg(1200, 800, 230)).await;
    let outcome = pre.created("images/a.jpg", None).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Generated { written: 1, .. }),
        "{outcome:?}"
    );
    let bytes = object(&store, "copy/images/a.jpg/w300_q80").unwrap();
    let pixel = image::load_from_memory(&bytes).unwrap().to_luma8()[(10, 10)][0];
    assert!(pixel > 200, "the new original's pixels: {pixel}");
}

#[tokio::test]
async fn the_loop_guard_ignores_our_own_outputs_whatever_their_key() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "images/a.jpg", jpeg(1200, 800, 90)).await;
    let pre = pregenerator(&store, &config(&SEED));
    pre.created("images/a.jpg", None).await.unwrap();
    let before = variant_keys(&store);
    for key in before.clone() {
        assert_eq!(
            pre.created(&key, None).await.unwrap(),
            Outcome::Ignored(Ignored::UnderCopyPrefix)
        );
        assert_eq!(
            pre.removed(&key).await.unwrap(),
            Outcome::Ignored(Ignored::UnderCopyPrefix)
        );
    }
    assert_eq!(variant_keys(&store), before, "nothing new, nothing removed");
    assert_eq!(Metrics::get(&pre.metrics.events_loop_guard), 6);
    // A variant copied outside the copy prefix still carries the mark: never an original.
    let variant = object(&store, &before[0]).unwrap();
    store
        .put(
            "images/copied.jpg",
            variant,
            PutOptions::variant("image/jpeg", None),
        )
        .await
        .unwrap();
    assert_eq!(
        pre.created("images/copied.jpg", None).await.unwrap(),
        Outcome::Ignored(Ignored::Marked)
    );
    assert_eq!(variant_keys(&store), before);
}

#[tokio::test]
async fn removal_deletes_every_variant_unless_the_original_is_back() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "images/a.jpg", jpeg(1200, 800, 90)).await;
    upload(&store, "images/a.jpg.png", jpeg(100, 100, 90)).await;
    let pre = pregenerator(&store, &config(&SEED));
    pre.created("images/a.jpg", None).await.unwrap();
    pre.created("images/a.jpg.png", None).await.unwrap();
    // Delivered out of order: "removed" while the original exists again keeps everything.
    assert_eq!(
        pre.removed("images/a.jpg").await.unwrap(),
        Outcome::Ignored(Ignored::StillThere)
    );
    store.delete("images/a.jpg").await.unwrap();
    assert_eq!(
        pre.removed("images/a.jpg").await.unwrap(),
        Outcome::Removed { removed: 3 }
    );
    // The neighbour whose key merely starts the same keeps its variants.
    assert_eq!(
        variant_keys(&store),
        [
            "copy/images/a.jpg.png/w300_q80",
            "copy/images/a.jpg.png/w600_q80",
            "copy/images/a.jpg.png/w900_q80"
        ]
    );
    // "Created" for an original that is gone by now: nothing made, nothing left.
    assert_eq!(
        pre.created("images/a.jpg", None).await.unwrap(),
        Outcome::Removed { removed: 0 }
    );
}

#[tokio::test]
async fn an_unreadable_original_is_refused_for_good_and_writes_nothing() {
    let store = Arc::new(MemoryStore::default());
    upload(
        &store,
        "images/bad.jpg",
        Bytes::from_static(b"\xFF\xD8\xFF garbage"),
    )
    .await;
    let pre = pregenerator(&store, &config(&SEED));
    let e = pre.created("images/bad.jpg", None).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(variant_keys(&store), Vec::<String>::new());
}

#[tokio::test]
async fn a_passed_deadline_is_retryable_and_writes_nothing() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "images/a.jpg", jpeg(1200, 800, 90)).await;
    let pre = pregenerator(&store, &config(&SEED));
    let past = Instant::now() - std::time::Duration::from_millis(1);
    let e = pre.created("images/a.jpg", Some(past)).await.unwrap_err();
    assert_eq!(e, PregenerateError::Deadline);
    assert!(e.is_retryable());
    assert_eq!(variant_keys(&store), Vec::<String>::new());
}

#[tokio::test]
async fn keys_outside_the_source_prefixes_are_not_originals() {
    let store = Arc::new(MemoryStore::default());
    upload(&store, "docs/a.jpg", jpeg(100, 100, 90)).await;
    let mut config = config(&SEED);
    config.keys.source_prefixes = vec!["images/".into()];
    let config = config.validate().unwrap();
    let pre = pregenerator(&store, &config);
    assert_eq!(
        pre.created("docs/a.jpg", None).await.unwrap(),
        Outcome::Ignored(Ignored::NotAnOriginal)
    );
    assert_eq!(variant_keys(&store), Vec::<String>::new());
}

#[test]
fn templates_use_the_url_vocabulary_and_give_the_http_keys() {
    let mut config = config(&["w/300", "p/thumb", "w/400/f/auto", "/w/300/"]);
    config.output.auto_formats = vec!["webp".into()];
    let rules = SpecRules::from_config(&config).unwrap();
    let templates = Templates::parse(&config.pregenerate.variants, &rules).unwrap();
    let keys: Vec<String> = templates
        .specs_for("images/a.jpg", &rules)
        .unwrap()
        .iter()
        .map(|s| s.variant_key("copy/"))
        .collect();
    assert_eq!(
        keys,
        [
            "copy/images/a.jpg/w300_h300_cover_q80",
            "copy/images/a.jpg/w300_q80",
            "copy/images/a.jpg/w400_q80",
            "copy/images/a.jpg/w400_q80.auto-webp",
        ],
        "each once; f/auto makes what negotiation can choose"
    );
    // The same options over HTTP name the same keys.
    for (path, key) in [
        ("/w/300/images/a.jpg", "copy/images/a.jpg/w300_q80"),
        (
            "/p/thumb/images/a.jpg",
            "copy/images/a.jpg/w300_h300_cover_q80",
        ),
    ] {
        let spec = VariantSpec::parse(path, &rules).unwrap();
        assert_eq!(spec.variant_key("copy/"), key);
    }
}

#[test]
fn bad_templates_are_refused_at_start_up_with_their_text() {
    for (template, why) in [
        ("w/abc", "'abc'"),
        ("images/a.jpg", "without a key"),
        ("w/300/images", "without a key"),
        ("", "without a key"),
        ("s/abc/w/300", "signatures"),
        ("w/300/exp/99", "exp"),
        ("p/nope", "nope"),
        ("w/99999", "maximum"),
    ] {
        let config = config(&[template]);
        let rules = SpecRules::from_config(&config).unwrap();
        let e = Templates::parse(&config.pregenerate.variants, &rules).unwrap_err();
        assert!(e.contains(template) && e.contains(why), "{template}: {e}");
    }
}
