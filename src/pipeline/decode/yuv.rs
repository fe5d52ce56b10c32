//! Decoded Y'CbCr planes (an AV1 picture's) to the pipeline's 8-bit pixels, with the `yuv` crate: the
//! matrix and range the bitstream declares, chroma upsampled bilinearly (as libavif does), 10 and
//! 12-bit samples converted at their own depth and rounded to 8 bits only at the end. Greyscale stays
//! grey; an alpha picture (its own AV1 frame) becomes the fourth channel, un-premultiplied when the
//! container says the colour was premultiplied.

use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

use super::av1::{Planes, Samples, Subsampling};
use crate::pipeline::{Layout, PipelineError, Pixels};

/// How the colour planes are read: a Y'CbCr matrix, or the planes are G, B, R (AV1's "identity").
enum Matrix {
    YCbCr(YuvStandardMatrix),
    Identity,
}

/// The matrix for an H.273 `matrix_coefficients` code point.
fn matrix(code: u8) -> Result<Matrix, PipelineError> {
    Ok(Matrix::YCbCr(match code {
        0 => return Ok(Matrix::Identity),
        1 => YuvStandardMatrix::Bt709,
        4 => YuvStandardMatrix::Fcc,
        // BT.470BG and BT.601 are the same matrix; unspecified (2) and reserved (3) are read as
        // BT.601, as libavif and browsers read them.
        2 | 3 | 5 | 6 => YuvStandardMatrix::Bt601,
        7 => YuvStandardMatrix::Smpte240,
        9 => YuvStandardMatrix::Bt2020,
        other => {
            return Err(PipelineError::UnsupportedVariant(format!(
                "AVIF with matrix coefficients {other} (YCgCo, constant-luminance or ICtCp)"
            )));
        }
    }))
}

fn range(full: bool) -> YuvRange {
    if full {
        YuvRange::Full
    } else {
        YuvRange::Limited
    }
}

fn conversion(e: yuv::YuvError) -> PipelineError {
    PipelineError::Undecodable(format!("AVIF: {e}"))
}

fn u32_of(n: usize) -> Result<u32, PipelineError> {
    u32::try_from(n).map_err(|_| PipelineError::Undecodable("AVIF: too large".into()))
}

/// `colour` (and `alpha`, the alpha item's picture) as pixels: grey, RGB or RGBA.
pub(super) fn to_pixels(
    colour: &Planes<'_>,
    alpha: Option<&[u8]>,
    premultiplied: bool,
) -> Result<Pixels, PipelineError> {
    let (width, height) = (colour.width, colour.height);
    let pixels = width * height;
    let data = if colour.subsampling == Subsampling::Mono {
        luma_to_8_bit(colour)?
    } else {
        to_rgb(colour)?
    };
    let (layout, data) = match (alpha, colour.subsampling) {
        (None, Subsampling::Mono) => (Layout::Gray, data),
        (None, _) => (Layout::Rgb, data),
        (Some(alpha), subsampling) => {
            let channels = if subsampling == Subsampling::Mono {
                1
            } else {
                3
            };
            let mut rgba = Vec::with_capacity(pixels * 4);
            for (colour, &a) in data.chunks_exact(channels).zip(alpha) {
                let [r, g, b] = match *colour {
                    [v] => [v, v, v],
                    [r, g, b] => [r, g, b],
                    _ => unreachable!("chunks of 1 or 3"),
                };
                rgba.extend_from_slice(&if premultiplied {
                    [
                        unpremultiply(r, a),
                        unpremultiply(g, a),
                        unpremultiply(b, a),
                        a,
                    ]
                } else {
                    [r, g, b, a]
                });
            }
            (Layout::Rgba, rgba)
        }
    };
    if data.len() != pixels * layout.channels() {
        return Err(PipelineError::Undecodable(
            "AVIF: the alpha picture is smaller than the colour picture".into(),
        ));
    }
    Ok(Pixels {
        width: u32_of(width)?,
        height: u32_of(height)?,
        layout,
        data,
    })
}

fn unpremultiply(v: u8, a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    let v = (u32::from(v) * 255 + u32::from(a) / 2) / u32::from(a);
    v.min(255) as u8
}

/// The luma plane as full-range 8-bit samples, `width` a row: an alpha picture, or a grey image.
pub(super) fn luma_to_8_bit(planes: &Planes<'_>) -> Result<Vec<u8>, PipelineError> {
    let (width, height) = (planes.width, planes.height);
    let max = (1u32 << planes.bit_depth) - 1;
    // Limited range: black at 16, white at 235 (times 2^(depth-8)).
    let (offset, span) = if planes.cicp.full_range {
        (0, max)
    } else {
        (16 << (planes.bit_depth - 8), 219 << (planes.bit_depth - 8))
    };
    let to_8 = |v: u32| -> u8 {
        let v = v.saturating_sub(offset).min(span);
        ((v * 255 + span / 2) / span) as u8
    };
    let mut out = Vec::with_capacity(width * height);
    let stride = planes.y.stride;
    for row in 0..height {
        match planes.y.samples {
            Samples::Eight(s) => {
                let line = &s[row * stride..row * stride + width];
                if offset == 0 && span == 255 {
                    out.extend_from_slice(line);
                } else {
                    out.extend(line.iter().map(|&v| to_8(u32::from(v))));
                }
            }
            Samples::Sixteen(s) => out.extend(
                s[row * stride..row * stride + width]
                    .iter()
                    .map(|&v| to_8(u32::from(v))),
            ),
        }
    }
    Ok(out)
}

/// The three colour planes to interleaved 8-bit RGB.
fn to_rgb(planes: &Planes<'_>) -> Result<Vec<u8>, PipelineError> {
    let (width, height) = (u32_of(planes.width)?, u32_of(planes.height)?);
    let stride = width * 3;
    let mut rgb = vec![0u8; planes.width * planes.height * 3];
    let range = range(planes.cicp.full_range);
    let matrix = matrix(planes.cicp.matrix)?;
    match (&planes.y.samples, &planes.u.samples, &planes.v.samples) {
        (Samples::Eight(y), Samples::Eight(u), Samples::Eight(v)) => {
            let image = YuvPlanarImage {
                y_plane: y,
                y_stride: u32_of(planes.y.stride)?,
                u_plane: u,
                u_stride: u32_of(planes.u.stride)?,
                v_plane: v,
                v_stride: u32_of(planes.v.stride)?,
                width,
                height,
            };
            match (matrix, planes.subsampling) {
                (Matrix::Identity, Subsampling::Yuv444) => {
                    yuv::gbr_to_rgb(&image, &mut rgb, stride, range)
                }
                (Matrix::YCbCr(m), Subsampling::Yuv420) => {
                    yuv::yuv420_to_rgb_bilinear(&image, &mut rgb, stride, range, m)
                }
                (Matrix::YCbCr(m), Subsampling::Yuv422) => {
                    yuv::yuv422_to_rgb_bilinear(&image, &mut rgb, stride, range, m)
                }
                (Matrix::YCbCr(m), Subsampling::Yuv444) => {
                    yuv::yuv444_to_rgb(&image, &mut rgb, stride, range, m)
                }
                _ => return Err(identity_subsampled()),
            }
            .map_err(conversion)?;
        }
        (Samples::Sixteen(y), Samples::Sixteen(u), Samples::Sixteen(v)) => {
            let image = YuvPlanarImage {
                y_plane: y,
                y_stride: u32_of(planes.y.stride)?,
                u_plane: u,
                u_stride: u32_of(planes.u.stride)?,
                v_plane: v,
                v_stride: u32_of(planes.v.stride)?,
                width,
                height,
            };
            let Matrix::YCbCr(m) = matrix else {
                return Err(PipelineError::UnsupportedVariant(
                    "AVIF with GBR (identity) planes above 8 bits".into(),
                ));
            };
            let mut wide = vec![0u16; rgb.len()];
            match (planes.bit_depth, planes.subsampling) {
                (10, Subsampling::Yuv420) => {
                    yuv::i010_to_rgb10_bilinear(&image, &mut wide, stride, range, m)
                }
                (10, Subsampling::Yuv422) => {
                    yuv::i210_to_rgb10_bilinear(&image, &mut wide, stride, range, m)
                }
                (10, Subsampling::Yuv444) => {
                    yuv::i410_to_rgb10(&image, &mut wide, stride, range, m)
                }
                (12, Subsampling::Yuv420) => {
                    yuv::i012_to_rgb12_bilinear(&image, &mut wide, stride, range, m)
                }
                (12, Subsampling::Yuv422) => {
                    yuv::i212_to_rgb12_bilinear(&image, &mut wide, stride, range, m)
                }
                (12, Subsampling::Yuv444) => {
                    yuv::i412_to_rgb12(&image, &mut wide, stride, range, m)
                }
                (depth, _) => {
                    return Err(PipelineError::Undecodable(format!(
                        "AVIF: {depth}-bit samples"
                    )));
                }
            }
            .map_err(conversion)?;
            let max = (1u32 << planes.bit_depth) - 1;
            for (out, &v) in rgb.iter_mut().zip(&wide) {
                *out = ((u32::from(v).min(max) * 255 + max / 2) / max) as u8;
            }
        }
        _ => {
            return Err(PipelineError::Undecodable(
                "AVIF: planes of different depths".into(),
            ));
        }
    }
    Ok(rgb)
}

fn identity_subsampled() -> PipelineError {
    PipelineError::Undecodable("AVIF: GBR (identity) planes must not be subsampled".into())
}
