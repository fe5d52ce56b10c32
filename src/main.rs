//! The `sizer` command: `serve` (the default) and `resize`, the server's pipeline on one file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sizer::config::{Config, Overrides};
use sizer::pipeline::{self, Format, Job, PngMode};
use sizer::{Application, allocator, shutdown, telemetry};

#[derive(Parser)]
#[command(version, about = "Resize-on-demand image origin")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve images over HTTP (the default with no subcommand).
    Serve(ServeArgs),
    /// Resize one file with exactly the server's pipeline.
    Resize(ResizeArgs),
}

#[derive(Args, Default)]
struct ServeArgs {
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

#[derive(Args)]
struct ResizeArgs {
    input: PathBuf,
    output: PathBuf,
    /// Output width in pixels; the height keeps the aspect ratio.
    #[arg(long)]
    width: u32,
    /// Output format (jpeg, png, webp, gif, avif). Default: the input's. AVIF is written, not read.
    #[arg(long)]
    format: Option<String>,
    /// Encoder quality for JPEG, WebP and AVIF, 1-100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Write PNG output as an 8-bit palette PNG (lossy above 256 colours), as `output.png = "palette"`.
    #[arg(long)]
    png_palette: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Resize(args) => resize(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sizer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    telemetry::init();
    if !allocator::retain_freed_memory() {
        tracing::debug!("malloc tuning not available: freed buffers go back to the kernel");
    }
    let overrides = Overrides {
        listen: args.listen,
        root: args.root,
        bucket: args.bucket,
    };
    let config = Config::load(args.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until(shutdown::signal())
            .await
            .map_err(|e| e.to_string())
    })
}

fn resize(args: ResizeArgs) -> Result<(), String> {
    let format = args
        .format
        .as_deref()
        .map(|name| {
            Format::from_name(name)
                .ok_or_else(|| format!("unknown format '{name}': use jpeg, png, webp, gif or avif"))
        })
        .transpose()?;
    if args.width == 0 {
        return Err("--width must be at least 1".into());
    }
    let src = read_input(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let limits = Config::default().limits;
    let job = Job {
        width: args.width,
        quality: args.quality,
        png: if args.png_palette {
            PngMode::Palette
        } else {
            PngMode::Lossless
        },
        format,
        allow_upscale: false,
        max_pixels: limits.max_source_pixels,
        deadline: None,
    };
    let out =
        pipeline::process(&src, &job).map_err(|e| format!("{}: {e}", args.input.display()))?;
    std::fs::write(&args.output, &out.bytes)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    Ok(())
}

/// The CLI's input bytes. A regular file is mapped rather than copied into a fresh buffer: a one-shot
/// process would otherwise fault in and zero a page per 4 KiB of input before decoding starts (W1's
/// 4.4 MB original: system time 6.9 ms copied, 3.0 ms mapped). Anything that cannot be mapped (a pipe,
/// /dev/stdin, an empty file) is read. The pipeline sees the same `&[u8]` either way.
enum Input {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Input {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(map) => map,
            Input::Read(bytes) => bytes,
        }
    }
}

fn read_input(path: &std::path::Path) -> std::io::Result<Input> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read-only and private to this short-lived process. Should another
        // process truncate the file while it is being decoded, the process gets SIGBUS, the same
        // contract as other mapping tools (ripgrep); the server never maps its store's files.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            return Ok(Input::Mapped(map));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Input::Read(bytes))
}
