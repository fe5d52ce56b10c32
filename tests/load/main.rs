//! Load tests against the real binary, in a binary of their own: cargo runs test binaries one after
//! another, so nothing else of the suite runs beside them, and [`alone`] runs them one at a time. Their
//! figures (peak memory, work done in a time) are about the machine, which they must have to themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test crate: a panic is a failed test.

#[macro_use]
#[path = "../it/common/mod.rs"]
mod common;

mod memory;

/// Held for a load test's whole run: one at a time.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}
