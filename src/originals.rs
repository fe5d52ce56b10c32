//! Originals, fetched and decoded once for all the variants being made of them.
//!
//! A page's `srcset` makes browsers ask for several widths of one new image within a second. Each width is
//! its own variant (coalesced with identical requests in `variants`), but they all start from the same
//! original: here they share one fetch and, when they need the same decode scale, one decode. A small
//! byte-bounded cache (`cache.originals_max_bytes`) keeps recently fetched originals and their decoded
//! images, keyed by key + ETag (+ scale), so the next widths skip both; concurrent misses of one entry are
//! coalesced into one fetch or decode.
//!
//! The cache is only as fresh as the ETag: every use starts with a HEAD of the original, so a replaced
//! original is never served from an old decode. With the cache off (budget 0) there is no HEAD: one GET,
//! one decode, as before. Images too large to be worth keeping (above a quarter of the budget) bypass it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;

use crate::budget::Reservation;
use crate::config::Config;
use crate::pipeline::decode::Scale;
use crate::pipeline::{Job, Original, PipelineError, Pixels, memory};
use crate::pool::CpuPool;
use crate::store::{Store, StoreError, StoredObject};
use crate::telemetry::{CacheSize, Metrics};
use crate::variant_error::VariantError;

/// How long an unused original stays in the cache.
const IDLE: Duration = Duration::from_secs(60);

/// An original's bytes and header.
pub struct Source {
    pub bytes: Bytes,
    pub original: Original,
    pub etag: Option<String>,
}

/// What a variant's pixels come from.
#[derive(Clone)]
pub enum Decoded {
    /// The original decoded at the scale the job needs.
    Still(Arc<Pixels>),
    /// The job's output is an animation, decoded frame by frame from the source's bytes while it is made.
    Animation,
}

/// What a variant is made from.
pub struct Prepared {
    pub source: Arc<Source>,
    pub decoded: Decoded,
    /// Time this request spent reading the store (a HEAD when the original was shared).
    pub fetch: Duration,
    /// Time this request spent decoding (zero when it used a shared decode).
    pub decode: Duration,
    /// The memory budget held for the whole job (see `pipeline::memory`), from before the original's
    /// body was read to the end of its output: the caller keeps it until then.
    pub held: Reservation,
}

#[derive(Clone)]
enum Entry {
    Source(Arc<Source>),
    Decoded(Arc<Pixels>),
}

impl Entry {
    fn weight(key: &str, entry: &Entry) -> u32 {
        let bytes = match entry {
            Entry::Source(s) => s.bytes.len(),
            Entry::Decoded(p) => p.data.len(),
        };
        u32::try_from(key.len() + bytes).unwrap_or(u32::MAX)
    }
}

/// How much of an original's body is read before its job reserves memory: enough for the header of
/// nearly any image (the metadata before a JPEG's frame header rarely comes near it).
const HEADER_BYTES: usize = 256 * 1024;

pub struct Originals {
    store: Arc<dyn Store>,
    pool: CpuPool,
    metrics: Arc<Metrics>,
    cache: Option<Cache<String, Entry>>,
    /// Larger sources and decoded images are not kept.
    max_item: u64,
    max_source_bytes: u64,
    max_source_pixels: u64,
}

impl Originals {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        pool: CpuPool,
        metrics: Arc<Metrics>,
    ) -> Originals {
        let budget = config.cache.originals_max_bytes;
        let cache = (budget > 0).then(|| {
            Cache::builder()
                .max_capacity(budget)
                .weigher(|key: &String, entry: &Entry| Entry::weight(key, entry))
                .time_to_idle(IDLE)
                .support_invalidation_closures()
                .build()
        });
        Originals {
            store,
            pool,
            metrics,
            cache,
            max_item: budget / 4,
            max_source_bytes: config.limits.max_source_bytes,
            max_source_pixels: config.limits.max_source_pixels,
        }
    }

    /// The original `key` read and decoded for `job`, shared with other variants of it where possible,
    /// with the memory the whole job needs reserved.
    pub async fn prepare(
        &self,
        key: &str,
        job: &Job,
        deadline: Instant,
    ) -> Result<Prepared, VariantError> {
        let started = Instant::now();
        let Some(cache) = &self.cache else {
            return self.unshared(key, job, deadline, started).await;
        };
        let head = match self.store.head(key).await {
            Ok(head) => head,
            Err(StoreError::NotFound) => return Err(VariantError::OriginalNotFound(key.into())),
            Err(e) => return Err(e.into()),
        };
        self.admit(key, head.marked, head.size)?;
        let Some(etag) = head.etag.filter(|_| head.size <= self.max_item) else {
            // Nothing to key a shared entry on, or too large to keep: this request's own.
            return self.unshared(key, job, deadline, started).await;
        };
        let source_key = format!("s\0{key}\0{etag}");
        // The request that reads the original reserves while reading it; one that finds it read
        // reserves from its header.
        let mut reserved = None;
        let source = match cache
            .entry(source_key.clone())
            .or_try_insert_with(async {
                let (source, held) = self.fetch(key, job, deadline).await?;
                reserved = Some(held);
                Ok::<_, VariantError>(Entry::Source(Arc::new(source)))
            })
            .await
            .map_err(|e| (*e).clone())?
            .into_value()
        {
            Entry::Source(source) => source,
            Entry::Decoded(_) => return self.unshared(key, job, deadline, started).await,
        };
        let held = match reserved {
            Some(held) => held,
            None => {
                // Probed already, when it was read: the header's facts are the original's.
                let need = memory::estimate_for(
                    &source.original.info,
                    &source.bytes,
                    source.bytes.len() as u64,
                    slice(job),
                )?;
                self.reserve(need, deadline).await?
            }
        };
        if source.etag.as_deref() != Some(etag.as_str()) {
            // Replaced between the HEAD and the GET: keep nothing under the old ETag.
            cache.invalidate(&source_key).await;
        }
        let fetch = started.elapsed();
        if source.original.animates(job) {
            return Ok(animation(source, fetch, held));
        }
        let scale = source.original.scale_for(job)?;
        let info = source.original.info;
        let decoded_bytes = memory::decoded_size(&info, scale);
        if decoded_bytes > self.max_item {
            let (decoded, decode) = self.decode(&source, job, deadline).await?;
            return Ok(Prepared {
                source,
                decoded: Decoded::Still(Arc::new(decoded)),
                fetch,
                decode,
                held,
            });
        }
        let decoded_key = format!("d\0{key}\0{etag}\0{scale}");
        let mut decode = Duration::ZERO;
        let entry = cache
            .entry(decoded_key)
            .or_try_insert_with(async {
                let (pixels, took) = self
                    .decode_at(&source, scale, job.keep_profile, deadline)
                    .await?;
                decode = took;
                Ok::<_, VariantError>(Entry::Decoded(Arc::new(pixels)))
            })
            .await
            .map_err(|e: Arc<VariantError>| (*e).clone())?;
        let shared = !entry.is_fresh();
        let decoded = match entry.into_value() {
            Entry::Decoded(decoded) => decoded,
            Entry::Source(_) => return self.unshared(key, job, deadline, started).await,
        };
        Metrics::add(if shared {
            &self.metrics.decodes_shared
        } else {
            &self.metrics.decodes
        });
        Ok(Prepared {
            source,
            decoded: Decoded::Still(decoded),
            fetch,
            // Zero when shared: this request decoded nothing.
            decode,
            held,
        })
    }

    /// Bytes and entries kept now (zero with the cache off).
    pub async fn cache_size(&self) -> CacheSize {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks().await;
                CacheSize {
                    bytes: cache.weighted_size(),
                    entries: cache.entry_count(),
                }
            }
            None => CacheSize::default(),
        }
    }

    /// Drops everything kept of `key`: it changed or went away.
    pub fn forget(&self, key: &str) {
        if let Some(cache) = &self.cache {
            let (source, decoded) = (format!("s\0{key}\0"), format!("d\0{key}\0"));
            // Only fails when the cache was built without invalidation closures, which `new` enables.
            let _ = cache.invalidate_entries_if(move |k, _| {
                k.starts_with(&source) || k.starts_with(&decoded)
            });
        }
    }

    async fn unshared(
        &self,
        key: &str,
        job: &Job,
        deadline: Instant,
        started: Instant,
    ) -> Result<Prepared, VariantError> {
        let (source, held) = self.fetch(key, job, deadline).await?;
        let source = Arc::new(source);
        let fetch = started.elapsed();
        if source.original.animates(job) {
            return Ok(animation(source, fetch, held));
        }
        let (decoded, decode) = self.decode(&source, job, deadline).await?;
        Ok(Prepared {
            source,
            decoded: Decoded::Still(Arc::new(decoded)),
            fetch,
            decode,
            held,
        })
    }

    /// Refuses sizer's own output and originals above the byte limit, before reading them.
    fn admit(&self, key: &str, marked: bool, size: u64) -> Result<(), VariantError> {
        if marked {
            return Err(VariantError::OriginalIsVariant(key.into()));
        }
        if size > self.max_source_bytes {
            return Err(VariantError::SourceTooLarge {
                size,
                limit: self.max_source_bytes,
            });
        }
        Ok(())
    }

    /// Reads and inspects the original (its header only: no decoding), with the memory `job` needs
    /// reserved before the body is held.
    async fn fetch(
        &self,
        key: &str,
        job: &Job,
        deadline: Instant,
    ) -> Result<(Source, Reservation), VariantError> {
        let asked = Instant::now();
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(StoreError::NotFound) => return Err(VariantError::OriginalNotFound(key.into())),
            Err(e) => return Err(e.into()),
        };
        Metrics::add(&self.metrics.original_fetches);
        self.admit(key, object.marked, object.size)?;
        let answered = asked.elapsed();
        let etag = object.etag.clone();
        let (bytes, held, read) =
            read_reserved(object, slice(job), |need| self.reserve(need, deadline))
                .await
                .map_err(|e| match e {
                    ReadFailure::Store(e) => VariantError::Store(e),
                    ReadFailure::Image(e) => VariantError::Pipeline(e),
                    ReadFailure::Reserve(e) => e,
                })?;
        // The store's time: the request and the body, not the wait for the memory budget between them.
        self.metrics
            .histograms
            .fetch
            .observe_duration(answered + read);
        // On the pool: inspection may inflate a 4 MiB ICC profile and walks every scan of a JPEG.
        let (inspected, max_pixels) = (bytes.clone(), self.max_source_pixels);
        let original = self
            .pool
            .run(move || Original::inspect(&inspected, max_pixels))
            .await
            .inspect_err(|e| {
                if matches!(e, crate::pool::PoolError::Overloaded(_)) {
                    Metrics::add(&self.metrics.overloaded);
                }
            })??;
        Ok((
            Source {
                bytes,
                original,
                etag,
            },
            held,
        ))
    }

    async fn reserve(&self, bytes: u64, deadline: Instant) -> Result<Reservation, VariantError> {
        self.pool
            .budget()
            .reserve(bytes, Some(deadline))
            .await
            .map_err(|e| {
                if matches!(e, crate::budget::BudgetError::Busy(_)) {
                    Metrics::add(&self.metrics.budget_refused);
                }
                e.into()
            })
    }

    async fn decode(
        &self,
        source: &Arc<Source>,
        job: &Job,
        deadline: Instant,
    ) -> Result<(Pixels, Duration), VariantError> {
        let scale = source.original.scale_for(job)?;
        Metrics::add(&self.metrics.decodes);
        self.decode_at(source, scale, job.keep_profile, deadline)
            .await
    }

    /// Decodes on the pool, within the memory the caller reserved for its job.
    async fn decode_at(
        &self,
        source: &Arc<Source>,
        scale: Scale,
        keep_profile: bool,
        deadline: Instant,
    ) -> Result<(Pixels, Duration), VariantError> {
        if Instant::now() > deadline {
            return Err(crate::pipeline::PipelineError::DeadlinePassed.into());
        }
        let source = Arc::clone(source);
        // Timed on the worker: the decode itself, not the waits for memory and for a worker before it.
        let (pixels, took) = self
            .pool
            .run(move || {
                let started = Instant::now();
                let pixels = source.original.decode(&source.bytes, scale, keep_profile);
                (pixels, started.elapsed())
            })
            .await
            .inspect_err(|e| {
                if matches!(e, crate::pool::PoolError::Overloaded(_)) {
                    Metrics::add(&self.metrics.overloaded);
                }
            })?;
        self.metrics.histograms.decode.observe_duration(took);
        Ok((pixels?, took))
    }
}

/// An animation is decoded frame by frame while it is made, within the job's reservation.
fn animation(source: Arc<Source>, fetch: Duration, held: Reservation) -> Prepared {
    Prepared {
        source,
        decoded: Decoded::Animation,
        fetch,
        decode: Duration::ZERO,
        held,
    }
}

/// Why [`read_reserved`] failed.
#[derive(Debug)]
pub enum ReadFailure<E> {
    /// Reading the body.
    Store(StoreError),
    /// The header shows the image cannot be made (not an image, too many pixels, too large an output).
    Image(PipelineError),
    /// The reservation was refused.
    Reserve(E),
}

/// Reads an original's body with the memory that `jobs` (made with one decode) need reserved before it
/// is held: its first bytes (the header, at most [`HEADER_BYTES`]), the estimate from them
/// (`pipeline::memory`), the reservation (`reserve`), then the rest. Returns the bytes, the reservation
/// and the time spent reading (not waiting for memory).
///
/// Where the header lies deeper than that (megabytes of metadata before a JPEG's frame header), the
/// object's size is reserved, the whole read, and the rest of the estimate reserved on top: the one
/// case where a job waits for memory while holding some.
pub async fn read_reserved<E, Fut>(
    mut object: StoredObject,
    jobs: &[Job],
    reserve: impl Fn(u64) -> Fut,
) -> Result<(Bytes, Reservation, Duration), ReadFailure<E>>
where
    Fut: std::future::Future<Output = Result<Reservation, E>>,
{
    let size = object.size;
    let reading = Instant::now();
    let header_read = |b: &[u8]| crate::pipeline::probe::probe(b).is_ok();
    let start = object
        .read_start(HEADER_BYTES, header_read)
        .await
        .map_err(ReadFailure::Store)?;
    let mut read = reading.elapsed();
    let whole = start.len() as u64 >= size;
    match memory::estimate(&start, size, jobs) {
        Ok(need) => {
            let held = reserve(need).await.map_err(ReadFailure::Reserve)?;
            let reading = Instant::now();
            let bytes = object.read_rest(start).await.map_err(ReadFailure::Store)?;
            read += reading.elapsed();
            Ok((bytes, held, read))
        }
        // Not an image at all (its first bytes say so), or the whole of it read: nothing more to learn.
        Err(e) if whole || e == PipelineError::Unsupported => Err(ReadFailure::Image(e)),
        Err(_) => {
            let mut held = reserve(size).await.map_err(ReadFailure::Reserve)?;
            let reading = Instant::now();
            let bytes = object.read_rest(start).await.map_err(ReadFailure::Store)?;
            read += reading.elapsed();
            let need = memory::estimate(&bytes, size, jobs).map_err(ReadFailure::Image)?;
            let more = reserve(need.saturating_sub(held.bytes()))
                .await
                .map_err(ReadFailure::Reserve)?;
            held.merge(more);
            Ok((bytes, held, read))
        }
    }
}

fn slice(job: &Job) -> &[Job] {
    std::slice::from_ref(job)
}
