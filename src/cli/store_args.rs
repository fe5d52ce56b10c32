//! The store and configuration flags the store commands (`pregenerate`, `purge`) share, and the
//! configuration they load.

use std::path::PathBuf;

use clap::Args;
use sizer::config::{Config, Overrides};

#[derive(Args)]
pub struct StoreArgs {
    /// TOML configuration file (see config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Work on a local directory.
    #[arg(long, conflicts_with = "bucket")]
    root: Option<PathBuf>,
    /// Work on an S3 bucket (AWS_ENDPOINT_URL, AWS_REGION and credentials from the environment).
    #[arg(long)]
    bucket: Option<String>,
}

impl StoreArgs {
    /// Quiet logging (the command's own output is the report) and the configuration with these flags.
    pub fn load(self) -> Result<Config, String> {
        sizer::telemetry::init_quiet();
        let overrides = Overrides {
            root: self.root,
            bucket: self.bucket,
            ..Overrides::default()
        };
        Config::load(self.config.as_deref(), &overrides).map_err(|e| e.to_string())
    }
}
