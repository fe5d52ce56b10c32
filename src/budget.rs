//! The memory admission budget: bytes that in-flight work may hold at once (originals being read, decoded
//! pixels, resize buffers), so that many concurrent requests for large originals queue or get a 503
//! instead of growing the process until the kernel kills it. The CPU pool bounds how many jobs run; this
//! bounds how much memory they hold.
//!
//! Work reserves its estimate before allocating and releases it when done (the reservation is dropped).
//! A reservation that cannot be granted within the wait is refused ([`BudgetError::Busy`], 503 with
//! `Retry-After`); one larger than the whole budget can never be granted ([`BudgetError::TooLarge`], 413).
//! Caches are budgeted separately (`cache.*`); what is not counted (decoder internals, encoder state,
//! allocator slack) is the documented overhead.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Granularity of reservations.
const UNIT: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the memory budget is in use by other images; try again shortly")]
    Busy,
    #[error(
        "this image needs about {needed} bytes to process, above the memory budget of {budget}"
    )]
    TooLarge { needed: u64, budget: u64 },
}

/// Cheap to clone: clones share the budget.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total_units: u32,
    wait: Duration,
}

/// Memory granted to one piece of work, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `bytes` (0: unlimited); a reservation waits at most `wait` for memory to free up.
    pub fn new(bytes: u64, wait: Duration) -> MemoryBudget {
        let total_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX >> 4);
        let total_units = total_units.min(Semaphore::MAX_PERMITS as u32);
        MemoryBudget {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            wait,
        }
    }

    /// Reserves `bytes`, waiting up to the configured time for other work to give memory back.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        if self.total_units == 0 {
            return Ok(Reservation { _permit: None });
        }
        let units = bytes.div_ceil(UNIT).max(1);
        if units > u64::from(self.total_units) {
            return Err(BudgetError::TooLarge {
                needed: bytes,
                budget: u64::from(self.total_units) * UNIT,
            });
        }
        let units = u32::try_from(units).unwrap_or(self.total_units);
        let acquire = Arc::clone(&self.units).acquire_many_owned(units);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation {
                _permit: Some(permit),
            }),
            _ => Err(BudgetError::Busy),
        }
    }

    /// Bytes reserved right now (for `/metrics`).
    pub fn in_use(&self) -> u64 {
        let free = self.units.available_permits() as u64;
        (u64::from(self.total_units).saturating_sub(free)) * UNIT
    }

    /// The whole budget in bytes (0: unlimited).
    pub fn total(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_queue_then_refuse_and_give_back_on_drop() {
        let budget = MemoryBudget::new(1 << 20, Duration::from_millis(50));
        let big = budget.reserve(800 << 10).await.unwrap();
        assert_eq!(budget.in_use(), 832 << 10, "rounded up to whole units");
        assert_eq!(
            budget.reserve(400 << 10).await.unwrap_err(),
            BudgetError::Busy
        );
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(400 << 10).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(big);
        assert_eq!(
            waiting.await.unwrap(),
            Ok(()),
            "granted once memory came back"
        );
        assert_eq!(budget.in_use(), 0);
        assert!(matches!(
            budget.reserve(2 << 20).await,
            Err(BudgetError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_zero_budget_is_unlimited() {
        let budget = MemoryBudget::new(0, Duration::ZERO);
        let _a = budget.reserve(u64::MAX / 2).await.unwrap();
        assert_eq!(budget.in_use(), 0);
    }
}
