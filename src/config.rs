//! The one typed configuration: defaults in code, then a TOML file, then `SIZER_*` environment variables,
//! then command-line flags. `config/default.toml` mirrors the defaults and a test keeps the two equal.
//!
//! Nothing outside this module reads the environment for settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::options::presets::PresetValue;
use crate::pipeline::PngMode;

/// Every tunable of the service. Field docs are the reference; README's configuration table repeats them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub keys: KeysConfig,
    pub widths: WidthsConfig,
    pub limits: LimitsConfig,
    pub output: OutputConfig,
    pub cache: CacheConfig,
    pub pool: PoolConfig,
    /// Named bundles of URL options: `[presets.thumb] w = 300, h = 300, fit = "cover"`, used as `/p/thumb/`.
    pub presets: BTreeMap<String, BTreeMap<String, PresetValue>>,
    pub signing: SigningConfig,
    pub pregenerate: PregenerateConfig,
    pub events: EventsConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// How `sizer serve` writes its logs: `text` (one readable line per event) or `json` (one JSON object
    /// per line, for log pipelines). `RUST_LOG` sets the level either way.
    pub log_format: LogFormat,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this>` (401 without one,
    /// 403 with another); empty (the default): public, for a port only the network's scrapers reach.
    pub metrics_token: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PregenerateConfig {
    /// Variants made as soon as an original arrives (storage events, `sizer pregenerate`), written in the
    /// URL-option vocabulary without the key: `["w/300", "w/600", "w/900"]`, `"p/thumb"`, `"w/400/f/webp"`.
    /// Their variant keys are exactly those of HTTP requests with the same options.
    pub variants: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Bearer token `POST /events` requires. Empty: the endpoint is off (404).
    pub webhook_token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningConfig {
    /// HMAC-SHA256 keys as hex (at least 32 bytes each). The first signs (`sizer sign`); any verifies.
    pub keys: Vec<String>,
    /// Whether every image URL must be signed (403 otherwise). Needs `keys`.
    pub required: bool,
    /// Whether unsigned URLs may only name a preset (`/p/NAME/key`). Signed URLs may use any options.
    pub only_presets: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Whole-request budget for a variant (store reads, queueing and CPU work); past it the answer is 504.
    pub request_timeout_ms: u64,
    /// On SIGTERM/Ctrl-C, how long in-flight requests and pending write-backs have, together: the listener
    /// closes at once, and the process exits at the latest this long after the signal.
    pub shutdown_grace_ms: u64,
    /// A request's line and headers must arrive within this of their first byte (on a new connection: of
    /// its opening); otherwise the connection is closed. Slow clients (slowloris) cannot hold a slot longer.
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request for this long is closed. Keep it above the idle timeout of
    /// a load balancer in front (ALB: 60 s), so that the balancer is the one to close.
    pub keep_alive_timeout_ms: u64,
    /// A request body (only `POST /events` has one) must arrive whole within this; 408 otherwise.
    pub body_read_timeout_ms: u64,
    /// A response write that makes no progress for this long (the client reads nothing, or too little
    /// for the socket to take more) closes the connection: a slow reader cannot hold a slot, or the
    /// response it is not reading, for ever.
    pub write_timeout_ms: u64,
    /// Most client connections open at once. Past it, new connections wait in the kernel's accept queue
    /// until one closes. Each connection is a file descriptor: keep `ulimit -n` above it.
    pub max_connections: usize,
    /// Whether `GET /` serves the demo page. It is only ever served for the embedded default store
    /// (the shipped `samples/` directory).
    pub demo_page: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A local directory (`store.root`).
    Fs,
    /// An S3 bucket (`store.bucket`), credentials and endpoint from the standard AWS environment.
    S3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Directory of the local store. Relative paths resolve against the working directory.
    pub root: PathBuf,
    /// Bucket of the S3 store.
    pub bucket: String,
    /// S3 endpoint override (MinIO, Garage, R2). Empty: `AWS_ENDPOINT_URL` or AWS itself.
    pub endpoint: String,
    /// S3 region override. Empty: `AWS_REGION` / the AWS profile.
    pub region: String,
    /// S3: longest wait for a TCP connection to the endpoint. A refused or unreachable endpoint is a 502.
    pub connect_timeout_ms: u64,
    /// S3, per attempt: longest wait for the start of a reply (connecting and sending included), and then
    /// for each next piece of a body. Past it the attempt fails as timed out (504 once no attempt is left).
    pub read_timeout_ms: u64,
    /// S3: attempts per read (GET, HEAD, listing), DELETE and pre-generation PUT, first one included, for
    /// failures that can pass (connection errors, timeouts, 500, 503 `SlowDown`): the SDK's standard retry
    /// mode, exponential backoff with full jitter. Write-backs (PUT) are tried once. 1: no retries.
    pub max_attempts: u32,
    /// S3: the first retry waits a random time up to this; each further retry up to twice the last.
    pub retry_backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Where variants are written. Nothing under it is ever read as an original.
    pub copy_prefix: String,
    /// Prefixes originals may live under. Empty: any key outside the copy prefix.
    pub source_prefixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidthsConfig {
    /// If not empty, the only widths (and heights) unsigned URLs may ask for, before `dpr`,
    /// e.g. `[300, 600, 900]`.
    pub allowed: Vec<u32>,
    /// Largest width or height a URL may ask for, after `dpr`.
    pub max: u32,
    /// Whether a box larger than the original is honoured (upscaling). Off: the largest result of the asked
    /// shape that needs no upscaling is served, and the response says so in `Sizer-Upscale-Avoided`.
    pub allow_upscale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest original accepted, in bytes (checked against the store's size before downloading). 413 above.
    pub max_source_bytes: u64,
    /// Largest original accepted, in pixels (read from the header before decoding). 413 above.
    pub max_source_pixels: u64,
    /// Largest output, in pixels: checked on the URL when it gives both sides, else after reading the
    /// original's header, before decoding. 400 above.
    pub max_output_pixels: u64,
    /// Largest AVIF output, in pixels. An AVIF encode costs far more CPU than the others and cannot be
    /// interrupted: above this, a negotiated AVIF (`f/auto`) is written as WebP, a fixed `f/avif` is 400.
    pub max_avif_pixels: u64,
    /// Largest `dpr` a URL may give (at most one decimal).
    pub max_dpr: f64,
    /// If not empty, the only `q` values unsigned URLs may give (presets and signed URLs are free), e.g.
    /// `[60, 80]`: with `widths.allowed`, what bounds the variants an unsigned client can make the
    /// server compute and store.
    pub allowed_qualities: Vec<u8>,
    /// If not empty, the only `dpr` values unsigned URLs may give, e.g. `[1, 1.5, 2, 3]`.
    pub allowed_dprs: Vec<f64>,
    /// If not empty, the only `bg` colours unsigned URLs may give, six hex digits, e.g. `["ffffff"]`.
    pub allowed_backgrounds: Vec<String>,
    /// Memory that in-flight image work may hold at once, in bytes: every job reserves what it will
    /// allocate (compressed original, decoder buffers, pixels, resize, canvas and encoder buffers, its
    /// output) before holding any of it. Work beyond it waits in turn (FIFO) for as long as its deadline
    /// allows, or gets 503 at once when it could not finish in time. 0: unlimited.
    pub memory_budget_bytes: u64,
    /// Most jobs waiting for the memory budget at once; beyond it, 503 at once.
    pub memory_queue: usize,
    /// The longest a job waits for the memory budget, in ms, whatever its deadline; 0 (the default):
    /// as long as its deadline (`server.request_timeout_ms`) allows.
    pub memory_wait_ms: u64,
    /// Most frames an animated GIF or WebP may have (counted before decoding). 413 above.
    pub max_frames: u32,
    /// Most pixels an animation may hold over all its frames (frames × canvas). 413 above.
    pub max_animation_pixels: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Encoder quality for JPEG, WebP and AVIF, 1-100, when the URL gives no `q`. Part of every variant key.
    pub quality: u8,
    /// Whether URLs without `f/` negotiate the format as `f/auto` does.
    pub auto_format: bool,
    /// The formats `f/auto` may choose, best first, when the client accepts them (`avif`, `webp`);
    /// otherwise the original's format is kept.
    pub auto_formats: Vec<String>,
    /// The shared secret a CDN sends in `Sizer-Cdn-Secret` (an origin custom header) to have its
    /// normalised `Sizer-Accept` token honoured. Empty (the default): `Sizer-Accept` is ignored, since
    /// any client could send one, and a cache keyed on `Accept` alone would store its answer for all.
    pub accept_token_secret: String,
    /// PNG output: `lossless`, or `palette` (at most 256 colours: exact up to that, quantised above;
    /// about a third of the bytes of a photo). Part of every variant key.
    pub png: PngMode,
    /// Keep an original's embedded ICC profile in its variants (JPEG, PNG, WebP) instead of converting
    /// the pixels to sRGB; for sites that serve wide gamut on purpose. Part of every variant key.
    pub keep_profile: bool,
    /// Copy the original's EXIF `Artist` and `Copyright` fields (and nothing else) into JPEG, PNG and
    /// WebP variants. Part of every variant key.
    pub keep_copyright: bool,
    /// Serve the first frame of animated GIFs and WebPs instead of the animation. Part of every variant
    /// key (`_still`).
    pub first_frame_only: bool,
    /// `Cache-Control` of successful image responses. For a URL with `exp`, `http::headers` caps its
    /// `max-age` and `s-maxage` at the seconds left and drops `immutable` and `stale-*`.
    pub cache_control: String,
    /// `Cache-Control` of error responses.
    pub error_cache_control: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory cache budget in bytes of encoded variants. 0 disables the memory tier.
    pub max_bytes: u64,
    /// Variants larger than this are not kept in memory; copy-tier hits of them are streamed.
    pub max_item_bytes: u64,
    /// Budget for recently read originals and their decoded images, shared by the variants made of them
    /// (a `srcset`'s widths): bytes of encoded originals plus decoded pixels. 0 turns the sharing off.
    pub originals_max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Threads doing decode/resize/encode. 0: one per CPU core.
    pub workers: usize,
    /// Jobs allowed to wait for a worker; beyond that requests get 503 with `Retry-After`.
    pub queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        // One example preset ships, so `/p/thumb/...` works out of the box (the demo page shows it).
        let thumb = [
            ("w", PresetValue::Int(300)),
            ("h", PresetValue::Int(300)),
            ("fit", PresetValue::Text("cover".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            keys: KeysConfig::default(),
            widths: WidthsConfig::default(),
            limits: LimitsConfig::default(),
            output: OutputConfig::default(),
            cache: CacheConfig::default(),
            pool: PoolConfig::default(),
            presets: [("thumb".to_string(), thumb)].into_iter().collect(),
            signing: SigningConfig::default(),
            pregenerate: PregenerateConfig::default(),
            events: EventsConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_ms: 15_000,
            shutdown_grace_ms: 30_000,
            header_read_timeout_ms: 10_000,
            keep_alive_timeout_ms: 75_000,
            write_timeout_ms: 30_000,
            body_read_timeout_ms: 10_000,
            max_connections: 512,
            demo_page: true,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Fs,
            root: PathBuf::from(DEFAULT_ROOT),
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            connect_timeout_ms: 1_000,
            read_timeout_ms: 3_000,
            max_attempts: 3,
            retry_backoff_ms: 200,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            copy_prefix: "copy/".into(),
            source_prefixes: Vec::new(),
        }
    }
}

impl Default for WidthsConfig {
    fn default() -> Self {
        WidthsConfig {
            allowed: Vec::new(),
            max: 4096,
            allow_upscale: false,
        }
    }
}

/// The shortest bearer token or shared secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_source_bytes: 50 << 20,
            max_source_pixels: 100_000_000,
            max_output_pixels: 25_000_000,
            max_avif_pixels: 4_194_304,
            max_dpr: 3.0,
            allowed_qualities: Vec::new(),
            allowed_dprs: Vec::new(),
            allowed_backgrounds: Vec::new(),
            memory_budget_bytes: 512 << 20,
            memory_queue: 256,
            memory_wait_ms: 0,
            max_frames: 1_000,
            max_animation_pixels: 300_000_000,
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            quality: 80,
            auto_format: false,
            auto_formats: vec!["avif".into(), "webp".into()],
            accept_token_secret: String::new(),
            png: PngMode::Lossless,
            keep_profile: false,
            keep_copyright: false,
            first_frame_only: false,
            cache_control: "public, max-age=31536000, immutable".into(),
            error_cache_control: "no-store".into(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 256 << 20,
            max_item_bytes: 8 << 20,
            originals_max_bytes: 96 << 20,
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 0,
            queue: 16,
        }
    }
}

/// The sample directory shipped in the repository: the embedded default store.
pub const DEFAULT_ROOT: &str = "samples";

/// Prefix of environment overrides; nested keys are joined with `__`, e.g. `SIZER_CACHE__MAX_BYTES`.
pub const ENV_PREFIX: &str = "SIZER_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Command-line overrides, applied last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub root: Option<PathBuf>,
    pub bucket: Option<String>,
}

impl Config {
    /// Defaults → `file` (if any) → `SIZER_*` environment → `overrides`, then validated.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} not found",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only `SIZER_SECTION__KEY` variables: every setting lives in a section, so a typo inside one is
        // still refused, while other tools' `SIZER_*` variables (a benchmark's SIZER_BIN) are not settings.
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.apply(overrides);
        config.validate()
    }

    fn apply(&mut self, overrides: &Overrides) {
        if let Some(listen) = overrides.listen {
            self.server.listen = listen;
        }
        if let Some(root) = &overrides.root {
            self.store.kind = StoreKind::Fs;
            self.store.root = root.clone();
        }
        if let Some(bucket) = &overrides.bucket {
            self.store.kind = StoreKind::S3;
            self.store.bucket = bucket.clone();
        }
    }

    /// Checks the plain values and their cross-field rules, and normalises prefixes to end in `/`.
    /// Settings with a typed runtime form (presets, signing keys, allow-listed `dpr` and `bg` values,
    /// `auto_formats`, templates, header values) are checked by their one parse, `Settings::parse`.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        self.keys.copy_prefix = normalise_prefix(&self.keys.copy_prefix);
        if self.keys.copy_prefix.is_empty() {
            return invalid(
                "keys.copy_prefix must not be empty: variants need a prefix of their own".into(),
            );
        }
        for prefix in &mut self.keys.source_prefixes {
            *prefix = normalise_prefix(prefix);
            if prefix.is_empty() {
                return invalid("keys.source_prefixes must not contain an empty prefix; leave the list empty instead".into());
            }
            if prefix.starts_with(&self.keys.copy_prefix)
                || self.keys.copy_prefix.starts_with(prefix.as_str())
            {
                return invalid(format!(
                    "source prefix '{prefix}' overlaps the copy prefix '{}': variants would be read as originals",
                    self.keys.copy_prefix
                ));
            }
        }
        if !(1..=100).contains(&self.output.quality) {
            return invalid(format!(
                "output.quality must be 1-100, got {}",
                self.output.quality
            ));
        }
        if self.widths.max == 0 {
            return invalid("widths.max must be at least 1".into());
        }
        if let Some(w) = self
            .widths
            .allowed
            .iter()
            .find(|&&w| w == 0 || w > self.widths.max)
        {
            return invalid(format!(
                "widths.allowed contains {w}, outside 1..={}",
                self.widths.max
            ));
        }
        if !(1.0..10.0).contains(&self.limits.max_dpr)
            || (self.limits.max_dpr * 10.0).fract() != 0.0
        {
            return invalid(format!(
                "limits.max_dpr must be from 1 to 9.9 with at most one decimal, got {}",
                self.limits.max_dpr
            ));
        }
        if self.limits.max_frames == 0 {
            return invalid("limits.max_frames must be at least 1".into());
        }
        if let Some(q) = self
            .limits
            .allowed_qualities
            .iter()
            .find(|q| !(1..=100).contains(*q))
        {
            return invalid(format!(
                "limits.allowed_qualities contains {q}, outside 1-100"
            ));
        }
        if self.limits.max_avif_pixels == 0 {
            return invalid("limits.max_avif_pixels must be at least 1".into());
        }
        if self.server.write_timeout_ms == 0 {
            return invalid("server.write_timeout_ms must be above 0".into());
        }
        // A guessable secret is no secret: bearer tokens and the CDN's secret, when set, are long.
        for (name, secret) in [
            ("events.webhook_token", &self.events.webhook_token),
            ("telemetry.metrics_token", &self.telemetry.metrics_token),
            (
                "output.accept_token_secret",
                &self.output.accept_token_secret,
            ),
        ] {
            if !secret.is_empty() && secret.trim().len() < MIN_SECRET_CHARS {
                return invalid(format!(
                    "{name} must be at least {MIN_SECRET_CHARS} characters when set (a long random string)"
                ));
            }
        }
        if self.limits.max_output_pixels == 0 {
            return invalid("limits.max_output_pixels must be at least 1".into());
        }
        if self.server.request_timeout_ms == 0 {
            return invalid("server.request_timeout_ms must be above 0".into());
        }
        if self.server.header_read_timeout_ms == 0
            || self.server.keep_alive_timeout_ms == 0
            || self.server.body_read_timeout_ms == 0
        {
            return invalid(
                "server.header_read_timeout_ms, server.keep_alive_timeout_ms and server.body_read_timeout_ms must be above 0"
                    .into(),
            );
        }
        if self.server.max_connections == 0 {
            return invalid("server.max_connections must be at least 1".into());
        }
        match self.store.kind {
            StoreKind::S3 if self.store.bucket.is_empty() => {
                return invalid(
                    "store.kind is s3 but store.bucket is empty (or use --bucket NAME)".into(),
                );
            }
            StoreKind::Fs if self.store.root.as_os_str().is_empty() => {
                return invalid(
                    "store.kind is fs but store.root is empty (or use --root DIR)".into(),
                );
            }
            _ => {}
        }
        if self.store.connect_timeout_ms == 0 || self.store.read_timeout_ms == 0 {
            return invalid(
                "store.connect_timeout_ms and store.read_timeout_ms must be above 0".into(),
            );
        }
        if !(1..=10).contains(&self.store.max_attempts) {
            return invalid(format!(
                "store.max_attempts must be 1-10 (1: no retries), got {}",
                self.store.max_attempts
            ));
        }
        Ok(self)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.server.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.server.shutdown_grace_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.server.header_read_timeout_ms)
    }

    pub fn keep_alive_timeout(&self) -> Duration {
        Duration::from_millis(self.server.keep_alive_timeout_ms)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.server.write_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.server.body_read_timeout_ms)
    }

    /// Worker threads of the CPU pool, with 0 resolved to the number of cores.
    pub fn pool_workers(&self) -> usize {
        match self.pool.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

fn normalise_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_toml_matches_the_defaults_in_code() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let from_file: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .extract()
            .expect("config/default.toml parses");
        // The file must spell out every key, not lean on the code's defaults.
        let bare: Config = Figment::new()
            .merge(Toml::file(&path))
            .extract()
            .expect("config/default.toml parses alone");
        assert_eq!(from_file, Config::default());
        assert_eq!(bare, Config::default());
    }

    #[test]
    fn prefixes_are_normalised_and_overlap_is_refused() {
        let mut c = Config::default();
        c.keys.copy_prefix = "/variants".into();
        c.keys.source_prefixes = vec!["images".into()];
        let c = c.validate().expect("valid");
        assert_eq!(c.keys.copy_prefix, "variants/");
        assert_eq!(c.keys.source_prefixes, vec!["images/".to_string()]);

        let mut c = Config::default();
        c.keys.source_prefixes = vec!["copy/originals".into()];
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.keys.copy_prefix = "".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn short_secrets_and_bad_allow_lists_are_refused() {
        // (the allow-listed dpr and bg values are `Settings::parse`'s: see settings.rs)
        let refused = |edit: &dyn Fn(&mut Config), field: &str| {
            let mut c = Config::default();
            edit(&mut c);
            let message = c.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{field}: {message}");
        };
        refused(
            &|c| c.events.webhook_token = "short".into(),
            "events.webhook_token",
        );
        refused(
            &|c| c.telemetry.metrics_token = "0123456789".into(),
            "telemetry.metrics_token",
        );
        refused(
            &|c| c.output.accept_token_secret = "abc".into(),
            "output.accept_token_secret",
        );
        refused(
            &|c| c.limits.allowed_qualities = vec![0],
            "limits.allowed_qualities",
        );
        let mut c = Config::default();
        c.events.webhook_token = "a-long-enough-token".into();
        c.limits.allowed_dprs = vec![1.0, 1.5, 3.0];
        assert!(c.validate().is_ok());
    }

    #[test]
    fn invalid_values_are_refused_with_the_field_named() {
        let mut c = Config::default();
        c.output.quality = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("output.quality")
        );
        let mut c = Config::default();
        c.widths.allowed = vec![300, 5000];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("widths.allowed")
        );
        let mut c = Config::default();
        c.store.kind = StoreKind::S3;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("store.bucket")
        );
        let mut c = Config::default();
        c.store.max_attempts = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("store.max_attempts")
        );
        let mut c = Config::default();
        c.server.header_read_timeout_ms = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("server.header_read_timeout_ms")
        );
        let mut c = Config::default();
        c.server.max_connections = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("server.max_connections")
        );
        let mut c = Config::default();
        c.store.read_timeout_ms = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("store.read_timeout_ms")
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's own Error.
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sizer.toml",
                "[widths]\nallowed = [300, 600, 900]\nmax = 2000\n[cache]\nmax_bytes = 5\n",
            )?;
            jail.set_env("SIZER_CACHE__MAX_BYTES", "1024");
            jail.set_env("SIZER_KEYS__SOURCE_PREFIXES", "[\"images/\", \"media\"]");
            jail.set_env("SIZER_SERVER__LISTEN", "0.0.0.0:9000");
            let flags = Overrides {
                listen: Some("127.0.0.1:7000".parse().unwrap()),
                ..Default::default()
            };
            let c =
                Config::load(Some(Path::new("sizer.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.widths.allowed, vec![300, 600, 900]);
            assert_eq!(c.widths.max, 2000);
            assert_eq!(c.cache.max_bytes, 1024, "environment beats the file");
            assert_eq!(
                c.keys.source_prefixes,
                vec!["images/".to_string(), "media/".to_string()]
            );
            assert_eq!(
                c.server.listen.to_string(),
                "127.0.0.1:7000",
                "flags beat the environment"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's own Error.
    fn variables_outside_a_section_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIZER_BIN", "/usr/local/bin/sizer");
            jail.set_env("SIZER_PORT", "8080");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c, Config::default());
            jail.set_env("SIZER_CACHE__MAX_BYTE", "1");
            assert!(
                Config::load(None, &Overrides::default()).is_err(),
                "a typo inside a section is refused"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's own Error.
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[cache]\nmax_byte = 5\n")?;
            let err = Config::load(Some(Path::new("typo.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("max_byte"), "{err}");
            assert!(Config::load(Some(Path::new("nope.toml")), &Overrides::default()).is_err());
            jail.set_env("SIZER_CACHE__MAX_BYTES", "lots");
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn overrides_select_the_store() {
        let mut c = Config::default();
        c.apply(&Overrides {
            bucket: Some("b".into()),
            ..Default::default()
        });
        assert_eq!(
            (c.store.kind, c.store.bucket.as_str()),
            (StoreKind::S3, "b")
        );
        c.apply(&Overrides {
            root: Some("/srv".into()),
            ..Default::default()
        });
        assert_eq!(
            (c.store.kind, c.store.root.as_path()),
            (StoreKind::Fs, Path::new("/srv"))
        );
    }
}
