//! Builds the running service from a `Config`: the store, the CPU pool, the tiers, the router and the
//! bound listener. Tests build it on port 0 and read the real port back.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::config::{Config, ConfigError, DEFAULT_ROOT, StoreKind};
use crate::events::Events;
use crate::http::connections::{self, ConnectionLimits};
use crate::http::{self, AppState};
use crate::pool::CpuPool;
use crate::pregenerate::Pregenerator;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;
use crate::variants::Variants;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    store_description: String,
}

impl Application {
    /// Opens the configured store and binds the listener.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let store = open_store(&config).await?;
        let demo_root = (config.store.kind == StoreKind::Fs
            && config.store.root == Path::new(DEFAULT_ROOT))
        .then(|| crate::store::fs::resolve_root(&config.store.root));
        Application::assemble(config, store, demo_root.as_deref()).await
    }

    /// As `build`, over a store the caller made (tests wrap the real stores to count calls).
    pub async fn build_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Application, StartupError> {
        Application::assemble(config, store, None).await
    }

    async fn assemble(
        config: Config,
        store: Arc<dyn Store>,
        demo_root: Option<&Path>,
    ) -> Result<Application, StartupError> {
        let store_description = store.describe();
        let listen = config.server.listen;
        let state = assemble_state(config, store, demo_root)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| StartupError::Listen(listen, e))?;
        Ok(Application {
            listener,
            state,
            store_description,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; then refuses new connections, and lets in-flight requests and
    /// then pending write-backs finish, all within `server.shutdown_grace_ms` of the signal.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application {
            listener,
            state,
            store_description,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, store = store_description, "sizer listening");
        let drained = connections::serve(
            listener,
            http::router(Arc::clone(&state)),
            ConnectionLimits::from_config(&state.config),
            Arc::clone(&state.variants.metrics().connections_open),
            shutdown,
            state.config.shutdown_grace(),
        )
        .await;
        if drained.still_open > 0 {
            tracing::warn!(
                connections = drained.still_open,
                "shutdown grace elapsed with requests still open; closing them"
            );
        }
        let left = drained.deadline.saturating_duration_since(Instant::now());
        if !state.variants.drain_write_backs(left).await {
            tracing::warn!(
                "shutdown grace elapsed with write-backs pending; those variants will be recomputed"
            );
        }
        tracing::info!("sizer stopped");
        Ok(())
    }
}

/// Everything a request needs, without a listener: what the Lambda runtime drives (see `lambda`).
pub async fn build_state(config: Config) -> Result<Arc<AppState>, StartupError> {
    let store = open_store(&config).await?;
    assemble_state(config, store, None)
}

/// As `build_state`, over a store the caller made (tests wrap the real stores to count calls).
pub fn build_state_with_store(
    config: Config,
    store: Arc<dyn Store>,
) -> Result<Arc<AppState>, StartupError> {
    assemble_state(config, store, None)
}

fn assemble_state(
    config: Config,
    store: Arc<dyn Store>,
    demo_root: Option<&Path>,
) -> Result<Arc<AppState>, StartupError> {
    let settings = Settings::parse(&config)?;
    let pool = CpuPool::from_config(&config)?;
    let metrics = Arc::new(Metrics::default());
    let variants = Variants::new(
        &config,
        Arc::clone(&store),
        pool.clone(),
        Arc::clone(&metrics),
    );
    let pregenerator = Pregenerator::new(&config, &settings, store, pool, Arc::clone(&metrics));
    let bucket = (config.store.kind == StoreKind::S3).then(|| config.store.bucket.clone());
    let events = Events::new(
        Arc::new(pregenerator),
        variants.clone(),
        metrics,
        bucket,
        2 * config.pool_workers(),
    );
    Ok(Arc::new(AppState::new(
        config, &settings, variants, events, demo_root,
    )?))
}

/// Opens the store the configuration names (see [`crate::store::open`]).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    Ok(crate::store::open(&config.store).await?)
}
