//! Pre-generation: the configured variants of one original, made as soon as it arrives (storage events)
//! or when a bucket is backfilled (`sizer pregenerate`), and removed with it.
//!
//! One HEAD of the original and of each variant decides what is missing or stale; then ONE read and ONE
//! decode of the original (at the scale the largest variant needs) make every missing variant
//! ([`crate::pipeline::process_many`]), each written under the copy prefix with sizer's output mark.
//!
//! The loop guard, whatever the configuration: a key under the copy prefix is never processed, and an
//! object carrying the output mark is never read as an original. Configuration that would put outputs
//! under a source prefix is refused at start-up (`config`).
//!
//! Delivery is at least once and unordered, so nothing here trusts an event's claim about the present:
//! - a duplicate finds its variants fresh and does nothing (writes are `If-None-Match: *` where the
//!   store implements it, so two racing duplicates cannot both write);
//! - an original replaced since its variants were made is detected by the ETag recorded on each variant
//!   (S3) or by modification times (directory store), and its variants are remade;
//! - "created" for an original that is gone removes its variants, and "removed" for one that exists
//!   again keeps them: the store's present state wins over the order events arrive in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::Config;
use crate::originals::{ReadFailure, read_reserved};
use crate::pipeline::{self, Job, PipelineError};
use crate::pool::{CpuPool, PoolError};
use crate::settings::Settings;
use crate::spec::{JobLimits, SpecRules, Templates, VariantSpec, is_variant_of};
use crate::store::{ObjectInfo, PutOptions, Store, StoreError, Written};
use crate::telemetry::Metrics;

pub mod backfill;

/// Why an event for a key was acknowledged without work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The key is under the copy prefix: our own output (the loop guard).
    UnderCopyPrefix,
    /// The object carries sizer's output mark (the loop guard's second half).
    Marked,
    /// The key is outside the source prefixes, or no key an original may have.
    NotAnOriginal,
    /// "Removed", but the original exists again: its variants stay.
    StillThere,
    /// A later event for the same key in the same notification was worked on instead.
    Superseded,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::UnderCopyPrefix => "under_copy_prefix",
            Ignored::Marked => "marked_output",
            Ignored::NotAnOriginal => "not_an_original",
            Ignored::StillThere => "still_there",
            Ignored::Superseded => "superseded",
        }
    }
}

/// What handling one original ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Variants were made: `written` new or remade, `fresh` already up to date.
    Generated {
        written: usize,
        fresh: usize,
        bytes: u64,
    },
    /// Every variant was already there and up to date: nothing was read or decoded.
    UpToDate {
        fresh: usize,
    },
    /// The original is gone: its variants (`removed` of them) were deleted.
    Removed {
        removed: usize,
    },
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PregenerateError {
    /// The store failed: worth retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CPU pool failed, or the memory budget stayed full: worth retrying.
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Busy(crate::budget::BudgetError),
    /// The work did not fit before its deadline: worth retrying (with more time).
    #[error("the deadline passed before every variant was written")]
    Deadline,
    /// The original cannot be made into variants (unreadable, too large): retrying cannot help.
    #[error("{key}: {reason}")]
    Original { key: String, reason: String },
    /// The object is no image of a format sizer reads (a text file beside the photos).
    #[error("{0}: not an image sizer reads (JPEG, PNG, WebP, GIF, TIFF, BMP, ICO, JPEG XL, SVG)")]
    NotAnImage(String),
}

impl PregenerateError {
    /// Whether delivering the event again could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            PregenerateError::Original { .. } | PregenerateError::NotAnImage(_)
        )
    }
}

/// What an original needs, from HEADs alone.
#[derive(Debug)]
pub enum Assessment {
    Ignored(Ignored),
    /// No such object (any more).
    Gone,
    Work(Work),
}

/// The variants of one original still to make.
#[derive(Debug)]
pub struct Work {
    pub original: ObjectInfo,
    pub todo: Vec<Pending>,
    /// Variants already there and up to date.
    pub fresh: usize,
}

/// One variant to make.
#[derive(Debug)]
pub struct Pending {
    pub spec: VariantSpec,
    pub key: String,
    /// A stale variant is there (replace it); otherwise write only if still absent.
    pub replace: bool,
}

/// Makes and removes the configured variants of originals.
pub struct Pregenerator {
    store: Arc<dyn Store>,
    pool: CpuPool,
    metrics: Arc<Metrics>,
    rules: SpecRules,
    templates: Templates,
    max_source_bytes: u64,
    limits: JobLimits,
    /// The loop guard logs its first refusal at `warn`, the rest at `debug` (all are counted).
    guard_logged: AtomicBool,
}

impl Pregenerator {
    pub fn new(
        config: &Config,
        settings: &Settings,
        store: Arc<dyn Store>,
        pool: CpuPool,
        metrics: Arc<Metrics>,
    ) -> Pregenerator {
        Pregenerator {
            store,
            pool,
            metrics,
            rules: settings.rules.clone(),
            templates: settings.templates.clone(),
            max_source_bytes: config.limits.max_source_bytes,
            limits: JobLimits::from_config(config),
            guard_logged: AtomicBool::new(false),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The prefix every variant of `key` is stored under.
    pub fn variant_prefix(&self, key: &str) -> String {
        format!("{}{key}/", self.rules.copy_prefix)
    }

    /// Whether `key` is under the copy prefix: sizer's own output.
    pub fn is_output(&self, key: &str) -> bool {
        let copy = self.rules.copy_prefix.as_str();
        key.starts_with(copy) || key == copy.trim_end_matches('/')
    }

    /// Why `key` is no original to work on, if it is not one: the loop guard first.
    pub fn screen(&self, key: &str) -> Option<Ignored> {
        if self.is_output(key) {
            let copy = self.rules.copy_prefix.as_str();
            Metrics::add(&self.metrics.events_loop_guard);
            if !self.guard_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    key,
                    copy_prefix = copy,
                    "event for sizer's own output ignored (loop guard); further ones are counted in \
                     sizer_events_ignored_total{{reason=\"loop_guard\"}}"
                );
            } else {
                tracing::debug!(key, "event under the copy prefix ignored (loop guard)");
            }
            return Some(Ignored::UnderCopyPrefix);
        }
        if crate::spec::check_key(key.to_string(), &self.rules).is_err() {
            return Some(Ignored::NotAnOriginal);
        }
        None
    }

    /// `key` was created or replaced: make whatever of its variants is missing or stale.
    pub async fn created(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PregenerateError> {
        match self.assess(key).await? {
            Assessment::Ignored(ignored) => Ok(Outcome::Ignored(ignored)),
            // Gone again before we got here: the store's present state wins (see the module doc).
            Assessment::Gone => self.remove_variants(key).await,
            Assessment::Work(work) if work.todo.is_empty() => {
                Ok(Outcome::UpToDate { fresh: work.fresh })
            }
            Assessment::Work(work) => self.generate(key, work, deadline).await,
        }
    }

    /// What `created` would do for `key`, read from HEADs only (the original and each variant).
    pub async fn assess(&self, key: &str) -> Result<Assessment, PregenerateError> {
        if let Some(ignored) = self.screen(key) {
            return Ok(Assessment::Ignored(ignored));
        }
        let original = match self.store.head(key).await {
            Ok(info) => info,
            Err(StoreError::NotFound) => return Ok(Assessment::Gone),
            Err(e) => return Err(e.into()),
        };
        if original.marked {
            Metrics::add(&self.metrics.events_loop_guard);
            tracing::warn!(
                key,
                "object carries sizer's output mark; not read as an original (loop guard)"
            );
            return Ok(Assessment::Ignored(Ignored::Marked));
        }
        let specs =
            self.templates
                .specs_for(key, &self.rules)
                .map_err(|e| PregenerateError::Original {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
        let (mut todo, mut fresh) = (Vec::new(), 0);
        for spec in specs {
            let variant_key = spec.variant_key(&self.rules.copy_prefix);
            let replace = match self.store.head(&variant_key).await {
                Ok(existing) if is_fresh(&existing, &original) => {
                    fresh += 1;
                    continue;
                }
                Ok(_) => true,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e.into()),
            };
            todo.push(Pending {
                spec,
                key: variant_key,
                replace,
            });
        }
        Metrics::add_n(&self.metrics.pregenerated_fresh, fresh as u64);
        Ok(Assessment::Work(Work {
            original,
            todo,
            fresh,
        }))
    }

    async fn generate(
        &self,
        key: &str,
        work: Work,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PregenerateError> {
        let Work {
            original,
            todo,
            fresh,
        } = work;
        let refuse = |reason: String| PregenerateError::Original {
            key: key.to_string(),
            reason,
        };
        if original.size > self.max_source_bytes {
            return Err(refuse(format!(
                "{} bytes, above limits.max_source_bytes = {}",
                original.size, self.max_source_bytes
            )));
        }
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(StoreError::NotFound) => return self.remove_variants(key).await,
            Err(e) => return Err(e.into()),
        };
        if object.marked {
            return Ok(Outcome::Ignored(Ignored::Marked));
        }
        let source_etag = object.etag.clone();
        let jobs: Vec<Job> = todo
            .iter()
            .map(|Pending { spec, .. }| spec.job(&self.limits, deadline))
            .collect();
        // Everything the jobs allocate, reserved before the body is held, and held until every variant
        // is written (see `pipeline::memory`).
        let budget = self.pool.budget();
        let (bytes, _held, _) = read_reserved(object, &jobs, |need| budget.reserve(need, deadline))
            .await
            .map_err(|e| match e {
                ReadFailure::Store(e) => PregenerateError::from(e),
                ReadFailure::Image(PipelineError::Unsupported) => {
                    PregenerateError::NotAnImage(key.to_string())
                }
                ReadFailure::Image(other) => refuse(other.to_string()),
                ReadFailure::Reserve(e) => budget_error(key, e),
            })?;
        Metrics::add(&self.metrics.original_fetches);
        let made = self
            .pool
            .run_waiting(move || pipeline::process_many(&bytes, &jobs))
            .await?
            .map_err(|e| match e {
                PipelineError::DeadlinePassed => PregenerateError::Deadline,
                PipelineError::Unsupported => PregenerateError::NotAnImage(key.to_string()),
                other => refuse(other.to_string()),
            })?;
        let (mut written, mut bytes_written, mut written_keys) = (0, 0u64, Vec::new());
        let mut failure = None;
        for (
            Pending {
                key: variant_key,
                replace,
                ..
            },
            result,
        ) in todo.into_iter().zip(made)
        {
            let encoded = match result {
                Ok(encoded) => encoded,
                Err(PipelineError::DeadlinePassed) => {
                    failure.get_or_insert(PregenerateError::Deadline);
                    continue;
                }
                // One variant that cannot be made (its size above the output cap) spoils only itself.
                Err(e) => {
                    Metrics::add(&self.metrics.pregenerate_failures);
                    tracing::warn!(key = variant_key, error = %e, "variant not pre-generated");
                    failure.get_or_insert(refuse(format!("{variant_key}: {e}")));
                    continue;
                }
            };
            let mut options =
                PutOptions::variant(encoded.format.content_type(), source_etag.as_deref());
            options.only_if_absent = !replace;
            options.retried = true;
            let len = encoded.bytes.len() as u64;
            match self
                .store
                .put(&variant_key, Bytes::from(encoded.bytes), options)
                .await?
            {
                Written::Written => {
                    written += 1;
                    bytes_written += len;
                    written_keys.push(variant_key);
                }
                // A duplicate event (or an HTTP request) wrote it first: same bytes.
                Written::AlreadyThere => {}
            }
        }
        Metrics::add_n(&self.metrics.pregenerated, written as u64);
        // Deleted while we worked: what we wrote must not outlive it.
        if let Err(StoreError::NotFound) = self.store.head(key).await {
            for variant_key in &written_keys {
                self.store.delete(variant_key).await?;
            }
            return self.remove_variants(key).await;
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        Ok(Outcome::Generated {
            written,
            fresh,
            bytes: bytes_written,
        })
    }

    /// `key` was removed: delete its variants, unless it exists again.
    pub async fn removed(&self, key: &str) -> Result<Outcome, PregenerateError> {
        if let Some(ignored) = self.screen(key) {
            return Ok(Outcome::Ignored(ignored));
        }
        match self.store.head(key).await {
            Ok(_) => Ok(Outcome::Ignored(Ignored::StillThere)),
            Err(StoreError::NotFound) => self.remove_variants(key).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every variant of `key`, whatever made them: the direct children of its variant prefix.
    /// Deeper keys under that prefix are the variants of other originals (`copy/a/b.jpg/w300_q80` is one
    /// of `a/b.jpg`'s, not of `a`'s) and stay.
    pub async fn remove_variants(&self, key: &str) -> Result<Outcome, PregenerateError> {
        let mut listing = self.store.list(&self.variant_prefix(key));
        let mut removed = 0;
        while let Some(object) = listing.next().await {
            let object = object?;
            if !is_variant_of(&self.rules.copy_prefix, key, &object.key) {
                continue;
            }
            self.store.delete(&object.key).await?;
            removed += 1;
        }
        Metrics::add_n(&self.metrics.variants_removed, removed as u64);
        Ok(Outcome::Removed { removed })
    }
}

/// A full budget is worth retrying; an image larger than the whole budget never is.
fn budget_error(key: &str, e: crate::budget::BudgetError) -> PregenerateError {
    match e {
        crate::budget::BudgetError::Busy(_) => PregenerateError::Busy(e),
        too_large => PregenerateError::Original {
            key: key.to_string(),
            reason: too_large.to_string(),
        },
    }
}

/// Whether a stored variant was made from the original as it is now: by the ETag recorded on it when
/// the store keeps metadata, else by being newer than the original.
fn is_fresh(variant: &ObjectInfo, original: &ObjectInfo) -> bool {
    match (&variant.source_etag, &original.etag) {
        (Some(made_from), Some(now)) => made_from == now,
        _ => match (variant.last_modified, original.last_modified) {
            (Some(variant), Some(original)) => variant >= original,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests;
