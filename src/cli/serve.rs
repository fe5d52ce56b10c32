//! `sizer serve` (the default): the HTTP service until SIGTERM / Ctrl-C; or, when started by AWS Lambda
//! (`AWS_LAMBDA_RUNTIME_API` set), the same service as a Lambda function (`sizer::lambda`).

use std::path::PathBuf;

use clap::Args;
use sizer::config::{Config, Overrides};
use sizer::{Application, allocator, lambda, shutdown, startup, telemetry};

#[derive(Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file (see config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Serve from a local directory.
    #[arg(long, conflicts_with = "bucket")]
    root: Option<PathBuf>,
    /// Serve from an S3 bucket (AWS_ENDPOINT_URL, AWS_REGION and credentials from the environment).
    #[arg(long)]
    bucket: Option<String>,
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    let malloc_tuned = allocator::retain_freed_memory();
    let overrides = Overrides {
        listen: args.listen,
        root: args.root,
        bucket: args.bucket,
    };
    // Configuration first: it chooses the log format. Its errors go to stderr from `main`.
    let config = Config::load(args.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    telemetry::init(config.telemetry.log_format);
    if !malloc_tuned {
        tracing::debug!("malloc tuning not available: freed buffers go back to the kernel");
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    if lambda::detected() {
        return runtime.block_on(async {
            let state = startup::build_state(config)
                .await
                .map_err(|e| e.to_string())?;
            lambda::run(state).await.map_err(|e| e.to_string())
        });
    }
    let served = runtime.block_on(async {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until(shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    });
    // What outlived the grace (a connection still open, a blocking file write) is abandoned, not waited
    // for: the exit stays within `server.shutdown_grace_ms` of the signal.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    served
}
