//! Logging and counters. `init` sets up `tracing` (level from `RUST_LOG`, default info); `log_request` is
//! the middleware that writes one line per request; [`Metrics`] are the counters `/metrics` exposes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::http::headers::TIER;

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn")
    });
    // A second init (tests start several apps) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a terminal: in CloudWatch (Lambda's stdout) or `docker logs` they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(false)
        .try_init();
}

/// As [`init`], at `warn` unless `RUST_LOG` says otherwise: for commands whose own output is the report.
pub fn init_quiet() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// One log line per request: method, path, status, tier that served it, milliseconds.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let tier = response
        .headers()
        .get(TIER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    if response.status().is_server_error() {
        tracing::warn!(%method, %path, status, %tier, ms = format_args!("{ms:.2}"), "request");
    } else {
        tracing::info!(%method, %path, status, %tier, ms = format_args!("{ms:.2}"), "request");
    }
    response
}

/// Counters since start, exposed in Prometheus' text format at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub served_memory: AtomicU64,
    pub served_copy: AtomicU64,
    pub served_computed: AtomicU64,
    pub original_fetches: AtomicU64,
    pub write_backs: AtomicU64,
    pub write_back_failures: AtomicU64,
    pub overloaded: AtomicU64,
    /// Storage notifications received (records, after unwrapping SQS/SNS/EventBridge envelopes).
    pub events: AtomicU64,
    /// Events for sizer's own output (under the copy prefix, or marked): acknowledged, never processed.
    pub events_loop_guard: AtomicU64,
    /// Events for keys that are no original (outside the source prefixes), or not about objects.
    pub events_ignored: AtomicU64,
    /// Events whose work failed (reported for retry when retrying can help).
    pub event_failures: AtomicU64,
    pub pregenerated: AtomicU64,
    /// Pre-generation found the variant already there and up to date.
    pub pregenerated_fresh: AtomicU64,
    pub pregenerate_failures: AtomicU64,
    pub variants_removed: AtomicU64,
    /// Originals decoded for a variant.
    pub decodes: AtomicU64,
    /// Variants made from a decode another variant had already made (see `originals`).
    pub decodes_shared: AtomicU64,
    /// Requests refused because the memory budget stayed full.
    pub budget_refused: AtomicU64,
    /// The memory budget, for its gauge.
    pub budget: std::sync::OnceLock<crate::budget::MemoryBudget>,
    /// Client connections open now (a gauge; `http::connections` keeps it).
    pub connections_open: std::sync::Arc<AtomicU64>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_n(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "sizer_served_total{tier=\"memory\"}",
                &self.served_memory,
                "Variants served, by tier.",
            ),
            ("sizer_served_total{tier=\"copy\"}", &self.served_copy, ""),
            (
                "sizer_served_total{tier=\"computed\"}",
                &self.served_computed,
                "",
            ),
            (
                "sizer_original_fetches_total",
                &self.original_fetches,
                "Originals read from the store.",
            ),
            (
                "sizer_write_backs_total",
                &self.write_backs,
                "Variants written under the copy prefix.",
            ),
            (
                "sizer_write_back_failures_total",
                &self.write_back_failures,
                "Failed variant writes.",
            ),
            (
                "sizer_overloaded_total",
                &self.overloaded,
                "Requests refused with 503: CPU queue full.",
            ),
            (
                "sizer_decodes_total{shared=\"false\"}",
                &self.decodes,
                "Decoded originals used for HTTP variants: decoded for the variant, or shared with others.",
            ),
            (
                "sizer_decodes_total{shared=\"true\"}",
                &self.decodes_shared,
                "",
            ),
            (
                "sizer_memory_budget_refused_total",
                &self.budget_refused,
                "Requests refused with 503: the memory budget stayed full.",
            ),
            (
                "sizer_events_total",
                &self.events,
                "Storage notification records received.",
            ),
            (
                "sizer_events_ignored_total{reason=\"loop_guard\"}",
                &self.events_loop_guard,
                "Events acknowledged without work: for sizer's own output (loop guard), or not for an original.",
            ),
            (
                "sizer_events_ignored_total{reason=\"not_an_original\"}",
                &self.events_ignored,
                "",
            ),
            (
                "sizer_event_failures_total",
                &self.event_failures,
                "Events whose work failed.",
            ),
            (
                "sizer_pregenerated_total{result=\"written\"}",
                &self.pregenerated,
                "Pre-generated variants: written, already fresh, failed.",
            ),
            (
                "sizer_pregenerated_total{result=\"fresh\"}",
                &self.pregenerated_fresh,
                "",
            ),
            (
                "sizer_pregenerated_total{result=\"failed\"}",
                &self.pregenerate_failures,
                "",
            ),
            (
                "sizer_variants_removed_total",
                &self.variants_removed,
                "Variants deleted with their original.",
            ),
        ];
        let mut out = String::new();
        if let Some(budget) = self.budget.get() {
            out.push_str(&format!(
                "# HELP sizer_memory_budget_bytes Memory in-flight image work may hold, and holds now.\n\
                 # TYPE sizer_memory_budget_bytes gauge\n\
                 sizer_memory_budget_bytes{{state=\"total\"}} {}\n\
                 sizer_memory_budget_bytes{{state=\"in_use\"}} {}\n",
                budget.total(),
                budget.in_use()
            ));
        }
        // Gauges a soak watches for growth: connections, and every task alive on the runtime (their
        // requests, write-backs and helpers).
        let tasks = tokio::runtime::Handle::try_current()
            .map_or(0, |runtime| runtime.metrics().num_alive_tasks());
        out.push_str(&format!(
            "# HELP sizer_connections_open Client connections open now.\n\
             # TYPE sizer_connections_open gauge\n\
             sizer_connections_open {}\n\
             # HELP sizer_runtime_tasks Tasks alive on the async runtime.\n\
             # TYPE sizer_runtime_tasks gauge\n\
             sizer_runtime_tasks {tasks}\n",
            Metrics::get(&self.connections_open)
        ));
        for (name, counter, help) in rows {
            if !help.is_empty() {
                let family = name.split('{').next().unwrap_or(name);
                out.push_str(&format!(
                    "# HELP {family} {help}\n# TYPE {family} counter\n"
                ));
            }
            out.push_str(&format!("{name} {}\n", Metrics::get(counter)));
        }
        out
    }
}
