//! A Prometheus histogram: fixed upper bounds, lock-free observation, and the text exposition of one
//! series (`_bucket{le}` cumulative, `_sum`, `_count`). A leaf: it knows nothing of what it measures, so the
//! pool, the tiers and the HTTP layer can all hold one without depending on each other.
//!
//! Hand-written rather than a metrics crate: `/metrics` is a few dozen fixed series, and this is the whole
//! of what they need.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Whole requests, in seconds: a memory hit takes well under a millisecond, a cold AVIF of a large photo
/// several seconds, and `server.request_timeout_ms` ends everything at 15 s by default.
pub const REQUEST_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One stage of the work (a store read, a decode, a resize, an encode, a wait for the pool), in seconds.
pub const STAGE_SECONDS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Response bodies, in bytes: powers of four from 1 KiB (an icon) to 16 MiB (past `cache.max_item_bytes`).
pub const BODY_BYTES: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, ascending; the `+Inf` bucket is implied.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds`, the last for `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        // The first bucket whose bound is at least the value (Prometheus' `le`).
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // Only fails when the closure returns None, which it never does.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends this series to `out` as `name_bucket`, `name_sum` and `name_count` lines; `labels` is the
    /// inside of the braces (`tier="memory",class="2xx"`), or empty. HELP and TYPE are the caller's, once
    /// per family.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::new(&[0.5, 1.0]);
        for v in [0.25, 0.5, 0.75, 8.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "tier=\"copy\"");
        assert_eq!(
            out,
            "x_seconds_bucket{tier=\"copy\",le=\"0.5\"} 2\n\
             x_seconds_bucket{tier=\"copy\",le=\"1\"} 3\n\
             x_seconds_bucket{tier=\"copy\",le=\"+Inf\"} 4\n\
             x_seconds_sum{tier=\"copy\"} 9.5\n\
             x_seconds_count{tier=\"copy\"} 4\n"
        );
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn an_unlabelled_series_has_no_empty_braces() {
        let h = Histogram::new(BODY_BYTES);
        h.observe(2000.0);
        let mut out = String::new();
        h.render(&mut out, "b", "");
        assert!(out.starts_with("b_bucket{le=\"1024\"} 0\nb_bucket{le=\"4096\"} 1\n"));
        assert!(out.ends_with("b_sum 2000\nb_count 1\n"), "{out}");
    }
}
