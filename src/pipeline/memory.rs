//! What making some outputs of an original will allocate, worked out from its header and its size before
//! anything large is held: what a job reserves from the memory budget (see `budget`), once, for its
//! whole life.
//!
//! Counted, per job: the compressed original; the decoder's own buffers (a progressive JPEG's whole-image
//! coefficient arrays, a PNG's raw rows before their conversion); the decoded pixels at the chosen scale;
//! then, for the largest output, the resize destination, the orientation and canvas copies (a `contain`
//! canvas may be far larger than the image on it), the encoder's working state (AVIF's frame copies
//! most of all); and every output, which is held until it is written. An animation holds its bytes, a
//! few canvases and output frames instead of one decoded image. Estimates round up: a job must never
//! use more than it reserved, and the measured peak of the process under attack is the check
//! (`tests/it/memory.rs`).

use super::{Job, Planned, canvas, decode, probe};
use crate::pipeline::format::{Format, InputFormat};
use crate::pipeline::{PipelineError, encode::PngMode};

/// Bytes `jobs` (sharing one decode, as `process_many` makes them) need of an original of `size` bytes
/// whose first bytes are `header`. Refuses what the header already shows cannot be made: too many
/// pixels, and for a single job an output above its cap.
pub fn estimate(header: &[u8], size: u64, jobs: &[Job]) -> Result<u64, PipelineError> {
    estimate_for(&probe::probe(header)?, header, size, jobs)
}

/// [`estimate`] for an original already probed (`info`, read from `header`): no second probe.
pub fn estimate_for(
    info: &probe::ImageInfo,
    header: &[u8],
    size: u64,
    jobs: &[Job],
) -> Result<u64, PipelineError> {
    let info = *info;
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    let max_pixels = jobs.iter().map(|j| j.max_pixels).min().unwrap_or(u64::MAX);
    if w * h > max_pixels {
        return Err(PipelineError::TooManyPixels {
            width: info.width,
            height: info.height,
            pixels: w * h,
            limit: max_pixels,
        });
    }
    let mut plans = Vec::with_capacity(jobs.len());
    for job in jobs {
        match Planned::new(&info, job) {
            Ok(planned) => plans.push((planned, job)),
            Err(e) if jobs.len() == 1 => return Err(e),
            // One output that cannot be made spoils only itself (see `process_many`).
            Err(_) => {}
        }
    }
    let (need_w, need_h) = plans
        .iter()
        .fold((1, 1), |(w, h), (p, _)| (w.max(p.full.0), h.max(p.full.1)));
    let scale = decode::scale_for(&info, need_w, need_h);
    let still = size + decoder_bytes(header, &info) + decoded_size(&info, scale);
    let animation = if matches!(info.format, InputFormat::Gif | InputFormat::WebP) {
        // The frame being drawn, the one to restore, the one handed on, and output frames.
        size + 6 * w * h * 4
    } else {
        0
    };
    let render = plans
        .iter()
        .map(|(p, job)| render_bytes(p, job, &info))
        .max()
        .unwrap_or(0);
    let outputs: u64 = plans
        .iter()
        .map(|(p, job)| output_bytes(p, job, info.written_as()))
        .sum();
    Ok(still.max(animation) + render + outputs)
}

/// What the decoder holds besides the pixels it returns.
fn decoder_bytes(header: &[u8], info: &probe::ImageInfo) -> u64 {
    decode::codec(info.format).decoder_bytes(header, info)
}

/// Bytes of `info`'s image decoded at `scale` (RGBA at most; the canvas for GIF).
pub fn decoded_size(info: &probe::ImageInfo, scale: decode::Scale) -> u64 {
    let (w, h) = match scale {
        decode::Scale::Eighths(n) => (
            decode::jpeg_scaled_size(info.width, n),
            decode::jpeg_scaled_size(info.height, n),
        ),
        decode::Scale::Exact(w, h) => (u64::from(w), u64::from(h)),
        decode::Scale::Full => (u64::from(info.width), u64::from(info.height)),
    };
    w * h * 4
}

/// The largest transient buffers of one output: the resize destination, the orientation, canvas and
/// flattening copies where the job makes them, and the encoder's working state.
fn render_bytes(planned: &Planned, job: &Job, info: &probe::ImageInfo) -> u64 {
    let resized = u64::from(planned.resized.0) * u64::from(planned.resized.1);
    let (out_w, out_h) = planned.plan.output();
    let output = u64::from(out_w) * u64::from(out_h);
    let format = job.format.resolve(info.written_as(), false);
    let copies = u64::from(info.orientation != super::orient::Orientation::Normal)
        + u64::from(planned.plan.canvas.is_some())
        // Alpha flattened for a format without it (a JPEG of a PNG).
        + u64::from(!matches!(info.format, InputFormat::Jpeg) && !canvas::has_alpha(format));
    // Bytes per output pixel the encoder works in.
    let encoder = match format {
        // libjpeg with optimised Huffman tables keeps the whole image's coefficients for its second
        // pass: 2 bytes a sample, 3 a pixel at 4:2:0 (measured: +40 MB peak RSS over the pure-Rust
        // encoder for a 5600x4356 output of noise).
        Format::Jpeg => 4,
        Format::Png if job.png == PngMode::Palette => 8,
        Format::Png => 2,
        Format::WebP => 8,
        // ravif's YUV planes, rav1e's input, reference and reconstruction frames, and its search state;
        // libaom (the `aom` feature) needs less: peak RSS 230 MB against rav1e's 268 MB for a 2048x2048
        // output of noise (37 and 46 bytes an output pixel over the same job's PNG encode).
        Format::Avif => 24,
        Format::Gif => 8,
    };
    resized * 4 + output * (4 * copies + encoder)
}

/// The encoded output, at most, with the slack of its growing buffer: incompressible pixels cost about
/// their raw size.
fn output_bytes(planned: &Planned, job: &Job, original: Format) -> u64 {
    let (w, h) = planned.plan.output();
    let per_pixel = match job.format.resolve(original, false) {
        Format::Jpeg => 3,
        Format::Png => 5,
        Format::WebP => 4,
        Format::Avif | Format::Gif => 2,
    };
    u64::from(w) * u64::from(h) * per_pixel + 64 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Fit, Target};

    fn job(width: u32, height: u32, fit: Fit) -> Job {
        Job {
            target: Target {
                width: Some(width),
                height: Some(height),
                fit,
                ..Target::default()
            },
            ..Job::width(width)
        }
    }

    fn jpeg(width: u16, height: u16, progressive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 80);
        if progressive {
            encoder.set_progressive(true);
        }
        let pixels = vec![128u8; usize::from(width) * usize::from(height) * 3];
        encoder
            .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn a_progressive_jpeg_counts_its_whole_coefficient_arrays_whatever_the_scale() {
        let (baseline, progressive) = (jpeg(4000, 4000, false), jpeg(4000, 4000, true));
        let small = Job::width(100);
        let a = estimate(
            &baseline,
            baseline.len() as u64,
            std::slice::from_ref(&small),
        )
        .unwrap();
        let b = estimate(&progressive, progressive.len() as u64, &[small]).unwrap();
        // 16 MP at 4:2:0: 1.5 components' worth of 2-byte coefficients a pixel, 48 MB.
        assert!(b - a >= 45_000_000, "{a} {b}");
        assert!(
            a < 4_000_000,
            "a thumbnail of a baseline JPEG needs little: {a}"
        );
    }

    #[test]
    fn a_contain_canvas_is_counted_however_small_the_original() {
        let png = super::super::flat_image(Format::Png, 4096, 1, 0);
        let need = estimate(&png, png.len() as u64, &[job(4096, 4096, Fit::Contain)]).unwrap();
        // The 4096x4096 canvas in RGBA, twice, and the output bound: over 150 MB for a 100-byte file.
        assert!(need > 150 << 20, "{need}");
    }

    #[test]
    fn a_sixteen_bit_png_counts_its_raw_rows() {
        let mut header = super::super::flat_image(Format::Png, 1000, 1000, 0);
        let eight = estimate(&header, 1000, &[Job::width(1000)]).unwrap();
        header[24] = 16;
        header[25] = 6;
        let sixteen = estimate(&header, 1000, &[Job::width(1000)]).unwrap();
        assert!(sixteen >= eight + 4_000_000, "{eight} {sixteen}");
    }

    #[test]
    fn the_header_refuses_what_cannot_be_made() {
        let big = jpeg(2000, 2000, false);
        let mut capped = Job::width(100);
        capped.max_pixels = 1_000_000;
        assert!(matches!(
            estimate(&big, 1, &[capped]),
            Err(PipelineError::TooManyPixels { .. })
        ));
        assert!(matches!(
            estimate(b"not an image", 12, &[Job::width(1)]),
            Err(PipelineError::Unsupported)
        ));
    }
}
