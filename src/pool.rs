//! The bounded CPU pool: decode, resize and encode run here, never on the async runtime.
//!
//! `workers` threads take jobs; at most `queue` more may wait. A job beyond that is refused at once with
//! [`PoolError::Overloaded`] (503 + `Retry-After`), so a burst cannot pile up unbounded work and memory.
//! [`PoolStats`] count the jobs waiting and running and time each one's wait, for `/metrics`; a job runs
//! inside the span of the request that submitted it, so its logs carry that request's id.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("all {0} CPU workers are busy and the queue is full")]
    Overloaded(usize),
    #[error("a CPU job panicked: {0}")]
    Panicked(String),
}

/// Cheap to clone: clones share the threads and the admission count.
#[derive(Clone)]
pub struct CpuPool {
    threads: Arc<rayon::ThreadPool>,
    /// Memory the jobs' data may hold at once (see `budget`); unlimited unless set.
    budget: crate::budget::MemoryBudget,
    workers: usize,
    /// One permit per job running or waiting.
    admission: Arc<Semaphore>,
    stats: Arc<PoolStats>,
}

/// What the pool is doing, for `/metrics`.
#[derive(Debug)]
pub struct PoolStats {
    queued: AtomicUsize,
    running: AtomicUsize,
    /// Each job's wait, from its submission to its start on a worker.
    pub wait: crate::histogram::Histogram,
}

impl PoolStats {
    /// Jobs submitted and not yet started: admitted ones waiting for a worker, and background jobs
    /// waiting for admission.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Jobs running on a worker now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
}

/// Counts one job as queued from its creation until it is dropped: when the job starts on a worker, or
/// when its caller gives up before that.
struct Queued {
    stats: Arc<PoolStats>,
    since: Instant,
}

impl Queued {
    fn new(stats: &Arc<PoolStats>) -> Queued {
        stats.queued.fetch_add(1, Ordering::Relaxed);
        Queued {
            stats: Arc::clone(stats),
            since: Instant::now(),
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.stats.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one job as running while it lives.
struct Running(Arc<PoolStats>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CpuPool {
    pub fn new(workers: usize, queue: usize) -> std::io::Result<CpuPool> {
        let workers = workers.max(1);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("sizer-cpu-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(CpuPool {
            threads: Arc::new(threads),
            budget: crate::budget::MemoryBudget::unlimited(),
            workers,
            admission: Arc::new(Semaphore::new(workers + queue)),
            stats: Arc::new(PoolStats {
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                wait: crate::histogram::Histogram::new(crate::histogram::STAGE_SECONDS),
            }),
        })
    }

    /// The pool and memory budget `config` describes (`pool.*`, `limits.memory_*`): the server's, and
    /// the backfill's.
    pub fn from_config(config: &crate::config::Config) -> std::io::Result<CpuPool> {
        let limits = &config.limits;
        Ok(
            CpuPool::new(config.pool_workers(), config.pool.queue)?.with_memory_budget(
                crate::budget::MemoryBudget::new(
                    limits.memory_budget_bytes,
                    limits.memory_queue,
                    std::time::Duration::from_millis(limits.memory_wait_ms),
                ),
            ),
        )
    }

    /// This pool with `budget` for its callers to reserve from.
    pub fn with_memory_budget(mut self, budget: crate::budget::MemoryBudget) -> CpuPool {
        self.budget = budget;
        self
    }

    /// The memory budget the pool's callers reserve from before holding image data.
    pub fn budget(&self) -> &crate::budget::MemoryBudget {
        &self.budget
    }

    /// Jobs waiting and running, and their waits.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Runs `job` on a worker and waits for it, or refuses it at once when the pool is full.
    /// A panicking job becomes an error, and its slot is released either way.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| PoolError::Overloaded(self.workers))?;
        self.spawn(permit, Queued::new(&self.stats), job).await
    }

    /// As [`CpuPool::run`], but waits for a free slot instead of refusing: for background work (events,
    /// backfills) that has no client to answer 503 to and must not be dropped.
    pub async fn run_waiting<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let queued = Queued::new(&self.stats);
        let permit = Arc::clone(&self.admission)
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Overloaded(self.workers))?;
        self.spawn(permit, queued, job).await
    }

    async fn spawn<T, F>(
        &self,
        permit: OwnedSemaphorePermit,
        queued: Queued,
        job: F,
    ) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        self.threads.spawn(move || {
            let _entered = span.enter();
            queued.stats.wait.observe_duration(queued.since.elapsed());
            queued.stats.running.fetch_add(1, Ordering::Relaxed);
            let running = Running(Arc::clone(&queued.stats));
            drop(queued);
            let result = catch_unwind(AssertUnwindSafe(job));
            drop(running);
            drop(permit);
            let _ = tx.send(result);
        });
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(PoolError::Panicked(
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default(),
            )),
            Err(_) => Err(PoolError::Panicked("worker dropped the job".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_full_pool_refuses_instead_of_queueing() {
        let pool = CpuPool::new(1, 1).unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let pool = Arc::new(pool);
        let running = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .await
            }
        });
        started_rx.await.unwrap();
        // One running, one may wait, the third is refused.
        let waiting = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(|| 2).await }
        });
        while pool.admission.available_permits() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let refused = pool.run(|| 3).await.err();
        assert_eq!(refused, Some(PoolError::Overloaded(1)));
        let stats = pool.stats();
        assert_eq!((stats.running(), stats.queued()), (1, 1));
        release_tx.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(()));
        assert_eq!(waiting.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4));
        assert_eq!((stats.running(), stats.queued()), (0, 0));
        assert_eq!(
            stats.wait.count(),
            3,
            "every job that ran, not the refused one"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_slot() {
        let pool = CpuPool::new(1, 0).unwrap();
        let result: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(result, Err(PoolError::Panicked("boom".into())));
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }
}
