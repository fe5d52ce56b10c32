//! `sizer resize IN OUT`: exactly the server's pipeline on one file, for scripts and timing.
#![allow(unsafe_code)] // FFI: a memory map of the input file (memmap2).

use std::path::PathBuf;

use clap::Args;
use sizer::config::Config;
use sizer::pipeline::{self, Fit, Format, Gravity, Job, OutputFormat, PngMode, Rgb, Target};

#[derive(Args)]
pub struct ResizeArgs {
    input: PathBuf,
    output: PathBuf,
    /// Output width in pixels (with no height, the height keeps the aspect ratio).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    width: Option<u32>,
    /// Output height in pixels.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    height: Option<u32>,
    /// How a width and height box is met: inside, cover, contain, fill (as the URL's fit/).
    #[arg(long, default_value = "inside")]
    fit: String,
    /// What a cover crop keeps, or where contain places the image (as the URL's g/).
    #[arg(long, default_value = "centre")]
    gravity: String,
    /// Padding and flattening colour, rrggbb (as the URL's bg/).
    #[arg(long)]
    background: Option<String>,
    /// Output format (jpeg, png, webp, avif, gif). Default: the input's.
    #[arg(long)]
    format: Option<String>,
    /// Encoder quality for JPEG, WebP and AVIF, 1-100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Write PNG output as an 8-bit palette PNG (lossy above 256 colours), as `output.png = "palette"`.
    #[arg(long)]
    png_palette: bool,
    /// Keep the input's ICC profile (embedded in JPEG, PNG, WebP) instead of converting to sRGB, as
    /// `output.keep_profile = true`.
    #[arg(long)]
    keep_profile: bool,
    /// Copy the input's EXIF Artist and Copyright (nothing else), as `output.keep_copyright = true`.
    #[arg(long)]
    keep_copyright: bool,
    /// Write the first frame of an animated GIF or WebP only, as `output.first_frame_only = true`.
    #[arg(long)]
    first_frame: bool,
}

pub fn run(args: ResizeArgs) -> Result<(), String> {
    let format =
        match args.format.as_deref() {
            None => OutputFormat::Original,
            Some(name) => OutputFormat::Fixed(Format::from_name(name).ok_or_else(|| {
                format!("unknown format '{name}': use jpeg, png, webp, avif or gif")
            })?),
        };
    let fit = Fit::from_name(&args.fit).ok_or_else(|| {
        format!(
            "unknown fit '{}': use inside, cover, contain or fill",
            args.fit
        )
    })?;
    let gravity = Gravity::from_name(&args.gravity)
        .ok_or_else(|| format!("unknown gravity '{}'", args.gravity))?;
    let background = match args.background.as_deref() {
        None => None,
        Some(hex) => {
            Some(Rgb::from_hex(hex).ok_or_else(|| format!("--background {hex}: use rrggbb"))?)
        }
    };
    let src = read_input(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let limits = Config::default().limits;
    let job = Job {
        target: Target {
            width: args.width,
            height: args.height,
            fit,
            gravity,
            allow_upscale: false,
        },
        background,
        quality: args.quality,
        png: if args.png_palette {
            PngMode::Palette
        } else {
            PngMode::Lossless
        },
        format,
        keep_profile: args.keep_profile,
        keep_credits: args.keep_copyright,
        max_pixels: limits.max_source_pixels,
        max_output_pixels: limits.max_output_pixels,
        max_avif_pixels: limits.max_avif_pixels,
        animation: pipeline::animation::Limits {
            animate: !args.first_frame,
            max_frames: limits.max_frames,
            max_pixels: limits.max_animation_pixels,
        },
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
