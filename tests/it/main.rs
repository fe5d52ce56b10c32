//! The integration suite, one binary (each file directly under `tests/` would link the whole dependency
//! tree again): every module starts the real service and talks to it over HTTP, against a temporary
//! directory and the real S3 server `scripts/test` starts; `lambda` runs the binary as a Lambda function
//! under the Runtime API emulator `scripts/test` installs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test crate: a panic is a failed test.

#[macro_use]
mod common;

mod animation;
mod backfill;
mod binary;
mod cloudfront;
mod coalescing;
mod colour;
mod demo;
mod drain;
mod errors;
mod events;
mod formats;
mod fuzz_corpus;
mod hostile_images;
mod hostile_urls;
mod lambda;
mod memory;
mod observability;
mod options;
mod pngsuite;
mod quality_floor;
mod readiness;
mod replicas;
mod resilience;
mod sharing;
mod signing;
mod slow_clients;
mod store_faults;
mod stores;
mod tiers;
