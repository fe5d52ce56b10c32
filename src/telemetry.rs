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
}

impl Metrics {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
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
        ];
        let mut out = String::new();
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
