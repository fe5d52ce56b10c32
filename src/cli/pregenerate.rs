//! `sizer pregenerate [--prefix P] [--concurrency N] [--dry-run]`: backfills the configured variants
//! (`[pregenerate] variants`) of every original in the store. A progress bar with rate and ETA on a
//! terminal, a plain line every ten seconds otherwise; each failure on its own line; a summary at the end.
//! Ctrl-C finishes the originals in flight and stops; running it again resumes (fresh variants are
//! skipped). Exit status: 0 when every original succeeded, 1 otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::store_args::StoreArgs;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sizer::pool::CpuPool;
use sizer::pregenerate::Pregenerator;
use sizer::pregenerate::backfill::{self, Backfill, Ended, Progress, get};
use sizer::settings::Settings;
use sizer::telemetry::Metrics;

#[derive(Args)]
pub struct PregenerateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only originals whose keys start with this (default: every source prefix, or the whole store).
    #[arg(long)]
    prefix: Option<String>,
    /// Originals worked on at once (default: twice the CPU workers).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: Option<u16>,
    /// Count what is missing without writing anything.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: PregenerateArgs) -> Result<(), String> {
    let config = args.store.load()?;
    if config.pregenerate.variants.is_empty() {
        return Err(
            "no variants to make: set [pregenerate] variants, e.g. [\"w/300\", \"w/600\", \"w/900\"]"
                .into(),
        );
    }
    let prefixes = match args.prefix {
        Some(prefix) => vec![prefix],
        None if config.keys.source_prefixes.is_empty() => vec![String::new()],
        None => config.keys.source_prefixes.clone(),
    };
    let concurrency = args
        .concurrency
        .map_or(2 * config.pool_workers(), usize::from);
    let settings = Settings::parse(&config).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = sizer::startup::open_store(&config)
            .await
            .map_err(|e| e.to_string())?;
        let pool = CpuPool::from_config(&config).map_err(|e| e.to_string())?;
        let pregenerator =
            Pregenerator::new(&config, &settings, store, pool, Arc::new(Metrics::default()));
        let what = if args.dry_run { "checking" } else { "making" };
        eprintln!(
            "sizer pregenerate: {what} {} under {} in {}",
            config.pregenerate.variants.join(", "),
            prefixes
                .iter()
                .map(|p| if p.is_empty() { "(everything)" } else { p.as_str() })
                .collect::<Vec<_>>()
                .join(", "),
            pregenerator.store().describe(),
        );
        let progress = Progress::default();
        let started = Instant::now();
        let display = Display::new(&progress, started);
        let mut ended = Ended::Complete;
        for prefix in prefixes {
            let backfill = Backfill {
                prefix,
                concurrency,
                dry_run: args.dry_run,
            };
            let on_failure = |key: &str, e: &sizer::pregenerate::PregenerateError| {
                display.println(&format!("failed: {key}: {e}"));
            };
            let run = backfill::run(
                &pregenerator,
                &backfill,
                &progress,
                sizer::shutdown::signal(),
                on_failure,
            );
            tokio::pin!(run);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            ended = loop {
                tokio::select! {
                    result = &mut run => break result.map_err(|e| format!("listing failed: {e}"))?,
                    _ = tick.tick() => display.update(),
                }
            };
            if ended == Ended::Interrupted {
                break;
            }
        }
        display.finish();
        let elapsed = started.elapsed();
        let handled = get(&progress.handled);
        let failed = get(&progress.failed);
        let (made, variants) = if args.dry_run {
            ("need variants", "variants missing or stale")
        } else {
            ("done", "variants written")
        };
        eprintln!(
            "sizer pregenerate: {handled} objects in {:.1} s ({:.1}/s): {} {made}, {} up to date, \
             {} skipped (not originals or not images), {failed} failed; {} {variants}, {} bytes written",
            elapsed.as_secs_f64(),
            handled as f64 / elapsed.as_secs_f64().max(1e-3),
            get(&progress.generated),
            get(&progress.up_to_date),
            get(&progress.skipped),
            get(&progress.variants),
            get(&progress.bytes_written),
        );
        if ended == Ended::Interrupted {
            return Err("interrupted; run the same command again to resume".into());
        }
        if failed > 0 {
            return Err(format!("{failed} originals failed (listed above)"));
        }
        Ok(())
    })
}

/// A progress bar on a terminal, a plain line every ten seconds otherwise.
struct Display<'a> {
    progress: &'a Progress,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: std::sync::Mutex<Instant>,
}

impl<'a> Display<'a> {
    fn new(progress: &'a Progress, started: Instant) -> Display<'a> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Display {
            progress,
            started,
            bar,
            last_line: std::sync::Mutex::new(started),
        }
    }

    fn update(&self) {
        let p = self.progress;
        let handled = get(&p.handled);
        match &self.bar {
            Some(bar) => {
                if p.counted.load(std::sync::atomic::Ordering::Relaxed) {
                    bar.set_length(get(&p.total));
                }
                bar.set_position(handled);
                bar.set_message(format!(
                    "{} variants, {} failed",
                    get(&p.variants),
                    get(&p.failed)
                ));
            }
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.elapsed() < Duration::from_secs(10) {
                    return;
                }
                *last = Instant::now();
                let (rate, eta) = backfill::rate_and_eta(p, self.started);
                let total = if p.counted.load(std::sync::atomic::Ordering::Relaxed) {
                    get(&p.total).to_string()
                } else {
                    "?".into()
                };
                let eta = eta.map_or("?".into(), |d| format!("{} s", d.as_secs()));
                eprintln!(
                    "sizer pregenerate: {handled}/{total} objects, {rate:.1}/s, ETA {eta}, {} variants, {} failed",
                    get(&p.variants),
                    get(&p.failed)
                );
            }
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("sizer pregenerate: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            self.update();
            bar.finish_and_clear();
        }
    }
}
