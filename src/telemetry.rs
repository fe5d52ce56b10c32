//! Logs, request ids and metrics. `init` sets up `tracing` (level from `RUST_LOG`, default info; text or
//! JSON lines, `telemetry.log_format`); [`observe_request`] is the outermost layer of the router: it gives
//! each request an id (its own `X-Request-Id` when that is sane, else a new one), runs it inside a span
//! carrying the id (so store and pipeline logs of the request carry it too), echoes the id, observes the
//! latency and body histograms and writes one log line; [`Metrics`] are the counters and histograms
//! `/metrics` exposes, with the [`Gauges`] read from their owners when it is scraped.
//!
//! Knows no other module of the HTTP layer: which tier served a response it reads from the response's
//! extensions ([`Tier`]).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::config::LogFormat;
use crate::histogram::{self, Histogram};
use crate::tier::Tier;

/// The request id header, read from requests and set on every response.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id taken from a client; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests start several apps) is harmless.
    let _ = match format {
        LogFormat::Text => builder
            // Colour codes only for a terminal: in CloudWatch (Lambda's stdout) or `docker logs` they are
            // noise.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        // One object per line, the event's fields at the top level and the request span's (its
        // `request_id`) under "span": what log pipelines (CloudWatch, Loki, Elasticsearch) index.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
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

/// The request's id: its own `X-Request-Id` when that is sane (1 to 128 characters of letters, digits
/// and `-_.:;=+/@`, as UUIDs, trace ids and CDN ids are), else a new one. An id that is not sane is
/// dropped rather than cleaned: it may be an attempt to forge log lines.
pub fn request_id(given: Option<&HeaderValue>) -> String {
    let sane = |id: &&str| {
        (1..=MAX_REQUEST_ID).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:;=+/@".contains(&b))
    };
    match given.and_then(|v| v.to_str().ok()).filter(sane) {
        Some(id) => id.to_string(),
        None => new_request_id(),
    }
}

/// 16 hex digits: SipHash of a counter under a key drawn at random once per process, so ids are unique
/// within a process, unpredictable, and distinct across replicas with overwhelming likelihood, without a
/// random number generator of our own.
fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(std::hash::RandomState::new).build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// The outermost layer: request id and span, latency and body histograms, one log line (method, path,
/// status, tier, milliseconds; the id from the span).
pub async fn observe_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&metrics.requests_in_flight);
    let id = request_id(request.headers().get(REQUEST_ID));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    let tier = response.extensions().get::<Tier>().copied();
    metrics.histograms.observe_request(tier, status, elapsed);
    if tier.is_some() && status == StatusCode::OK && method != Method::HEAD {
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = length {
            metrics.histograms.response_bytes.observe(length as f64);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let _entered = span.enter();
    let tier = tier.map_or("-", Tier::as_str);
    let ms = elapsed.as_secs_f64() * 1000.0;
    let status = status.as_u16();
    if response.status().is_server_error() {
        tracing::warn!(%method, %path, status, tier, ms = format_args!("{ms:.2}"), "request");
    } else {
        tracing::info!(%method, %path, status, tier, ms = format_args!("{ms:.2}"), "request");
    }
    response
}

/// A request's place in `sizer_requests_in_flight`, given back when the request is answered or dropped
/// (a client that goes away cancels its request's future).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a AtomicU64) -> InFlight<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `tier` label of `sizer_request_duration_seconds`: the tier that served a variant, `error` for
/// any error answer, `other` for the rest (`/healthz`, `/metrics`, the demo page, `POST /events`).
const REQUEST_TIERS: [&str; 5] = ["memory", "copy", "computed", "error", "other"];
/// The `class` label: the status class.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The histograms of `/metrics`.
#[derive(Debug)]
pub struct Histograms {
    /// Whole requests (to the response head), per tier and status class: `REQUEST_TIERS` × `CLASSES`.
    requests: Vec<Histogram>,
    /// Each read of an original from the store (GET and the body), for HTTP variants.
    pub fetch: Histogram,
    /// Each decode of an original on the pool (a still's one decode; an animation's frames), for HTTP
    /// variants. Shared decodes are not decodes.
    pub decode: Histogram,
    /// Resizing (and cropping, orienting, padding) each computed HTTP variant.
    pub resize: Histogram,
    /// Encoding each computed HTTP variant.
    pub encode: Histogram,
    /// Body bytes of each image sent (200 to a GET).
    pub response_bytes: Histogram,
}

impl Default for Histograms {
    fn default() -> Self {
        let stage = || Histogram::new(histogram::STAGE_SECONDS);
        Histograms {
            requests: (0..REQUEST_TIERS.len() * CLASSES.len())
                .map(|_| Histogram::new(histogram::REQUEST_SECONDS))
                .collect(),
            fetch: stage(),
            decode: stage(),
            resize: stage(),
            encode: stage(),
            response_bytes: Histogram::new(histogram::BODY_BYTES),
        }
    }
}

impl Histograms {
    fn observe_request(&self, tier: Option<Tier>, status: StatusCode, elapsed: Duration) {
        let tier = match tier {
            _ if status.is_client_error() || status.is_server_error() => 3,
            Some(Tier::Memory) => 0,
            Some(Tier::Copy) => 1,
            Some(Tier::Computed) => 2,
            None => 4,
        };
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        if let Some(h) = self.requests.get(tier * CLASSES.len() + class) {
            h.observe_duration(elapsed);
        }
    }
}

/// The size of a cache, read when `/metrics` is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheSize {
    pub bytes: u64,
    pub entries: u64,
}

/// Values read from their owners (the pool, the memory budget, the caches) when `/metrics` is scraped.
#[derive(Debug)]
pub struct Gauges<'a> {
    pub budget_total: u64,
    pub budget_in_use: u64,
    /// Jobs waiting for the memory budget, and the bytes they wait for.
    pub budget_queued: (usize, u64),
    /// The budget's histogram of granted reservations' waits.
    pub budget_wait: &'a Histogram,
    /// Reservations refused, by reason (`budget::Refusal::label`).
    pub budget_refusals: [(&'static str, u64); 3],
    pub pool_queued: usize,
    pub pool_running: usize,
    /// The pool's own histogram of waits (see `pool::PoolStats`).
    pub queue_wait: &'a Histogram,
    pub memory_cache: CacheSize,
    pub originals_cache: CacheSize,
}

/// Counters and histograms since start, exposed in Prometheus' text format at `/metrics`.
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
    /// Requests inside the service now (from their head to their response head), `/metrics`' own included.
    pub requests_in_flight: AtomicU64,
    pub histograms: Histograms,
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

    /// The text exposition: the gauges, the counters, then the histograms, each family with HELP and TYPE.
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
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
        let gauge = |out: &mut String, family: &str, help: &str, series: &[(&str, u64)]| {
            out.push_str(&format!("# HELP {family} {help}\n# TYPE {family} gauge\n"));
            for (labels, value) in series {
                out.push_str(&format!("{family}{labels} {value}\n"));
            }
        };
        gauge(
            &mut out,
            "sizer_memory_budget_bytes",
            "Memory in-flight image work may hold (0: unlimited), and holds now.",
            &[
                ("{state=\"total\"}", gauges.budget_total),
                ("{state=\"in_use\"}", gauges.budget_in_use),
                ("{state=\"waited_for\"}", gauges.budget_queued.1),
            ],
        );
        gauge(
            &mut out,
            "sizer_memory_queue_jobs",
            "Jobs waiting in turn for the memory budget now.",
            &[("", gauges.budget_queued.0 as u64)],
        );
        out.push_str(
            "# HELP sizer_memory_budget_refusals_total Reservations of the memory budget refused \
             (HTTP, events, backfills), by reason: the queue was full; the expected wait would end past \
             the deadline; waited until it could no longer finish in time.\n\
             # TYPE sizer_memory_budget_refusals_total counter\n",
        );
        for (reason, count) in gauges.budget_refusals {
            out.push_str(&format!(
                "sizer_memory_budget_refusals_total{{reason=\"{reason}\"}} {count}\n"
            ));
        }
        gauge(
            &mut out,
            "sizer_pool_jobs",
            "CPU pool jobs: waiting for a worker (the queue), and running on one.",
            &[
                ("{state=\"queued\"}", gauges.pool_queued as u64),
                ("{state=\"running\"}", gauges.pool_running as u64),
            ],
        );
        gauge(
            &mut out,
            "sizer_cache_bytes",
            "Bytes held by the memory cache of variants and the cache of originals and their decodes.",
            &[
                ("{cache=\"memory\"}", gauges.memory_cache.bytes),
                ("{cache=\"originals\"}", gauges.originals_cache.bytes),
            ],
        );
        gauge(
            &mut out,
            "sizer_cache_entries",
            "Entries in the memory cache of variants and the cache of originals and their decodes.",
            &[
                ("{cache=\"memory\"}", gauges.memory_cache.entries),
                ("{cache=\"originals\"}", gauges.originals_cache.entries),
            ],
        );
        // Gauges a soak watches for growth: connections, and every task alive on the runtime (their
        // requests, write-backs and helpers).
        let tasks = tokio::runtime::Handle::try_current()
            .map_or(0, |runtime| runtime.metrics().num_alive_tasks());
        out.push_str(&format!(
            "# HELP sizer_connections_open Client connections open now.\n\
             # TYPE sizer_connections_open gauge\n\
             sizer_connections_open {}\n\
             # HELP sizer_requests_in_flight Requests being handled now (this one included).\n\
             # TYPE sizer_requests_in_flight gauge\n\
             sizer_requests_in_flight {}\n\
             # HELP sizer_runtime_tasks Tasks alive on the async runtime.\n\
             # TYPE sizer_runtime_tasks gauge\n\
             sizer_runtime_tasks {tasks}\n",
            Metrics::get(&self.connections_open),
            Metrics::get(&self.requests_in_flight)
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
        let family = |out: &mut String, name: &str, help: &str| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        };
        let h = &self.histograms;
        family(
            &mut out,
            "sizer_request_duration_seconds",
            "Requests, to the response head, by tier (memory, copy, computed; error for error answers; \
             other for the other endpoints) and status class. Series appear once observed.",
        );
        for (i, tier) in REQUEST_TIERS.iter().enumerate() {
            for (j, class) in CLASSES.iter().enumerate() {
                let series = h.requests.get(i * CLASSES.len() + j);
                if let Some(series) = series.filter(|s| s.count() > 0) {
                    series.render(
                        &mut out,
                        "sizer_request_duration_seconds",
                        &format!("tier=\"{tier}\",class=\"{class}\""),
                    );
                }
            }
        }
        for (name, series, help) in [
            (
                "sizer_fetch_seconds",
                &h.fetch,
                "Reads of an original from the store for HTTP variants (the request and the whole body).",
            ),
            (
                "sizer_decode_seconds",
                &h.decode,
                "Decodes of an original for HTTP variants, on a pool worker (shared decodes are not counted).",
            ),
            (
                "sizer_resize_seconds",
                &h.resize,
                "Resizing (crop, orientation, padding included) of each computed HTTP variant.",
            ),
            (
                "sizer_encode_seconds",
                &h.encode,
                "Encoding of each computed HTTP variant.",
            ),
            (
                "sizer_queue_wait_seconds",
                gauges.queue_wait,
                "Waits of CPU pool jobs (decode, render; background work too) for a worker.",
            ),
            (
                "sizer_memory_wait_seconds",
                gauges.budget_wait,
                "Waits of jobs (HTTP, events, backfills) for their memory reservation, when granted.",
            ),
            (
                "sizer_response_bytes",
                &h.response_bytes,
                "Body bytes of the images sent (200 answers to GET).",
            ),
        ] {
            family(&mut out, name, help);
            series.render(&mut out, name, "");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_kept_and_anything_else_replaced() {
        let id = |v: &[u8]| request_id(Some(&HeaderValue::from_bytes(v).unwrap()));
        assert_eq!(id(b"abc-123"), "abc-123");
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
        assert_eq!(id(trace.as_bytes()), trace);
        let long = "x".repeat(MAX_REQUEST_ID + 1);
        for bad in [
            &b"two words"[..],
            b"quote\"",
            b"a\tb",
            b"\xff",
            long.as_bytes(),
        ] {
            let made = id(bad);
            assert_eq!(made.len(), 16, "{bad:?} replaced by a new id");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let (a, b) = (request_id(None), request_id(None));
        assert_ne!(a, b);
    }

    #[test]
    fn every_series_belongs_to_a_family_with_help_and_type() {
        let metrics = Metrics::default();
        let h = &metrics.histograms;
        h.observe_request(
            Some(Tier::Computed),
            StatusCode::OK,
            Duration::from_millis(3),
        );
        h.observe_request(Some(Tier::Memory), StatusCode::NOT_MODIFIED, Duration::ZERO);
        h.observe_request(None, StatusCode::NOT_FOUND, Duration::from_millis(1));
        h.observe_request(None, StatusCode::OK, Duration::from_millis(1));
        let wait = Histogram::new(histogram::STAGE_SECONDS);
        let text = metrics.render(&Gauges {
            budget_total: 4 << 20,
            budget_in_use: 1 << 20,
            budget_queued: (3, 2 << 20),
            budget_wait: &wait,
            budget_refusals: [
                ("queue_full", 1),
                ("would_miss_deadline", 2),
                ("waited_too_long", 0),
            ],
            pool_queued: 2,
            pool_running: 1,
            queue_wait: &wait,
            memory_cache: CacheSize {
                bytes: 10,
                entries: 1,
            },
            originals_cache: CacheSize::default(),
        });
        for series in [
            "sizer_request_duration_seconds_count{tier=\"computed\",class=\"2xx\"} 1\n",
            "sizer_request_duration_seconds_bucket{tier=\"computed\",class=\"2xx\",le=\"0.0025\"} 0\n",
            "sizer_request_duration_seconds_bucket{tier=\"computed\",class=\"2xx\",le=\"0.005\"} 1\n",
            "sizer_request_duration_seconds_count{tier=\"memory\",class=\"3xx\"} 1\n",
            "sizer_request_duration_seconds_count{tier=\"error\",class=\"4xx\"} 1\n",
            "sizer_request_duration_seconds_count{tier=\"other\",class=\"2xx\"} 1\n",
            "sizer_pool_jobs{state=\"queued\"} 2\n",
            "sizer_cache_entries{cache=\"memory\"} 1\n",
            "sizer_memory_budget_bytes{state=\"in_use\"} 1048576\n",
            "sizer_memory_budget_bytes{state=\"waited_for\"} 2097152\n",
            "sizer_memory_queue_jobs 3\n",
            "sizer_memory_budget_refusals_total{reason=\"would_miss_deadline\"} 2\n",
            "sizer_memory_wait_seconds_count 0\n",
            "sizer_queue_wait_seconds_count 0\n",
            "sizer_response_bytes_bucket{le=\"+Inf\"} 0\n",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        assert!(
            !text.contains("{tier=\"copy\",class="),
            "series never observed are left out"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or(line);
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .find(|f| text.contains(&format!("# TYPE {f} histogram\n")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# HELP {family} "))
                    && text.contains(&format!("# TYPE {family} ")),
                "{line}: no HELP and TYPE for {family}"
            );
        }
    }
}
