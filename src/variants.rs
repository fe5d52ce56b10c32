//! The tiers a variant is served from, fastest first: memory cache → the variant object under the copy
//! prefix → computed from the original. Concurrent misses of one variant share one resolution (one copy
//! read, one original read, one decode, one write). A computed variant is written back in the background.
//!
//! Knows nothing of HTTP. Never reads anything under the copy prefix as an original: `spec` guarantees
//! `VariantSpec::source` is outside it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use moka::future::Cache;
use tokio_util::task::TaskTracker;

use crate::budget::Reservation;
use crate::coalesce::Coalescer;
use crate::config::Config;
use crate::originals::{Decoded, Originals};
use crate::pipeline::{self, Format, Timings};
use crate::pool::{CpuPool, PoolError};
use crate::spec::{JobLimits, VariantSpec};
use crate::store::{ByteStream, PutOptions, Store, StoreError, StoredObject};
use crate::telemetry::{CacheSize, Gauges, Metrics};
pub use crate::tier::Tier;
pub use crate::variant_error::VariantError;

/// What is known of a variant without its body.
#[derive(Debug, Clone)]
pub struct VariantHead {
    pub format: Format,
    pub len: u64,
    pub width: u32,
    pub height: u32,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
}

/// An encoded variant held whole, as the memory cache keeps it.
#[derive(Debug)]
pub struct Variant {
    pub head: VariantHead,
    pub bytes: Bytes,
    /// How long making it took, when this process made it.
    pub timing: Option<Timing>,
    /// The ETag of the original it was made from, when this process made it.
    pub source_etag: Option<String>,
}

/// Where a computed variant's time went: reading the original, then the pipeline's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub fetch: Duration,
    pub stages: Timings,
}

impl Variant {
    fn new(
        bytes: Bytes,
        format: Format,
        width: u32,
        height: u32,
        last_modified: Option<SystemTime>,
    ) -> Variant {
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&bytes));
        let head = VariantHead {
            format,
            len: bytes.len() as u64,
            width,
            height,
            etag: Some(etag),
            last_modified,
        };
        Variant {
            head,
            bytes,
            timing: None,
            source_etag: None,
        }
    }

    /// A variant read back from the store; `None` when the object is not an image we could have written.
    fn from_stored(bytes: Bytes, last_modified: Option<SystemTime>) -> Option<Variant> {
        let info = pipeline::probe::probe(&bytes).ok()?;
        let format = info.format.output()?;
        Some(Variant::new(
            bytes,
            format,
            info.width,
            info.height,
            last_modified,
        ))
    }
}

pub enum Body {
    Whole(Bytes),
    Stream(ByteStream),
}

/// A variant on its way to the client.
pub struct Served {
    pub tier: Tier,
    pub head: VariantHead,
    pub body: Body,
    /// Set when this response computed the variant.
    pub timing: Option<Timing>,
}

impl Served {
    fn whole(variant: &Variant, tier: Tier) -> Served {
        Served {
            tier,
            head: variant.head.clone(),
            body: Body::Whole(variant.bytes.clone()),
            timing: variant.timing.filter(|_| tier == Tier::Computed),
        }
    }
}

/// How a coalesced miss ended: a variant every waiter can share, or one too large to hold in memory,
/// which each waiter streams from the copy tier itself.
#[derive(Clone)]
enum Resolved {
    Whole(Arc<Variant>, Tier),
    LargeInCopy,
}

/// Cheap to clone: clones share the caches and the store.
#[derive(Clone)]
pub struct Variants {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    memory: Option<Cache<String, Arc<Variant>>>,
    flights: Arc<Coalescer<Result<Resolved, VariantError>>>,
    pool: CpuPool,
    write_backs: TaskTracker,
    metrics: Arc<Metrics>,
    originals: Originals,
    copy_prefix: String,
    max_item_bytes: u64,
    limits: JobLimits,
    timeout: Duration,
}

impl Variants {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        pool: CpuPool,
        metrics: Arc<Metrics>,
    ) -> Variants {
        let memory = (config.cache.max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(config.cache.max_bytes)
                .weigher(|key: &String, v: &Arc<Variant>| {
                    u32::try_from(key.len() + v.bytes.len()).unwrap_or(u32::MAX)
                })
                .support_invalidation_closures()
                .build()
        });
        let inner = Inner {
            memory,
            flights: Coalescer::new(),
            originals: Originals::new(
                config,
                Arc::clone(&store),
                pool.clone(),
                Arc::clone(&metrics),
            ),
            store,
            pool,
            write_backs: TaskTracker::new(),
            metrics,
            copy_prefix: config.keys.copy_prefix.clone(),
            max_item_bytes: config.cache.max_item_bytes,
            limits: JobLimits::from_config(config),
            timeout: config.request_timeout(),
        };
        Variants {
            inner: Arc::new(inner),
        }
    }

    /// The variant for `spec`, from the fastest tier that has it.
    pub async fn get(&self, spec: &VariantSpec) -> Result<Served, VariantError> {
        let inner = &self.inner;
        let key = spec.variant_key(&inner.copy_prefix);
        if let Some(memory) = &inner.memory
            && let Some(variant) = memory.get(&key).await
        {
            Metrics::add(&inner.metrics.served_memory);
            return Ok(Served::whole(&variant, Tier::Memory));
        }
        let work = Arc::clone(inner).resolve_miss(spec.clone(), key.clone());
        let on_panic = |msg| Err(VariantError::Pool(PoolError::Panicked(msg)));
        match inner.flights.run(&key, work, on_panic).await? {
            Resolved::Whole(variant, tier) => {
                Metrics::add(if tier == Tier::Copy {
                    &inner.metrics.served_copy
                } else {
                    &inner.metrics.served_computed
                });
                Ok(Served::whole(&variant, tier))
            }
            Resolved::LargeInCopy => {
                let object = inner.store.get(&key).await?;
                let served = stream_stored(object).await?;
                Metrics::add(&inner.metrics.served_copy);
                Ok(served)
            }
        }
    }

    /// Drops every variant of `source` from the memory cache, and whatever is kept of the original itself:
    /// it changed or went away.
    pub fn forget_original(&self, source: &str) {
        self.inner.originals.forget(source);
        if let Some(memory) = &self.inner.memory {
            let (copy_prefix, source) = (self.inner.copy_prefix.clone(), source.to_string());
            // Only fails when the cache was built without invalidation closures, which `new` enables.
            let _ = memory.invalidate_entries_if(move |key, _| {
                crate::spec::is_variant_of(&copy_prefix, &source, key)
            });
        }
    }

    /// Waits up to `grace` for background write-backs; returns whether all finished.
    pub async fn drain_write_backs(&self, grace: Duration) -> bool {
        let tracker = &self.inner.write_backs;
        tracker.close();
        let pending = tracker.len();
        if pending > 0 {
            tracing::info!(pending, "waiting for variant write-backs");
        }
        tokio::time::timeout(grace, tracker.wait()).await.is_ok()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// `/metrics`: the counters and histograms, with the gauges (pool, memory budget, caches) read now.
    pub async fn render_metrics(&self) -> String {
        let inner = &self.inner;
        let memory_cache = match &inner.memory {
            Some(memory) => {
                // moka applies inserts and evictions to its counts lazily: settle them first.
                memory.run_pending_tasks().await;
                CacheSize {
                    bytes: memory.weighted_size(),
                    entries: memory.entry_count(),
                }
            }
            None => CacheSize::default(),
        };
        let originals_cache = inner.originals.cache_size().await;
        let (stats, budget) = (inner.pool.stats(), inner.pool.budget());
        inner.metrics.render(&Gauges {
            budget_total: budget.total(),
            budget_in_use: budget.in_use(),
            budget_queued: budget.queued(),
            budget_wait: budget.waits(),
            budget_refusals: budget.refused().map(|(why, n)| (why.label(), n)),
            pool_queued: stats.queued(),
            pool_running: stats.running(),
            queue_wait: &stats.wait,
            memory_cache,
            originals_cache,
        })
    }

    /// Whether the store answers within `within` (readiness; a store that hangs counts as down).
    pub async fn check_store(&self, within: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(within, self.inner.store.check()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Failed(format!(
                "no answer within {} ms",
                within.as_millis()
            ))),
        }
    }
}

impl Inner {
    async fn resolve_miss(
        self: Arc<Self>,
        spec: VariantSpec,
        key: String,
    ) -> Result<Resolved, VariantError> {
        match self.store.get(&key).await {
            Ok(object) if object.size > self.max_item_bytes => return Ok(Resolved::LargeInCopy),
            Ok(object) => {
                let last_modified = object.last_modified;
                match Variant::from_stored(object.read_all().await?, last_modified) {
                    Some(variant) => {
                        let variant = Arc::new(variant);
                        self.remember(&key, &variant).await;
                        return Ok(Resolved::Whole(variant, Tier::Copy));
                    }
                    // Not an image: a damaged object. Compute it afresh; the write-back replaces it.
                    None => {
                        tracing::warn!(key, "stored variant is not a readable image; recomputing")
                    }
                }
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let (variant, held) = self.compute(&spec).await?;
        let variant = Arc::new(variant);
        self.remember(&key, &variant).await;
        self.write_back(key, Arc::clone(&variant), held);
        Ok(Resolved::Whole(variant, Tier::Computed))
    }

    /// Makes the variant; returns it with the part of its job's reservation that covers its bytes until
    /// they are written back.
    async fn compute(&self, spec: &VariantSpec) -> Result<(Variant, Reservation), VariantError> {
        let deadline = Instant::now() + self.timeout;
        let job = spec.job(&self.limits, Some(deadline));
        // The reservation covers the whole job (see `pipeline::memory`): held until the render is done.
        let prepared = self.originals.prepare(&spec.source, &job, deadline).await?;
        let (source, decoded) = (Arc::clone(&prepared.source), prepared.decoded.clone());
        let encoded = self
            .pool
            .run(move || match decoded {
                Decoded::Still(pixels) => source.original.render(&pixels, &job),
                Decoded::Animation => source.original.animate(&source.bytes, &job),
            })
            .await
            .inspect_err(|e| {
                if matches!(e, PoolError::Overloaded(_)) {
                    Metrics::add(&self.metrics.overloaded);
                }
            })??;
        let mut variant = Variant::new(
            Bytes::from(encoded.bytes),
            encoded.format,
            encoded.width,
            encoded.height,
            Some(SystemTime::now()),
        );
        // A still's decode happened in `originals` (zero when shared); an animation's frames were decoded
        // while it was made, inside `encoded.timings`.
        let stages = Timings {
            decode: prepared.decode + encoded.timings.decode,
            ..encoded.timings
        };
        let histograms = &self.metrics.histograms;
        if !encoded.timings.decode.is_zero() {
            histograms.decode.observe_duration(encoded.timings.decode);
        }
        histograms.resize.observe_duration(stages.resize);
        histograms.encode.observe_duration(stages.encode);
        variant.timing = Some(Timing {
            fetch: prepared.fetch,
            stages,
        });
        variant.source_etag = prepared.source.etag.clone();
        let mut held = prepared.held;
        drop(prepared.decoded);
        held.shrink_to(variant.bytes.len() as u64);
        Ok((variant, held))
    }

    async fn remember(&self, key: &str, variant: &Arc<Variant>) {
        if let Some(memory) = &self.memory
            && variant.head.len <= self.max_item_bytes
        {
            memory.insert(key.to_string(), Arc::clone(variant)).await;
        }
    }

    /// Writes the variant under the copy prefix without holding up the response. A failure is logged and
    /// counted; the client already has its image, and the next cold request will compute it again.
    /// `held` covers the variant's bytes until then.
    fn write_back(&self, key: String, variant: Arc<Variant>, held: Reservation) {
        let store = Arc::clone(&self.store);
        let metrics = Arc::clone(&self.metrics);
        // In the span of the request that computed it, so a failure's log line carries its id.
        let span = tracing::Span::current();
        let write = async move {
            let options = PutOptions::variant(
                variant.head.format.content_type(),
                variant.source_etag.as_deref(),
            );
            match store.put(&key, variant.bytes.clone(), options).await {
                Ok(_) => Metrics::add(&metrics.write_backs),
                Err(e) => {
                    Metrics::add(&metrics.write_back_failures);
                    tracing::warn!(key, error = %e, "variant write-back failed");
                }
            }
            drop(held);
        };
        self.write_backs
            .spawn(tracing::Instrument::instrument(write, span));
    }
}

/// Streams a large copy-tier object, reading just enough of its start to know its format and size.
async fn stream_stored(object: StoredObject) -> Result<Served, VariantError> {
    const HEADER_LIMIT: usize = 64 * 1024;
    let StoredObject {
        size,
        last_modified,
        etag,
        mut body,
        ..
    } = object;
    let mut prefix: Vec<Bytes> = Vec::new();
    let mut seen = Vec::new();
    let (info, format) = loop {
        if let Some((info, format)) = pipeline::probe::probe(&seen)
            .ok()
            .and_then(|info| Some((info, info.format.output()?)))
        {
            break (info, format);
        }
        match body.next().await {
            Some(chunk) if seen.len() < HEADER_LIMIT => {
                let chunk = chunk?;
                seen.extend_from_slice(&chunk);
                prefix.push(chunk);
            }
            _ => {
                return Err(StoreError::Failed(
                    "stored variant has no readable image header".into(),
                )
                .into());
            }
        }
    };
    let head = VariantHead {
        format,
        len: size,
        width: info.width,
        height: info.height,
        etag: etag.map(|t| format!("\"{t}\"")),
        last_modified,
    };
    let body = futures_util::stream::iter(prefix.into_iter().map(Ok))
        .chain(body)
        .boxed();
    Ok(Served {
        tier: Tier::Copy,
        head,
        body: Body::Stream(body),
        timing: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn variants(store: Arc<MemoryStore>) -> Variants {
        let config = Config::default();
        Variants::new(
            &config,
            store,
            CpuPool::new(1, 4).unwrap(),
            Arc::new(Metrics::default()),
        )
    }

    fn spec(width: u32) -> VariantSpec {
        let rules = crate::spec::SpecRules::from_config(&Config::default()).unwrap();
        VariantSpec::parse(&format!("/w/{width}/a.png"), &rules).unwrap()
    }

    fn png(width: u32, height: u32) -> Bytes {
        Bytes::from(pipeline::flat_image(Format::Png, width, height, 90))
    }

    #[tokio::test]
    async fn a_damaged_stored_variant_is_recomputed_and_replaced() {
        let store = Arc::new(MemoryStore::default());
        store
            .put("a.png", png(40, 20), PutOptions::plain("image/png"))
            .await
            .unwrap();
        store
            .put(
                "copy/a.png/w10_q80",
                Bytes::from_static(b"\0\0 not an image"),
                PutOptions::plain("image/png"),
            )
            .await
            .unwrap();
        let variants = variants(Arc::clone(&store));
        let served = variants.get(&spec(10)).await.unwrap();
        assert_eq!(served.tier, Tier::Computed);
        assert_eq!((served.head.width, served.head.height), (10, 5));
        assert!(variants.drain_write_backs(Duration::from_secs(5)).await);
        let rewritten = store
            .objects
            .lock()
            .unwrap()
            .get("copy/a.png/w10_q80")
            .cloned()
            .unwrap();
        assert_eq!(Format::sniff(&rewritten), Some(Format::Png));
    }

    #[tokio::test]
    async fn large_copy_tier_objects_are_streamed_not_cached() {
        let store = Arc::new(MemoryStore::default());
        let big = png(300, 300);
        store
            .put(
                "copy/a.png/w300_q80",
                big.clone(),
                PutOptions::plain("image/png"),
            )
            .await
            .unwrap();
        let mut config = Config::default();
        config.cache.max_item_bytes = 64;
        let variants = Variants::new(
            &config,
            store,
            CpuPool::new(1, 4).unwrap(),
            Arc::new(Metrics::default()),
        );
        for _ in 0..2 {
            let served = variants.get(&spec(300)).await.unwrap();
            assert_eq!(served.tier, Tier::Copy, "never promoted to memory");
            assert_eq!(
                (served.head.width, served.head.len),
                (300, big.len() as u64)
            );
            let Body::Stream(mut stream) = served.body else {
                panic!("expected a stream")
            };
            let mut streamed = Vec::new();
            while let Some(chunk) = stream.next().await {
                streamed.extend_from_slice(&chunk.unwrap());
            }
            assert_eq!(streamed, big);
        }
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_write_nothing() {
        let store = Arc::new(MemoryStore::default());
        store
            .put(
                "a.png",
                Bytes::from_static(b"\x89PNG\r\n\x1a\n truncated"),
                PutOptions::plain("image/png"),
            )
            .await
            .unwrap();
        let variants = variants(Arc::clone(&store));
        assert!(matches!(
            variants.get(&spec(10)).await,
            Err(VariantError::Pipeline(_))
        ));
        assert!(variants.drain_write_backs(Duration::from_secs(5)).await);
        assert_eq!(store.objects.lock().unwrap().len(), 1);
    }
}
