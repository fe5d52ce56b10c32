//! Image processing as an ordered list of small steps over plain pixel buffers:
//! [`probe`] (format, size, orientation, limits: before any decoding) → [`geometry`] (which region, what
//! size, which canvas: arithmetic only) → [`decode`] (JPEG straight at the smallest DCT scale that still
//! covers the target) → [`saliency`] (where a `smart` crop goes) → [`resize`] (fast_image_resize, SIMD,
//! cropping inside the resampler) → [`orient`] (EXIF orientation, applied to the small image) →
//! [`canvas`] (padding, alpha flattening) → [`encode`] (the requested or the original's format; AVIF is
//! written by [`encode::avif`] but not read).
//!
//! Synchronous and CPU-bound: callers run it on the CPU pool, never on the async runtime. Knows nothing of
//! stores or HTTP. The deadline is checked between steps.

pub mod animation;
pub mod canvas;
pub mod cmyk;
pub mod colour;
pub mod decode;
pub mod encode;
pub mod format;
pub mod geometry;
pub mod memory;
pub mod metadata;
pub mod orient;
pub mod palette;
pub mod probe;
pub mod resize;
pub mod saliency;

use std::time::Instant;

use decode::jpeg_header;

pub use canvas::Rgb;
pub use encode::PngMode;
pub use format::{Format, InputFormat};
pub use geometry::{Fit, Gravity, Target};

/// Which format the output is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// The original's.
    #[default]
    Original,
    /// This one, whatever the original.
    Fixed(Format),
    /// The best the client accepts, from content negotiation: `format`, unless the original is
    /// animated and `format` cannot animate; then `animated`, the format an animation is given instead
    /// (one the client takes too: see [`OutputFormat::negotiated`]), or without one the original's.
    Negotiated {
        format: Format,
        animated: Option<Format>,
    },
}

impl OutputFormat {
    /// The outcome of negotiating `format` from the `negotiable` list (best first): an animation that
    /// `format` cannot carry gets the first format of the list that can. The negotiation must grant a
    /// format that cannot animate only to a client that takes that one too (`options::accept` does), so
    /// the outcome, and the variant key it is stored under, depends on `format` alone.
    pub fn negotiated(format: Format, negotiable: &[Format]) -> OutputFormat {
        let animated = if can_animate(format) {
            None
        } else {
            animation_fallback(negotiable)
        };
        OutputFormat::Negotiated { format, animated }
    }

    fn resolve(self, original: Format, animated: bool) -> Format {
        match self {
            OutputFormat::Original => original,
            OutputFormat::Fixed(f) => f,
            OutputFormat::Negotiated {
                format,
                animated: fallback,
            } if animated && !can_animate(format) => fallback.unwrap_or(original),
            OutputFormat::Negotiated { format, .. } => format,
        }
    }
}

/// Formats that can carry an animation (see [`animation`]).
pub fn can_animate(format: Format) -> bool {
    matches!(format, Format::Gif | Format::WebP)
}

/// The format of a negotiable list (best first) that an animated original negotiated to a format that
/// cannot animate is given instead: the first that can. Negotiation grants such a format only with this
/// one, so both sides must ask here.
pub fn animation_fallback(negotiable: &[Format]) -> Option<Format> {
    negotiable.iter().copied().find(|&f| can_animate(f))
}

/// What to make of an original.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The box in displayed (orientation-applied) pixels and how to meet it.
    pub target: Target,
    /// Padding and flattening colour (see [`canvas`]).
    pub background: Option<Rgb>,
    /// Encoder quality for JPEG, WebP and AVIF, 1-100.
    pub quality: u8,
    /// How PNG output is written.
    pub png: PngMode,
    pub format: OutputFormat,
    /// Keep the original's ICC profile (embedded in the output) instead of converting to sRGB.
    pub keep_profile: bool,
    /// Copy the original's EXIF `Artist` and `Copyright` (nothing else) into the output.
    pub keep_credits: bool,
    /// Largest original accepted, in pixels.
    pub max_pixels: u64,
    /// Largest output accepted, in pixels.
    pub max_output_pixels: u64,
    /// Largest AVIF output, in pixels: AVIF costs far more CPU a pixel than the other encoders, and an
    /// encode cannot be interrupted once started (see [`bounded_format`]).
    pub max_avif_pixels: u64,
    /// Whether an animated original stays animated, and its caps.
    pub animation: animation::Limits,
    /// Give up between steps once past this instant.
    pub deadline: Option<Instant>,
}

impl Job {
    /// A plain resize to `width`, keeping the aspect ratio and the format, with default limits.
    pub fn width(width: u32) -> Job {
        Job {
            target: Target {
                width: Some(width),
                ..Target::default()
            },
            background: None,
            quality: 80,
            png: PngMode::Lossless,
            format: OutputFormat::Original,
            keep_profile: false,
            keep_credits: false,
            max_pixels: 100_000_000,
            max_output_pixels: 100_000_000,
            max_avif_pixels: 100_000_000,
            animation: animation::Limits::default(),
            deadline: None,
        }
    }
}

/// An encoded variant.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// Where the time went.
    pub timings: Timings,
}

/// Time spent in each stage of [`process`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Probe and decode.
    pub decode: std::time::Duration,
    /// Saliency, resize, orientation, padding and flattening.
    pub resize: std::time::Duration,
    pub encode: std::time::Duration,
}

/// How the channels of a [`Pixels`] buffer are laid out; 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    Rgb,
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// Whether RGBA bytes have alpha 255 everywhere, i.e. their alpha channel carries nothing.
pub(crate) fn is_opaque(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4).all(|p| p[3] == 255)
}

/// A decoded image: tightly packed rows, top to bottom.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

impl Pixels {
    /// The pixel data in layout `to`: grey expands to colour, alpha is added as opaque, or dropped (callers
    /// flatten first where it is not opaque), colour reduces to grey by its first channel (callers only
    /// ask for that of grey-valued pixels).
    pub(crate) fn data_as(&self, to: Layout) -> Vec<u8> {
        let data = &self.data;
        match (self.layout, to) {
            (from, to) if from == to => data.clone(),
            (Layout::Gray, Layout::Rgb) => data.iter().flat_map(|&v| [v, v, v]).collect(),
            (Layout::Gray, Layout::Rgba) => data.iter().flat_map(|&v| [v, v, v, 255]).collect(),
            (Layout::Rgb, Layout::Rgba) => data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            (Layout::Rgba, Layout::Rgb) => data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            (from, Layout::Gray) => data.chunks_exact(from.channels()).map(|p| p[0]).collect(),
            // Every pair is above; the compiler cannot see that the first arm covers equal ones.
            (_, _) => data.clone(),
        }
    }

    /// This image in layout `to` (see [`Pixels::data_as`]).
    pub(crate) fn into_layout(self, to: Layout) -> Pixels {
        if self.layout == to {
            return self;
        }
        Pixels {
            data: self.data_as(to),
            layout: to,
            ..self
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("not a supported image format (JPEG, PNG, WebP, GIF, TIFF, BMP, ICO, JPEG XL, SVG)")]
    Unsupported,
    #[error("unsupported image: {0}")]
    UnsupportedVariant(String),
    #[error("image is {width}x{height} = {pixels} pixels, above the limit of {limit}")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("the output would be {width}x{height} = {pixels} pixels, above the limit of {limit}")]
    OutputTooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error(
        "an AVIF output of {width}x{height} = {pixels} pixels is above the limit of {limit} \
         (limits.max_avif_pixels); ask for a smaller size or another format"
    )]
    AvifTooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("the animation has more than {limit} frames, the limit")]
    TooManyFrames { limit: u32 },
    #[error("the JPEG has more than {limit} scans, the limit")]
    TooManyScans { limit: usize },
    #[error("the animation is {frames} frames = {pixels} pixels, above the limit of {limit}")]
    AnimationTooLarge {
        frames: usize,
        pixels: u64,
        limit: u64,
    },
    #[error("image could not be decoded: {0}")]
    Undecodable(String),
    #[error("image could not be encoded: {0}")]
    Encode(String),
    #[error("deadline passed during processing")]
    DeadlinePassed,
}

/// Runs the whole pipeline on an original's bytes.
pub fn process(src: &[u8], job: &Job) -> Result<Encoded, PipelineError> {
    process_many(src, std::slice::from_ref(job))?
        .pop()
        .unwrap_or(Err(PipelineError::Unsupported))
}

/// Makes several outputs of one original with one probe and one decode, at the scale the largest output
/// needs; each output is then resized from that, finished and encoded in turn. An error that concerns the
/// original (unreadable, too many pixels) is the outer `Err`; one that concerns a single output (its size,
/// its encoder, the deadline) is that output's. Outputs come back in the order of `jobs`. The jobs share
/// `keep_profile` (a configuration-wide setting: the one decode is converted to sRGB or not for all).
pub fn process_many(
    src: &[u8],
    jobs: &[Job],
) -> Result<Vec<Result<Encoded, PipelineError>>, PipelineError> {
    let started = Instant::now();
    let max_pixels = jobs.iter().map(|j| j.max_pixels).min().unwrap_or(0);
    let original = Original::inspect(src, max_pixels)?;
    let plans: Vec<Result<Planned, PipelineError>> = jobs
        .iter()
        .map(|job| Planned::new(&original.info, job))
        .collect();
    // One decode covering every still output that can be made (animations decode frame by frame).
    let still =
        |(p, job): &(&Result<Planned, PipelineError>, &Job)| p.is_ok() && !original.animates(job);
    let (need_w, need_h) = plans
        .iter()
        .zip(jobs)
        .filter(still)
        .flat_map(|(p, _)| p)
        .fold((1, 1), |(w, h), p| (w.max(p.full.0), h.max(p.full.1)));
    let decoded = if plans.iter().zip(jobs).any(|pair| still(&pair)) {
        check(jobs.iter().filter_map(|j| j.deadline).min())?;
        let scale = decode::scale_for(&original.info, need_w, need_h);
        let keep = jobs.iter().all(|j| j.keep_profile);
        debug_assert!(
            jobs.iter().all(|j| j.keep_profile == keep),
            "jobs of one batch share keep_profile"
        );
        Some(original.decode(src, scale, keep)?)
    } else {
        None
    };
    let decode_time = started.elapsed();
    let make = |planned: Result<Planned, PipelineError>, job: &Job| {
        let planned = planned?;
        if original.animates(job) {
            return original.render_animation(src, &planned, job);
        }
        // Decoded whenever any still plan succeeded, and this one did.
        let decoded = decoded.as_ref().ok_or(PipelineError::Unsupported)?;
        let mut encoded = render(decoded, &original, &planned, job)?;
        encoded.timings.decode = decode_time;
        Ok(encoded)
    };
    let mut made: Vec<Result<Encoded, PipelineError>> = Vec::with_capacity(jobs.len());
    for (i, (planned, job)) in plans.into_iter().zip(jobs).enumerate() {
        // Two jobs that differ only in a format both resolve alike (an animation's `.auto-avif` and
        // `.auto-webp` are both animated WebP) make the same bytes: encoded once.
        let twin = jobs[..i]
            .iter()
            .zip(&made)
            .find_map(|(earlier, result)| match result {
                Ok(encoded) if original.same_output(earlier, job) => Some(encoded),
                _ => None,
            });
        made.push(match twin {
            Some(encoded) => Ok(Encoded {
                timings: Timings::default(),
                ..encoded.clone()
            }),
            None => make(planned, job),
        });
    }
    Ok(made)
}

/// An original's header, read without decoding: what every output of it is planned from.
#[derive(Debug, Clone)]
pub struct Original {
    pub info: probe::ImageInfo,
    /// An animated GIF or WebP (negotiation never turns it into a format that cannot animate).
    pub animated: bool,
    /// Its embedded ICC profile: decoded pixels are converted from it to sRGB (see [`colour`]).
    pub profile: Option<std::sync::Arc<[u8]>>,
    /// Its EXIF credit fields, for `output.keep_copyright` (see [`metadata`]).
    pub credits: Option<metadata::Credits>,
}

impl Original {
    /// Probes `src`, refusing an image above `max_pixels`.
    pub fn inspect(src: &[u8], max_pixels: u64) -> Result<Original, PipelineError> {
        let info = probe::probe(src)?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        if pixels > max_pixels {
            return Err(PipelineError::TooManyPixels {
                width: info.width,
                height: info.height,
                pixels,
                limit: max_pixels,
            });
        }
        // Each scan of a progressive JPEG costs a pass over the whole image: a small file repeating one
        // scan thousands of times would hold a worker for minutes.
        if info.format == InputFormat::Jpeg
            && jpeg_header::jpeg_progressive(src)
            && jpeg_header::jpeg_scans(src, jpeg_header::MAX_JPEG_SCANS)
                > jpeg_header::MAX_JPEG_SCANS
        {
            return Err(PipelineError::TooManyScans {
                limit: jpeg_header::MAX_JPEG_SCANS,
            });
        }
        Ok(Original {
            info,
            animated: animation::is_animated(info.format, src),
            profile: colour::embedded_profile(info.format, src).map(Into::into),
            credits: metadata::credits(src),
        })
    }

    /// The decode `job` needs (its output checked against the output cap first). The same scale for
    /// two jobs means one decoded image serves both.
    pub fn scale_for(&self, job: &Job) -> Result<decode::Scale, PipelineError> {
        let planned = Planned::new(&self.info, job)?;
        Ok(decode::scale_for(
            &self.info,
            planned.full.0,
            planned.full.1,
        ))
    }

    /// Decodes `src` (the bytes this was inspected from) at `scale`: in sRGB, or with `keep_profile` in
    /// the original's own colour space (see [`Job::keep_profile`]).
    pub fn decode(
        &self,
        src: &[u8],
        scale: decode::Scale,
        keep_profile: bool,
    ) -> Result<Pixels, PipelineError> {
        let mut pixels = decode::decode(src, &self.info, scale, self.profile.as_deref())?;
        if let Some(profile) = self.rgb_profile().filter(|_| !keep_profile) {
            colour::to_srgb(&mut pixels, profile);
        }
        Ok(pixels)
    }

    /// The embedded profile when it describes RGB data (a CMYK JPEG's profile is applied while decoding,
    /// and its pixels are sRGB from then on).
    pub fn rgb_profile(&self) -> Option<&[u8]> {
        self.profile
            .as_deref()
            .filter(|p| colour::profile_space(p) == Some(*b"RGB "))
    }

    /// The EXIF block `job`'s output carries: the original's credits, with `output.keep_copyright`.
    pub(crate) fn carried_exif(&self, job: &Job) -> Option<Vec<u8>> {
        self.credits
            .as_ref()
            .filter(|_| job.keep_credits)
            .and_then(metadata::exif_block)
    }

    /// Makes `job`'s output from an image this original decoded to at least the scale
    /// [`Original::scale_for`] gave for it.
    pub fn render(&self, decoded: &Pixels, job: &Job) -> Result<Encoded, PipelineError> {
        render(decoded, self, &Planned::new(&self.info, job)?, job)
    }

    /// The profile `job`'s output of this original carries: the original's, with `output.keep_profile`,
    /// where `format` can carry one (otherwise the pixels are converted to sRGB).
    pub(crate) fn kept_profile(&self, job: &Job, format: Format) -> Option<&[u8]> {
        self.rgb_profile()
            .filter(|_| job.keep_profile && encode::can_carry_profile(format))
    }

    /// The format `job`'s output of this original is written in.
    fn output_format(&self, job: &Job) -> Format {
        job.format.resolve(
            self.info.written_as(),
            self.animated && job.animation.animate,
        )
    }

    /// Whether `a` and `b` make the same output of this original: the same job once its format is
    /// resolved.
    fn same_output(&self, a: &Job, b: &Job) -> bool {
        let resolved = |job: &Job| Job {
            format: OutputFormat::Fixed(self.output_format(job)),
            ..job.clone()
        };
        resolved(a) == resolved(b)
    }

    /// Whether `job`'s output of this original is an animation (made from the original's bytes by
    /// [`Original::animate`], not from one decoded image).
    pub fn animates(&self, job: &Job) -> bool {
        self.animated && job.animation.animate && can_animate(self.output_format(job))
    }

    /// Makes `job`'s animated output from `src` (the bytes this was inspected from), frame by frame.
    pub fn animate(&self, src: &[u8], job: &Job) -> Result<Encoded, PipelineError> {
        self.render_animation(src, &Planned::new(&self.info, job)?, job)
    }

    fn render_animation(
        &self,
        src: &[u8],
        planned: &Planned,
        job: &Job,
    ) -> Result<Encoded, PipelineError> {
        animation::render(src, self, planned, job, self.output_format(job))
    }
}

/// One output's geometry, worked out before decoding.
struct Planned {
    plan: geometry::Plan,
    /// The whole original at the scale the region is resized with, in the stored frame: what the
    /// decoder must deliver at least.
    full: (u32, u32),
    /// The resized region's size in the stored frame.
    resized: (u32, u32),
}

impl Planned {
    fn new(info: &probe::ImageInfo, job: &Job) -> Result<Planned, PipelineError> {
        let (display_w, display_h) = info.display_size();
        let plan = geometry::plan(display_w, display_h, &job.target);
        let (out_w, out_h) = plan.output();
        let out_pixels = u64::from(out_w) * u64::from(out_h);
        if out_pixels > job.max_output_pixels {
            return Err(PipelineError::OutputTooLarge {
                width: out_w,
                height: out_h,
                pixels: out_pixels,
                limit: job.max_output_pixels,
            });
        }
        // Decoding and resizing happen in the stored frame, before orientation, where a quarter turn swaps
        // the axes; the plan is in the displayed frame.
        let swap = |(a, b): (u32, u32)| {
            if info.orientation.swaps_axes() {
                (b, a)
            } else {
                (a, b)
            }
        };
        Ok(Planned {
            full: swap(plan.scaled_original(display_w, display_h)),
            resized: swap(plan.resized),
            plan,
        })
    }
}

/// Resize, orient, finish and encode one output from the shared decoded original.
fn render(
    decoded: &Pixels,
    original: &Original,
    planned: &Planned,
    job: &Job,
) -> Result<Encoded, PipelineError> {
    // A still of an animation (first frame only) is given the negotiated format itself.
    let info = &original.info;
    let started = Instant::now();
    check(job.deadline)?;
    let format = bounded_format(original.output_format(job), job, planned)?;
    let region = decoded_region(decoded, info, planned);
    let mut image = finish_frame(decoded, region, original, planned, job, format)?;
    check(job.deadline)?;
    if !canvas::has_alpha(format) {
        image = canvas::flatten(image, job.background);
    }
    // Kept profiles travel in the output where the format can carry one; otherwise sRGB after all.
    let profile = original.kept_profile(job, format);
    if let Some(p) = original
        .rgb_profile()
        .filter(|_| job.keep_profile && profile.is_none())
    {
        colour::to_srgb(&mut image, p);
    }
    let exif = original.carried_exif(job);
    let resized_at = Instant::now();
    let carried = encode::Carried {
        profile,
        exif: exif.as_deref(),
    };
    let bytes = encode::encode_tagged(&image, format, job.quality, job.png, carried)?;
    Ok(Encoded {
        bytes,
        format,
        width: image.width,
        height: image.height,
        timings: Timings {
            decode: std::time::Duration::ZERO,
            resize: resized_at - started,
            encode: resized_at.elapsed(),
        },
    })
}

/// `format`, unless it is AVIF and the output has more than `job.max_avif_pixels` pixels: a rav1e encode
/// cannot be interrupted, so one that would outlast any deadline (a 4096x4096 AVIF takes tens of
/// seconds) is not started. A negotiated AVIF is written in the negotiation's fallback (WebP, which
/// every client granted AVIF takes), under the same variant key, as an animation is; a fixed `f/avif`
/// is refused.
fn bounded_format(format: Format, job: &Job, planned: &Planned) -> Result<Format, PipelineError> {
    let (width, height) = planned.plan.output();
    let pixels = u64::from(width) * u64::from(height);
    if format != Format::Avif || pixels <= job.max_avif_pixels {
        return Ok(format);
    }
    match job.format {
        OutputFormat::Negotiated {
            animated: Some(fallback),
            ..
        } => Ok(fallback),
        _ => Err(PipelineError::AvifTooLarge {
            width,
            height,
            pixels,
            limit: job.max_avif_pixels,
        }),
    }
}

/// Where `planned`'s region lies in `decoded` (the original decoded at some scale), placed by saliency
/// for a smart crop.
fn decoded_region(
    decoded: &Pixels,
    info: &probe::ImageInfo,
    planned: &Planned,
) -> geometry::Region {
    let plan = &planned.plan;
    // The region, from displayed-original pixels to stored pixels to decoded pixels.
    let stored =
        info.orientation
            .stored_region(plan.region, f64::from(info.width), f64::from(info.height));
    let (kx, ky) = decode::content_scale(info, decoded.width, decoded.height);
    let (decoded_w, decoded_h) = (f64::from(decoded.width), f64::from(decoded.height));
    let mut region = geometry::Region {
        x: 0.0,
        y: 0.0,
        width: (stored.width * kx).min(decoded_w),
        height: (stored.height * ky).min(decoded_h),
    }
    .placed_at(stored.x * kx, stored.y * ky, decoded_w, decoded_h);
    if plan.smart {
        let (x, y) = saliency::attention_offset(
            decoded,
            (region.width.round() as u32).max(1),
            (region.height.round() as u32).max(1),
        );
        region = region.placed_at(f64::from(x), f64::from(y), decoded_w, decoded_h);
    }
    region
}

/// Resizes `region` of `decoded`, orients and pads it: what a still output and each frame of an animation
/// go through before they are encoded.
fn finish_frame(
    decoded: &Pixels,
    region: geometry::Region,
    original: &Original,
    planned: &Planned,
    job: &Job,
    format: Format,
) -> Result<Pixels, PipelineError> {
    let (resized_w, resized_h) = planned.resized;
    let resized = resize::resize_region(decoded, Some(region), resized_w, resized_h)?;
    let mut image = orient::apply(resized, original.info.orientation);
    if let Some(c) = planned.plan.canvas {
        let background = job.background.or(if canvas::has_alpha(format) {
            None
        } else {
            Some(Rgb::WHITE)
        });
        image = canvas::pad(image, c, background);
    }
    Ok(image)
}

fn check(deadline: Option<Instant>) -> Result<(), PipelineError> {
    match deadline {
        Some(deadline) if Instant::now() > deadline => Err(PipelineError::DeadlinePassed),
        _ => Ok(()),
    }
}

/// An encoded image of one flat grey `value`, for tests that need real bytes of a format.
#[cfg(test)]
pub(crate) fn flat_image(format: Format, width: u32, height: u32, value: u8) -> Vec<u8> {
    let pixels = Pixels {
        width,
        height,
        layout: Layout::Rgb,
        data: vec![value; (width * height * 3) as usize],
    };
    encode::encode(&pixels, format, 80, PngMode::Lossless).expect("a flat image encodes")
}

/// `jpeg` with an APP1 EXIF segment holding only an orientation tag, for tests of oriented originals.
#[cfg(test)]
pub(crate) fn with_exif_orientation(jpeg: &[u8], value: u8) -> Vec<u8> {
    // Big-endian TIFF with one IFD entry: Orientation (0x0112), SHORT, count 1, the value.
    let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    app1.extend_from_slice(&[
        0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, value, 0, 0, 0, 0, 0, 0,
    ]);
    let len = u16::try_from(app1.len() + 2).expect("a short segment");
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_crop_of_an_oriented_jpeg_keeps_the_displayed_side() {
        // A stored 40x20 image whose left half is black and right half white, tagged "rotate 90" (it
        // displays as 20x40, black on top). A north-gravity square crop must be all black, south all white.
        let (w, h) = (40u32, 20u32);
        let data = (0..w * h)
            .flat_map(|i| {
                if i % w < w / 2 {
                    [0, 0, 0]
                } else {
                    [255, 255, 255]
                }
            })
            .collect();
        let pixels = Pixels {
            width: w,
            height: h,
            layout: Layout::Rgb,
            data,
        };
        let jpeg = encode::encode(&pixels, Format::Jpeg, 90, PngMode::Lossless).unwrap();
        let rotated = with_exif_orientation(&jpeg, 6);
        for (gravity, expect) in [(Gravity::North, 0u8), (Gravity::South, 255)] {
            let mut job = Job::width(10);
            job.target.height = Some(10);
            job.target.fit = Fit::Cover;
            job.target.gravity = gravity;
            let out = process(&rotated, &job).unwrap();
            assert_eq!((out.width, out.height), (10, 10));
            let decoded = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
            let mean = decoded.pixels().map(|p| u32::from(p[0])).sum::<u32>() / 100;
            assert!(
                mean.abs_diff(u32::from(expect)) < 16,
                "{gravity:?}: mean {mean}"
            );
        }
    }

    /// A 20x10 GIF of two frames, black then red.
    fn two_frame_gif() -> Vec<u8> {
        let mut gif = Vec::new();
        {
            let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
            for shade in [0u8, 255] {
                let frame = image::RgbaImage::from_pixel(20, 10, image::Rgba([shade, 0, 0, 255]));
                encoder
                    .encode_frame(image::Frame::new(frame))
                    .expect("a frame encodes");
            }
        }
        gif
    }

    #[test]
    fn negotiated_formats_never_drop_an_animation_but_explicit_ones_are_obeyed() {
        let gif = two_frame_gif();
        let mut job = Job::width(10);
        // AVIF cannot animate: the animation goes to the negotiable list's first format that can, or
        // without one stays as it was.
        job.format = OutputFormat::negotiated(Format::Avif, &[Format::Avif, Format::WebP]);
        let webp = process(&gif, &job).unwrap();
        assert_eq!(webp.format, Format::WebP);
        let decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&webp.bytes[..])).unwrap();
        assert!(decoder.is_animated());
        assert_eq!(decoder.num_frames(), 2);
        job.format = OutputFormat::negotiated(Format::Avif, &[Format::Avif]);
        assert_eq!(process(&gif, &job).unwrap().format, Format::Gif);
        job.format = OutputFormat::negotiated(Format::WebP, &[Format::Avif, Format::WebP]);
        assert_eq!(process(&gif, &job).unwrap().format, Format::WebP);
        // A still is given the negotiated format itself.
        job.format = OutputFormat::negotiated(Format::Avif, &[Format::Avif, Format::WebP]);
        job.animation.animate = false;
        assert_eq!(process(&gif, &job).unwrap().format, Format::Avif);
        job.format = OutputFormat::Fixed(Format::Png);
        assert_eq!(process(&gif, &job).unwrap().format, Format::Png);
    }

    #[test]
    fn outputs_that_resolve_to_the_same_job_are_encoded_once() {
        let negotiable = [Format::Avif, Format::WebP];
        let job = |format: OutputFormat| Job {
            format,
            ..Job::width(10)
        };
        let mut still = job(OutputFormat::negotiated(Format::Avif, &negotiable));
        still.animation.animate = false;
        let mut poorer = job(OutputFormat::Fixed(Format::WebP));
        poorer.quality = 40;
        let jobs = [
            // An animation's `.auto-avif` and `.auto-webp`: both animated WebP.
            job(OutputFormat::negotiated(Format::Avif, &negotiable)),
            job(OutputFormat::negotiated(Format::WebP, &negotiable)),
            job(OutputFormat::Fixed(Format::WebP)),
            // Not twins: a still, and another quality.
            still,
            poorer,
        ];
        let many: Vec<Encoded> = process_many(&two_frame_gif(), &jobs)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(many[0].format, Format::WebP);
        assert!(many[0].timings.encode > std::time::Duration::ZERO);
        for twin in &many[1..3] {
            assert_eq!(twin.bytes, many[0].bytes);
            assert_eq!(twin.timings, Timings::default(), "not encoded again");
        }
        assert_eq!(many[3].format, Format::Avif);
        assert_ne!(many[4].bytes, many[0].bytes);
        assert!(many[4].timings.encode > std::time::Duration::ZERO);

        // A still original: its own format named or not, one encode.
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/images/path.jpg"
        ))
        .unwrap();
        let jobs = [
            job(OutputFormat::Original),
            job(OutputFormat::Fixed(Format::Jpeg)),
        ];
        let many = process_many(&jpeg, &jobs).unwrap();
        let (first, second) = (many[0].as_ref().unwrap(), many[1].as_ref().unwrap());
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(second.timings, Timings::default());
    }

    #[test]
    fn many_outputs_from_one_decode_match_each_made_alone() {
        let src = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/images/path.jpg"
        ))
        .unwrap();
        let mut cover = Job::width(200);
        cover.target.height = Some(200);
        cover.target.fit = Fit::Cover;
        let mut webp = Job::width(300);
        webp.format = OutputFormat::Fixed(Format::WebP);
        let mut too_big = Job::width(900);
        too_big.max_output_pixels = 1000;
        let jobs = [Job::width(900), webp, cover, too_big];
        let many = process_many(&src, &jobs).unwrap();
        assert!(matches!(many[3], Err(PipelineError::OutputTooLarge { .. })));
        for (job, made) in jobs.iter().zip(&many).take(3) {
            let made = made.as_ref().unwrap();
            let alone = process(&src, job).unwrap();
            assert_eq!(
                (made.format, made.width, made.height),
                (alone.format, alone.width, alone.height)
            );
            let a = image::load_from_memory(&made.bytes).unwrap().to_rgb8();
            let b = image::load_from_memory(&alone.bytes).unwrap().to_rgb8();
            let diff = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(x, y)| f64::from(x.abs_diff(*y)))
                .sum::<f64>()
                / a.as_raw().len() as f64;
            // Not byte-identical: the smaller outputs are resized from a larger DCT scale than they would
            // be alone (which is closer to the full-precision picture), then go through a lossy encoder.
            assert!(diff < 6.0, "{}: mean difference {diff}", made.width);
        }
    }
}
