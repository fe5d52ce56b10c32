//! # sizer: a resize-on-demand image origin
//!
//! `GET /w/600/images/x.jpg` answers `images/x.jpg` resized to 600 px wide, from the fastest tier that has
//! it. The request path reads top to bottom through these modules:
//!
//! - [`http`]: routes, the variant handler, response headers, and the single mapping of errors to statuses.
//! - [`options`]: URL options as data: the path grammar, signed URLs, presets, `Accept` negotiation.
//! - [`spec`]: options checked against each other and the configuration, reduced to one canonical
//!   [`spec::VariantSpec`] with one variant key.
//! - [`variants`]: the tiers: memory cache (moka, bounded by bytes) → the variant under the copy prefix →
//!   computed from the original; coalescing of concurrent misses; background write-back.
//! - [`coalesce`]: the single-flight primitive `variants` uses.
//! - [`originals`]: one fetch and one decode of an original shared by the variants made of it at once;
//!   [`variant_error`] is why either could not serve one.
//! - [`budget`]: the memory admission budget every job reserves from before it holds anything large.
//! - [`pregenerate`]: the configured variants of an original, made on upload events or by a backfill.
//! - [`store`]: the `Store` trait with a local-directory and an S3 implementation.
//! - [`pool`]: the bounded CPU pool; a full queue is a 503, not a pile-up. [`allocator`] keeps the pool's
//!   freed buffers for reuse rather than faulting them in anew for every request.
//! - [`pipeline`]: probe → geometry → decode (at DCT scale for JPEG) → saliency → resize (SIMD, cropping)
//!   → orient → canvas → encode.
//! - [`config`]: the one typed configuration (defaults, TOML, `SIZER_*` environment, flags), and
//!   [`settings`]: its presets, signing keys, templates and header values, parsed once at start-up.
//! - [`startup`], [`shutdown`], [`telemetry`]: building the app, the stop signal, logs, request ids and
//!   metrics ([`histogram`] is its Prometheus histogram; [`tier`] names which tier answered).
//! - [`lambda`]: the same service as an AWS Lambda function (HTTP events through the same router, storage
//!   notifications to [`events`]), chosen at start-up when the Lambda Runtime API is there.
//!
//! `src/layers.rs` lists the modules in layers, lowest first; a test holds each to importing only from below.
//!
//! Invariants: the HTTP layer never decodes an image; nothing under the copy prefix is ever read as an
//! original; nothing below `variants` knows about HTTP; nothing in `pipeline` knows about stores.

pub mod allocator;
pub mod budget;
pub mod coalesce;
pub mod config;
pub mod events;
pub mod histogram;
pub mod http;
pub mod lambda;
#[cfg(test)]
mod layers;
pub mod options;
pub mod originals;
pub mod pipeline;
pub mod pool;
pub mod pregenerate;
pub mod settings;
pub mod shutdown;
pub mod spec;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tier;
pub mod variant_error;
pub mod variants;

pub use config::Config;
pub use startup::Application;
