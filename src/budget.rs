//! The memory admission budget: bytes that in-flight work may hold at once, so that many concurrent
//! requests for large originals wait their turn (or get a 503 early) instead of growing the process until
//! the kernel kills it. The CPU pool bounds how many jobs run; this bounds how much memory they hold.
//!
//! A job reserves, once and before it holds anything large, everything it will allocate that scales with
//! the image (its compressed bytes, the decoder's buffers, the decoded pixels, the resize and canvas
//! buffers, the encoder's state and output: [`crate::pipeline::memory`]), and holds the reservation for
//! exactly as long as those live. One reservation per job, so no job holds memory while it waits for more.
//!
//! **Admission is a FIFO queue** (tokio's semaphore is fair): a large job at the head is not starved by
//! small ones behind it. A wait is bounded by the job's own deadline (the request's
//! `server.request_timeout_ms`), not by a fixed timer, and a job that cannot be admitted in time is
//! refused at once rather than after waiting for nothing ([`BudgetError::Busy`], 503 + `Retry-After`):
//! - the queue already holds `limits.memory_queue` jobs;
//! - or its expected wait plus its expected run time ends past its deadline, on arrival or at any of the
//!   looks it takes while waiting (the work ahead of it shrinks, and what is known grows). Both are
//!   learned from the reservations given back: by Little's law the budget frees `total / hold` bytes a
//!   second, `hold` being the byte-weighted mean time a reservation is held, so a job with `ahead` bytes
//!   waiting before it, asking for `units` with `free` free, waits about
//!   `(ahead + units − free) × hold / total`, and runs as long as the least-squares line through recent
//!   jobs' (reserved bytes, seconds) says for its size (a fixed cost and a cost per byte), stretched by
//!   half again for safety;
//! - or, having waited, it reaches the last moment from which it could still finish in time (before
//!   anything is learned, the deadline itself).
//!
//! One reservation larger than the whole budget can never be granted ([`BudgetError::TooLarge`], 413).
//! Caches are budgeted separately (`cache.*`); what is not counted (the process, its runtime, connection
//! buffers, allocator slack) is the documented fixed overhead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::histogram::Histogram;

/// Granularity of reservations.
const UNIT: u64 = 64 * 1024;
/// Weight of the newest reservation in the learned hold times.
const ALPHA: f64 = 0.2;
/// The expected run time is stretched by this before a job is refused for lack of time, so that one
/// admitted late still finishes: run times vary with the image and with what else the cores do.
const RUN_MARGIN: f64 = 1.5;
/// How often a waiting job looks again at whether it can still finish in time.
const RECHECK: Duration = Duration::from_millis(100);

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.memory_queue` jobs were already waiting.
    QueueFull,
    /// The expected wait and run time end past the job's deadline: refused on arrival, or as soon as
    /// that is known while it waits.
    WouldMissDeadline,
    /// Waited until the job could no longer finish in time (or for `limits.memory_wait_ms`).
    WaitedTooLong,
}

impl Refusal {
    /// The label of `sizer_memory_budget_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::QueueFull => "queue_full",
            Refusal::WouldMissDeadline => "would_miss_deadline",
            Refusal::WaitedTooLong => "waited_too_long",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the memory budget is in use by other images; try again shortly")]
    Busy(Refusal),
    #[error(
        "this image needs about {needed} bytes to process, above the memory budget of {budget}"
    )]
    TooLarge { needed: u64, budget: u64 },
}

/// Cheap to clone: clones share the budget.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    units: Arc<Semaphore>,
    total_units: u32,
    /// Most jobs waiting at once; beyond it, refused at once.
    queue_cap: usize,
    /// Longest wait whatever the deadline (`limits.memory_wait_ms`); `None`: the deadline alone.
    max_wait: Option<Duration>,
    /// The jobs waiting, by turn: ticket → units.
    queue: Mutex<Queue>,
    learned: Mutex<Learned>,
    /// Each granted reservation's wait, for `/metrics`.
    wait: Histogram,
    refused: [AtomicU64; 3],
}

/// The jobs waiting for memory, in their turn.
#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    waiting: std::collections::BTreeMap<u64, u32>,
}

/// Exponentially weighted means over the jobs' reservations, each taken when its work was done.
#[derive(Debug, Default, Clone, Copy)]
struct Learned {
    /// Means of bytes, seconds held, bytes², bytes × seconds.
    bytes: f64,
    secs: f64,
    bytes_sq: f64,
    bytes_secs: f64,
}

impl Learned {
    fn add(&mut self, bytes: f64, secs: f64) {
        if self.bytes == 0.0 {
            *self = Learned {
                bytes,
                secs,
                bytes_sq: bytes * bytes,
                bytes_secs: bytes * secs,
            };
            return;
        }
        let mix = |old: f64, new: f64| old + ALPHA * (new - old);
        self.bytes = mix(self.bytes, bytes);
        self.secs = mix(self.secs, secs);
        self.bytes_sq = mix(self.bytes_sq, bytes * bytes);
        self.bytes_secs = mix(self.bytes_secs, bytes * secs);
    }

    /// The byte-weighted mean hold, in seconds (0 before anything was learned).
    fn hold(&self) -> f64 {
        if self.bytes > 0.0 {
            self.bytes_secs / self.bytes
        } else {
            0.0
        }
    }

    /// Seconds a job of `bytes` is expected to hold its reservation: the least-squares line through
    /// recent jobs (a fixed cost and a cost per byte: a job's reservation grows with its image, its time
    /// less than in proportion), or, when recent jobs were all of one size, in proportion to theirs.
    fn run_time(&self, bytes: f64) -> f64 {
        if self.bytes <= 0.0 {
            return 0.0;
        }
        let variance = self.bytes_sq - self.bytes * self.bytes;
        if variance <= 0.01 * self.bytes * self.bytes {
            return bytes * self.secs / self.bytes;
        }
        let slope = ((self.bytes_secs - self.bytes * self.secs) / variance).max(0.0);
        (self.secs + slope * (bytes - self.bytes)).max(0.0)
    }
}

/// Memory granted to one piece of work, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    granted: Instant,
    shared: Option<Arc<Shared>>,
    /// Whether its job's size and time were learned already (at [`Reservation::shrink_to`]).
    learned: bool,
}

impl Reservation {
    fn unlimited() -> Reservation {
        Reservation {
            permit: None,
            granted: Instant::now(),
            shared: None,
            learned: false,
        }
    }

    /// Bytes held (0 under an unlimited budget).
    pub fn bytes(&self) -> u64 {
        self.permit
            .as_ref()
            .map_or(0, |p| p.num_permits() as u64 * UNIT)
    }

    /// Adds `other`'s memory to this reservation (from the same budget).
    pub fn merge(&mut self, mut other: Reservation) {
        self.learned &= other.learned;
        match (&mut self.permit, other.permit.take()) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        if self.shared.is_none() {
            self.shared = other.shared.take();
        }
    }

    /// Gives back all but `bytes` (rounded up to the budget's unit) of this reservation, at once: for
    /// the part of a job that outlives its work (an encoded variant on its way to the store). The job's
    /// size and time are learned now: what is kept after is no measure of the work.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = usize::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(usize::MAX);
        if let (Some(permit), Some(shared)) = (&mut self.permit, &self.shared) {
            if !self.learned {
                shared.learn(permit.num_permits(), self.granted.elapsed());
                self.learned = true;
            }
            if permit.num_permits() > keep {
                drop(permit.split(permit.num_permits() - keep));
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let (Some(permit), Some(shared)) = (&self.permit, &self.shared)
            && !self.learned
        {
            shared.learn(permit.num_permits(), self.granted.elapsed());
        }
    }
}

impl Shared {
    fn learn(&self, units: usize, held: Duration) {
        if let Ok(mut learned) = self.learned.lock() {
            learned.add((units as u64 * UNIT) as f64, held.as_secs_f64());
        }
    }

    fn refuse(&self, why: Refusal) -> BudgetError {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        BudgetError::Busy(why)
    }

    /// Units waited for by the jobs ahead of `ticket` (all waiting jobs for `None`), and how many jobs wait.
    fn ahead(&self, ticket: Option<u64>) -> (u64, usize) {
        let Ok(queue) = self.queue.lock() else {
            return (0, 0);
        };
        let ahead = match ticket {
            Some(t) => queue.waiting.range(..t).map(|(_, &u)| u64::from(u)).sum(),
            None => queue.waiting.values().map(|&u| u64::from(u)).sum(),
        };
        (ahead, queue.waiting.len())
    }

    /// Seconds until `units` more could be granted behind `ahead` units already waiting, and the seconds
    /// the job would then hold them, from what was learned (zeros before anything was).
    fn expected(&self, ahead: u64, units: u32) -> (f64, f64) {
        let learned = self.learned.lock().map(|l| *l).unwrap_or_default();
        let free = self.units.available_permits() as u64;
        let short = (ahead + u64::from(units)).saturating_sub(free);
        let total = f64::from(self.total_units);
        let wait = short as f64 * learned.hold() / total;
        let run = learned.run_time((u64::from(units) * UNIT) as f64) * RUN_MARGIN;
        (wait, run)
    }
}

/// One job's place in the queue, given up when dropped.
struct Waiting<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl<'a> Waiting<'a> {
    fn new(shared: &'a Shared, units: u32) -> Waiting<'a> {
        let mut ticket = 0;
        if let Ok(mut queue) = shared.queue.lock() {
            ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.waiting.insert(ticket, units);
        }
        Waiting { shared, ticket }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.waiting.remove(&self.ticket);
        }
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (0: unlimited) with at most `queue_cap` jobs waiting, none longer than
    /// `max_wait` (zero: as long as its deadline allows).
    pub fn new(bytes: u64, queue_cap: usize, max_wait: Duration) -> MemoryBudget {
        let total_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX >> 4);
        let total_units = total_units.min(Semaphore::MAX_PERMITS as u32);
        MemoryBudget {
            shared: Arc::new(Shared {
                units: Arc::new(Semaphore::new(total_units as usize)),
                total_units,
                queue_cap,
                max_wait: (!max_wait.is_zero()).then_some(max_wait),
                queue: Mutex::new(Queue::default()),
                learned: Mutex::new(Learned::default()),
                wait: Histogram::new(crate::histogram::STAGE_SECONDS),
                refused: Default::default(),
            }),
        }
    }

    /// No budget at all: every reservation is granted at once.
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(0, 0, Duration::ZERO)
    }

    /// Reserves `bytes` for work that must finish by `deadline` (`None`: background work, which waits
    /// as long as it takes), in turn behind the work already waiting.
    pub async fn reserve(
        &self,
        bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Reservation, BudgetError> {
        let shared = &self.shared;
        if shared.total_units == 0 {
            return Ok(Reservation::unlimited());
        }
        let units = bytes.div_ceil(UNIT).max(1);
        if units > u64::from(shared.total_units) {
            return Err(BudgetError::TooLarge {
                needed: bytes,
                budget: u64::from(shared.total_units) * UNIT,
            });
        }
        let units = u32::try_from(units).unwrap_or(shared.total_units);
        let asked = Instant::now();
        let granted = |permit| {
            shared.wait.observe_duration(asked.elapsed());
            Reservation {
                permit: Some(permit),
                granted: Instant::now(),
                shared: Some(Arc::clone(shared)),
                learned: false,
            }
        };
        // Nobody ahead and room now: no queue to join.
        let (ahead, waiting) = shared.ahead(None);
        if waiting == 0
            && let Ok(permit) = Arc::clone(&shared.units).try_acquire_many_owned(units)
        {
            return Ok(granted(permit));
        }
        if waiting >= shared.queue_cap {
            return Err(shared.refuse(Refusal::QueueFull));
        }
        let latest_start = |run: f64| {
            deadline.map(|d| d.checked_sub(Duration::from_secs_f64(run)).unwrap_or(asked))
        };
        // Too late already, from what is known: refused before waiting.
        let too_late = |ahead: u64| {
            let (wait, run) = shared.expected(ahead, units);
            let latest = latest_start(run);
            let late = latest.is_some_and(|l| Instant::now() + Duration::from_secs_f64(wait) > l);
            if late {
                tracing::debug!(
                    bytes,
                    ahead_bytes = ahead * UNIT,
                    expected_wait_s = wait,
                    expected_run_s = run,
                    "memory reservation refused: it could not finish in time"
                );
            }
            (late, latest)
        };
        if too_late(ahead).0 {
            return Err(shared.refuse(Refusal::WouldMissDeadline));
        }
        let capped = shared.max_wait.map(|max| asked + max);
        let place = Waiting::new(shared, units);
        let acquire = Arc::clone(&shared.units).acquire_many_owned(units);
        tokio::pin!(acquire);
        // Waits in place (the same acquisition, so the turn is kept), looking again now and then: what
        // was learned, and the work ahead of this job, change while it waits. It gives up as soon as its
        // expected wait ends past the last moment from which it could still finish.
        loop {
            let (late, latest) = too_late(shared.ahead(Some(place.ticket)).0);
            if late {
                return Err(shared.refuse(Refusal::WouldMissDeadline));
            }
            let latest = match (latest, capped) {
                (Some(l), Some(c)) => Some(l.min(c)),
                (l, c) => l.or(c),
            };
            let look_again = Instant::now() + RECHECK;
            let until = latest.map_or(look_again, |l| l.min(look_again));
            match tokio::time::timeout_at(until.into(), &mut acquire).await {
                // Granted: by memory that a job just gave back, and what it learned may say that this
                // one can no longer finish in time. Then the memory goes to the next in turn.
                Ok(Ok(permit)) => {
                    let (_, run) = shared.expected(0, units);
                    if latest_start(run).is_some_and(|l| Instant::now() > l) {
                        drop(permit);
                        return Err(shared.refuse(Refusal::WaitedTooLong));
                    }
                    return Ok(granted(permit));
                }
                // The semaphore is never closed.
                Ok(Err(_)) => return Err(shared.refuse(Refusal::WaitedTooLong)),
                Err(_) if latest.is_some_and(|l| Instant::now() >= l) => {
                    return Err(shared.refuse(Refusal::WaitedTooLong));
                }
                Err(_) => {}
            }
        }
    }

    /// Bytes reserved right now (for `/metrics`).
    pub fn in_use(&self) -> u64 {
        let free = self.shared.units.available_permits() as u64;
        (u64::from(self.shared.total_units).saturating_sub(free)) * UNIT
    }

    /// The whole budget in bytes (0: unlimited).
    pub fn total(&self) -> u64 {
        u64::from(self.shared.total_units) * UNIT
    }

    /// Jobs waiting for memory now, and the bytes they wait for.
    pub fn queued(&self) -> (usize, u64) {
        let (units, jobs) = self.shared.ahead(None);
        (jobs, units * UNIT)
    }

    /// The wait of every granted reservation.
    pub fn waits(&self) -> &Histogram {
        &self.shared.wait
    }

    /// Reservations refused so far, by reason.
    pub fn refused(&self) -> [(Refusal, u64); 3] {
        [
            Refusal::QueueFull,
            Refusal::WouldMissDeadline,
            Refusal::WaitedTooLong,
        ]
        .map(|why| {
            (
                why,
                self.shared.refused[why as usize].load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn soon(ms: u64) -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn reservations_wait_in_turn_and_give_back_on_drop() {
        let budget = MemoryBudget::new(MIB, 8, Duration::ZERO);
        let big = budget.reserve(800 << 10, None).await.unwrap();
        assert_eq!(budget.in_use(), 832 << 10, "rounded up to whole units");
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(400 << 10, soon(5_000)).await.map(drop) }
        });
        while budget.queued().0 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(budget.queued(), (1, 448 << 10));
        drop(big);
        assert_eq!(
            waiting.await.unwrap(),
            Ok(()),
            "granted once memory came back"
        );
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.queued(), (0, 0));
        assert_eq!(budget.waits().count(), 2);
        assert!(matches!(
            budget.reserve(2 * MIB, None).await,
            Err(BudgetError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn the_queue_is_first_come_first_served_so_a_large_job_is_not_starved() {
        let budget = MemoryBudget::new(MIB, 8, Duration::ZERO);
        let first = budget.reserve(MIB / 2, None).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // A large job, then small ones that would fit now: the small ones wait behind it.
        for (name, bytes) in [("large", MIB), ("small-1", MIB / 4), ("small-2", MIB / 4)] {
            let (mine, order) = (budget.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let held = mine.reserve(bytes, soon(10_000)).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(held);
            }));
            while budget.queued().0 < tasks.len() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(order.lock().unwrap().is_empty(), "nothing jumped the queue");
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["large", "small-1", "small-2"]);
    }

    #[tokio::test]
    async fn a_wait_is_bounded_by_the_deadline_not_a_fixed_timer() {
        let budget = MemoryBudget::new(MIB, 8, Duration::ZERO);
        let held = budget.reserve(MIB, None).await.unwrap();
        // Nothing learned yet: it waits, up to its deadline, and is granted when memory comes back
        // after 300 ms (a fixed 100 ms timer would have refused it).
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(MIB / 2, soon(5_000)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        // With no room until after its deadline: refused at the deadline.
        let held = budget.reserve(MIB, None).await.unwrap();
        let asked = Instant::now();
        let refused = budget.reserve(MIB / 2, soon(200)).await.unwrap_err();
        let waited = asked.elapsed();
        assert!(
            matches!(
                refused,
                BudgetError::Busy(Refusal::WaitedTooLong | Refusal::WouldMissDeadline)
            ),
            "{refused:?}"
        );
        assert!(waited < Duration::from_millis(400), "{waited:?}");
        drop(held);
    }

    #[tokio::test]
    async fn work_that_cannot_finish_in_time_is_refused_at_once() {
        let budget = MemoryBudget::new(MIB, 8, Duration::ZERO);
        // Learn: a whole-budget reservation is held for 400 ms.
        let held = budget.reserve(MIB, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(held);
        let held = budget.reserve(MIB, None).await.unwrap();
        // Half the budget, with 300 ms left: it would wait ~400 ms and run ~200 ms. Refused now.
        let asked = Instant::now();
        assert_eq!(
            budget.reserve(MIB / 2, soon(300)).await.unwrap_err(),
            BudgetError::Busy(Refusal::WouldMissDeadline)
        );
        assert!(asked.elapsed() < Duration::from_millis(50));
        // With time enough it waits and is granted.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(MIB / 2, soon(5_000)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        let refused = budget.refused();
        assert_eq!(refused[1], (Refusal::WouldMissDeadline, 1));
    }

    #[tokio::test]
    async fn a_waiting_job_gives_up_as_soon_as_it_is_known_it_cannot_finish() {
        let budget = MemoryBudget::new(MIB, 8, Duration::ZERO);
        let held = budget.reserve(MIB, None).await.unwrap();
        let asked = Instant::now();
        let first = tokio::spawn({
            let budget = budget.clone();
            async move {
                let held = budget.reserve(MIB, soon(10_000)).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                drop(held);
                Ok::<_, BudgetError>(())
            }
        });
        // Joins while nothing is learned: it waits.
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(MIB, soon(1_000)).await.map(drop) }
        });
        while budget.queued().0 < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Learned: a whole-budget job holds it 400 ms. The first is granted; the second would wait
        // ~400 ms more and run ~600 ms, past its deadline: it gives up now, not at its deadline.
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(held);
        assert_eq!(
            second.await.unwrap(),
            Err(BudgetError::Busy(Refusal::WouldMissDeadline))
        );
        assert!(
            asked.elapsed() < Duration::from_millis(800),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(first.await.unwrap(), Ok(()));
    }

    #[test]
    fn run_times_follow_a_fixed_cost_plus_a_cost_per_byte() {
        // Small jobs of 1 MB take 0.2 s, large ones of 100 MB 1.2 s: a large one is not expected to take
        // a hundred small ones' time (what seconds-per-byte alone would say).
        let mut learned = Learned::default();
        for _ in 0..20 {
            learned.add(1e6, 0.2);
            learned.add(100e6, 1.2);
        }
        let large = learned.run_time(100e6);
        assert!((1.0..1.4).contains(&large), "{large}");
        let small = learned.run_time(1e6);
        assert!((0.1..0.4).contains(&small), "{small}");
        // All of one size: in proportion.
        let mut same = Learned::default();
        for _ in 0..10 {
            same.add(50e6, 2.0);
        }
        assert!((same.run_time(100e6) - 4.0).abs() < 1e-6);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let budget = MemoryBudget::new(MIB, 1, Duration::ZERO);
        let held = budget.reserve(MIB, None).await.unwrap();
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(MIB, soon(5_000)).await.map(drop) }
        });
        while budget.queued().0 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            budget.reserve(64 << 10, soon(5_000)).await.unwrap_err(),
            BudgetError::Busy(Refusal::QueueFull)
        );
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn shrinking_gives_back_all_but_what_is_kept() {
        let budget = MemoryBudget::new(MIB, 1, Duration::ZERO);
        let mut held = budget.reserve(MIB, None).await.unwrap();
        held.shrink_to(100 << 10);
        assert_eq!((held.bytes(), budget.in_use()), (128 << 10, 128 << 10));
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn an_unlimited_budget_grants_everything() {
        let budget = MemoryBudget::unlimited();
        let _a = budget.reserve(u64::MAX / 2, None).await.unwrap();
        assert_eq!(budget.in_use(), 0);
    }
}
