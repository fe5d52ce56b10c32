//! Backfilling a bucket or directory: every original under a prefix gets its configured variants.
//!
//! The listing is read as it is used (pages of a thousand keys), `concurrency` originals are worked on
//! at once, and a second listing counts the total alongside so progress can show an ETA; millions of keys
//! are never held in memory. Variants already there and fresh are skipped, so an interrupted run resumes
//! where it stopped when started again. A failing original is reported and counted; the run goes on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;

use super::{Assessment, Outcome, PregenerateError, Pregenerator};
use crate::store::StoreError;

/// What a backfill covers.
#[derive(Debug, Clone)]
pub struct Backfill {
    /// Keys starting with this (all keys when empty).
    pub prefix: String,
    /// Originals worked on at once.
    pub concurrency: usize,
    /// List and check only: count what is missing, write nothing.
    pub dry_run: bool,
}

/// Counters a running backfill updates, for progress display and the summary.
#[derive(Debug, Default)]
pub struct Progress {
    /// Objects under the prefix, once the counting listing has finished (see `counted`).
    pub total: AtomicU64,
    pub counted: AtomicBool,
    /// Objects handled so far (whatever the outcome).
    pub handled: AtomicU64,
    /// Originals that got at least one variant (dry run: that need one).
    pub generated: AtomicU64,
    /// Originals whose variants were all there and fresh.
    pub up_to_date: AtomicU64,
    /// Keys that are no original: our own variants, keys outside the source prefixes, non-images.
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    /// Variants written (dry run: missing or stale).
    pub variants: AtomicU64,
    pub bytes_written: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// How a backfill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Complete,
    /// `stop` resolved: in-flight originals were finished, no new ones started.
    Interrupted,
}

/// Runs a backfill until the listing is exhausted or `stop` resolves. `on_failure` hears of each
/// original that failed. `Err` only when the listing itself fails.
pub async fn run(
    pregenerator: &Pregenerator,
    backfill: &Backfill,
    progress: &Progress,
    stop: impl Future<Output = ()>,
    on_failure: impl Fn(&str, &PregenerateError),
) -> Result<Ended, StoreError> {
    let count = async {
        let mut listing = pregenerator.store().list(&backfill.prefix);
        while let Some(item) = listing.next().await {
            if item.is_err() {
                // The work listing reports the error; the total just stays unknown.
                return;
            }
            add(&progress.total, 1);
        }
        progress.counted.store(true, Ordering::Relaxed);
    };
    let stopping = AtomicBool::new(false);
    let work = async {
        let listing = pregenerator
            .store()
            .list(&backfill.prefix)
            .take_while(|_| std::future::ready(!stopping.load(Ordering::Relaxed)));
        let mut outcomes = listing
            .map(|item| async {
                let object = item?;
                let key = object.key;
                let result = one(pregenerator, &key, backfill.dry_run, progress).await;
                add(&progress.handled, 1);
                if let Err(e) = &result {
                    add(&progress.failed, 1);
                    on_failure(&key, e);
                }
                Ok::<(), StoreError>(())
            })
            .buffer_unordered(backfill.concurrency.max(1));
        while let Some(listed) = outcomes.next().await {
            listed?;
        }
        Ok(())
    };
    let stop = async {
        stop.await;
        stopping.store(true, Ordering::Relaxed);
    };
    tokio::pin!(work, stop, count);
    let mut counting = true;
    let mut stopped = false;
    loop {
        tokio::select! {
            result = &mut work => {
                result?;
                return Ok(if stopped { Ended::Interrupted } else { Ended::Complete });
            }
            () = &mut count, if counting => counting = false,
            () = &mut stop, if !stopped => stopped = true,
        }
    }
}

/// One object of the listing.
async fn one(
    pregenerator: &Pregenerator,
    key: &str,
    dry_run: bool,
    progress: &Progress,
) -> Result<(), PregenerateError> {
    // A listing of the whole store passes our own variants: not originals, and no event either.
    if pregenerator.is_output(key) {
        add(&progress.skipped, 1);
        return Ok(());
    }
    if dry_run {
        match pregenerator.assess(key).await? {
            Assessment::Ignored(_) | Assessment::Gone => add(&progress.skipped, 1),
            Assessment::Work(work) if work.todo.is_empty() => add(&progress.up_to_date, 1),
            Assessment::Work(work) => {
                add(&progress.generated, 1);
                add(&progress.variants, work.todo.len() as u64);
            }
        }
        return Ok(());
    }
    match pregenerator.created(key, None).await {
        Ok(Outcome::Generated { written, bytes, .. }) => {
            add(&progress.generated, 1);
            add(&progress.variants, written as u64);
            add(&progress.bytes_written, bytes);
        }
        Ok(Outcome::UpToDate { .. }) => add(&progress.up_to_date, 1),
        Ok(Outcome::Ignored(_) | Outcome::Removed { .. }) => add(&progress.skipped, 1),
        Err(PregenerateError::NotAnImage(_)) => add(&progress.skipped, 1),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Objects per second and the time left, from a start instant.
pub fn rate_and_eta(progress: &Progress, started: Instant) -> (f64, Option<std::time::Duration>) {
    let handled = get(&progress.handled);
    let rate = handled as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let eta = (progress.counted.load(Ordering::Relaxed) && rate > 0.0).then(|| {
        let left = get(&progress.total).saturating_sub(handled);
        std::time::Duration::from_secs_f64(left as f64 / rate)
    });
    (rate, eta)
}
