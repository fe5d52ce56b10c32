//! `sizer purge KEY`: deletes every variant of one original (the direct children of
//! `<copy_prefix><KEY>/`; deeper keys there belong to originals under `KEY/`), whatever made them. The
//! original stays. Running servers may still hold some
//! of them in memory until restarted; a storage event for the original makes them forget.

use std::sync::Arc;

use super::store_args::StoreArgs;
use clap::Args;
use sizer::pool::CpuPool;
use sizer::pregenerate::{Outcome, Pregenerator};
use sizer::settings::Settings;
use sizer::telemetry::Metrics;

#[derive(Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The original's key, e.g. images/x.jpg.
    key: String,
}

pub fn run(args: PurgeArgs) -> Result<(), String> {
    let config = args.store.load()?;
    let key = args.key.trim_start_matches('/');
    if key.is_empty() {
        return Err("give the original's key, e.g. images/x.jpg".into());
    }
    if key.starts_with(&config.keys.copy_prefix) {
        return Err(format!(
            "{key} is under the copy prefix {}: give the original's key",
            config.keys.copy_prefix
        ));
    }
    let settings = Settings::parse(&config).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = sizer::startup::open_store(&config)
            .await
            .map_err(|e| e.to_string())?;
        let pool = CpuPool::new(1, 0).map_err(|e| e.to_string())?;
        let pregenerator = Pregenerator::new(
            &config,
            &settings,
            store,
            pool,
            Arc::new(Metrics::default()),
        );
        match pregenerator.remove_variants(key).await {
            Ok(Outcome::Removed { removed }) => {
                println!(
                    "removed {removed} variants of {key} (under {})",
                    pregenerator.variant_prefix(key)
                );
                Ok(())
            }
            Ok(other) => Err(format!("unexpected outcome {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
}
