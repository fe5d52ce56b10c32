//! Request coalescing ("single flight"): concurrent callers asking for the same key share one run of the
//! work. The work runs in its own task, so it finishes (and its write-back happens) even if every caller
//! that asked for it has gone away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

pub struct Coalescer<T: Clone> {
    in_flight: Mutex<HashMap<String, Shared<BoxFuture<'static, T>>>>,
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Coalescer {
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` for `key` unless a run for `key` is already in flight, in which case waits for that one.
    /// `on_panic` turns a panicked run into a value every waiter receives.
    pub async fn run<F>(self: &Arc<Self>, key: &str, work: F, on_panic: fn(String) -> T) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match in_flight.get(key) {
                Some(existing) => existing.clone(),
                None => {
                    let this = Arc::clone(self);
                    let owned_key = key.to_string();
                    // The map lock is held until the entry is inserted, so the task's removal cannot come first.
                    // In the span of the caller that started it: its logs carry that request's id.
                    let work = tracing::Instrument::in_current_span(work);
                    let task = tokio::spawn(async move {
                        // Removes the entry when the work ends, also when it panics.
                        let _done = Landed {
                            coalescer: this,
                            key: owned_key,
                        };
                        work.await
                    });
                    let shared = async move {
                        match task.await {
                            Ok(out) => out,
                            Err(e) => on_panic(e.to_string()),
                        }
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key.to_string(), shared.clone());
                    shared
                }
            }
        };
        shared.await
    }

    /// Keys being worked on now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map_or(0, |m| m.len())
    }
}

struct Landed<T: Clone> {
    coalescer: Arc<Coalescer<T>>,
    key: String,
}

impl<T: Clone> Drop for Landed<T> {
    fn drop(&mut self) {
        self.coalescer
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let coalescer = Coalescer::<usize>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..20 {
            let (coalescer, runs) = (Arc::clone(&coalescer), Arc::clone(&runs));
            handles.push(tokio::spawn(async move {
                let work = async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 100
                };
                coalescer.run("k", work, |_| 0).await
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), 100);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_finished_run_is_not_reused() {
        let coalescer = Coalescer::<u32>::new();
        assert_eq!(coalescer.run("k", async { 1 }, |_| 0).await, 1);
        assert_eq!(coalescer.run("k", async { 2 }, |_| 0).await, 2);
    }

    #[tokio::test]
    async fn the_work_finishes_when_its_caller_is_gone() {
        let coalescer = Coalescer::<u32>::new();
        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        let work = async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            d.fetch_add(1, Ordering::SeqCst);
            7
        };
        let caller = tokio::spawn({
            let c = Arc::clone(&coalescer);
            async move { c.run("k", work, |_| 0).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        caller.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_run_reaches_every_waiter_as_a_value() {
        let coalescer = Coalescer::<String>::new();
        let out = coalescer
            .run("k", async { panic!("boom") }, |msg| {
                format!("failed: {msg}")
            })
            .await;
        assert!(out.starts_with("failed"), "{out}");
        assert_eq!(coalescer.in_flight(), 0);
    }
}
