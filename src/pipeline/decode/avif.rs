//! AVIF's codec: the HEIF container read by mp4parse (the parser Firefox ships, hardened against
//! hostile files), the primary item's AV1 picture decoded by rav1d ([`av1`](super::av1)) and converted
//! to 8-bit RGB by [`yuv`](super::yuv).
//!
//! - Size and alpha come from the AV1 sequence header of the primary item (what the decoder will
//!   allocate), read before anything is decoded; the decoder is also told to refuse a larger frame.
//! - `irot`/`imir` are the image's orientation (EXIF orientation is ignored, as MIAF and browsers
//!   ignore it): mapped to the EXIF orientation that does the same, and applied by the pipeline.
//! - An alpha auxiliary item is decoded as its own picture and becomes the fourth channel
//!   (un-premultiplied when the file says `prem`).
//! - Colour: an ICC profile in `colr` is converted by the pipeline like any embedded profile; without
//!   one, primaries other than BT.709/sRGB (BT.2020, Display P3, ...) are described by a profile
//!   made from the sequence header's code points, so they are converted too. PQ/HLG (HDR) pixels are
//!   converted without tone mapping.
//! - Refused with 415: grid (tiled) images, image sequences without a still primary item, and
//!   YCgCo/constant-luminance matrices. An animated AVIF with a still primary item is that still.

use std::io::Cursor;

use mp4parse::{AvifContext, Feature, ImageMirror, ImageRotation, ParseStrictness};

use super::{Codec, Header, Scale, av1, same_size, yuv};
use crate::pipeline::format::ImageInfo;
use crate::pipeline::orient::Orientation;
use crate::pipeline::{PipelineError, Pixels};

pub(super) struct Avif;

/// The container, checked for what this codec cannot decode.
fn parse(src: &[u8]) -> Result<AvifContext, PipelineError> {
    let context = mp4parse::read_avif(&mut Cursor::new(src), ParseStrictness::Permissive).map_err(
        |e| match e {
            mp4parse::Error::Unsupported(what) => {
                PipelineError::UnsupportedVariant(format!("AVIF: {what}"))
            }
            other => PipelineError::Undecodable(format!("AVIF: {other:?}")),
        },
    )?;
    if context.unsupported_features.contains(Feature::Grid) {
        return Err(PipelineError::UnsupportedVariant(
            "AVIF grid (tiled) images are not supported".into(),
        ));
    }
    if !context.primary_item_is_present() {
        return Err(PipelineError::UnsupportedVariant(
            "an AVIF image sequence without a still image".into(),
        ));
    }
    Ok(context)
}

fn primary(context: &AvifContext) -> Result<&[u8], PipelineError> {
    context
        .primary_item_coded_data()
        .filter(|data| !data.is_empty())
        .ok_or_else(|| PipelineError::Undecodable("AVIF: the primary item has no data".into()))
}

/// The EXIF orientation that displays the stored image as `irot` then `imir` do (MIAF's order:
/// rotation anticlockwise, then the mirror).
fn orientation(context: &AvifContext) -> Orientation {
    let rotation = context.image_rotation().unwrap_or(ImageRotation::D0);
    let mirror = mirror_of(context);
    use Orientation::*;
    match (rotation, mirror) {
        (ImageRotation::D0, None) => Normal,
        (ImageRotation::D0, Some(Mirror::TopBottom)) => FlipVertical,
        (ImageRotation::D0, Some(Mirror::LeftRight)) => FlipHorizontal,
        (ImageRotation::D90, None) => Rotate270,
        (ImageRotation::D90, Some(Mirror::TopBottom)) => Transpose,
        (ImageRotation::D90, Some(Mirror::LeftRight)) => Transverse,
        (ImageRotation::D180, None) => Rotate180,
        (ImageRotation::D180, Some(Mirror::TopBottom)) => FlipHorizontal,
        (ImageRotation::D180, Some(Mirror::LeftRight)) => FlipVertical,
        (ImageRotation::D270, None) => Rotate90,
        (ImageRotation::D270, Some(Mirror::TopBottom)) => Transverse,
        (ImageRotation::D270, Some(Mirror::LeftRight)) => Transpose,
    }
}

/// `imir`'s mode: 0 exchanges top and bottom, 1 left and right (HEIF 2022 § 6.5.12).
enum Mirror {
    TopBottom,
    LeftRight,
}

fn mirror_of(context: &AvifContext) -> Option<Mirror> {
    let mirror = context.image_mirror_ptr().ok()?;
    // mp4parse hands the property out as a pointer into `context` (its C API's shape), or null.
    mirror_from(mirror)
}

#[allow(unsafe_code)] // mp4parse's `image_mirror_ptr` returns a raw pointer into the context.
fn mirror_from(mirror: *const ImageMirror) -> Option<Mirror> {
    // SAFETY: the pointer is null or points at the `imir` property inside the context, which the
    // caller holds borrowed for the duration of this call.
    match unsafe { mirror.as_ref() }? {
        ImageMirror::TopBottom => Some(Mirror::TopBottom),
        ImageMirror::LeftRight => Some(Mirror::LeftRight),
    }
}

impl Codec for Avif {
    fn header(&self, src: &[u8]) -> Result<Header, PipelineError> {
        let context = parse(src)?;
        let sequence = av1::sequence(primary(&context)?)?;
        Ok(Header {
            width: sequence.max_width,
            height: sequence.max_height,
            alpha: context.alpha_item_is_present(),
            orientation: Some(orientation(&context)),
        })
    }

    fn scale_for(&self, _info: &ImageInfo, _target_w: u32, _target_h: u32) -> Scale {
        Scale::Full
    }

    fn decode(
        &self,
        src: &[u8],
        info: &ImageInfo,
        _scale: Scale,
        _profile: Option<&[u8]>,
    ) -> Result<Pixels, PipelineError> {
        let context = parse(src)?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        let alpha = match context.alpha_item_coded_data() {
            Some(data) if !data.is_empty() => Some(av1::decode(data, pixels, |planes| {
                same_size(info, (planes.width as u64, planes.height as u64))?;
                yuv::luma_to_8_bit(planes)
            })?),
            _ => None,
        };
        let decoded = av1::decode(primary(&context)?, pixels, |planes| {
            same_size(info, (planes.width as u64, planes.height as u64))?;
            yuv::to_pixels(planes, alpha.as_deref(), context.premultiplied_alpha)
        })?;
        Ok(decoded)
    }

    /// The container's copy of the file (mp4parse reads the items into memory), the decoder's copy of
    /// the AV1 data, its picture (three planes, 16-bit above 8 bits) and working state, the alpha
    /// picture, and the conversion's 16-bit RGB at 10 and 12 bits. Measured: see `avif_memory` in
    /// BENCHMARKS.md; 24 bytes a pixel covers 12-bit 4:4:4 with alpha.
    fn decoder_bytes(&self, header: &[u8], info: &ImageInfo) -> u64 {
        u64::from(info.width) * u64::from(info.height) * 24 + 2 * header.len() as u64
    }

    /// The `colr` ICC profile; else, for primaries other than BT.709/sRGB, a profile made from the
    /// sequence header's colour description.
    fn profile(&self, src: &[u8]) -> Option<Vec<u8>> {
        let context = parse(src).ok()?;
        if let Some(Ok(icc)) = context.icc_colour_information() {
            return (icc.len() <= crate::pipeline::colour::MAX_PROFILE_BYTES).then(|| icc.to_vec());
        }
        let cicp = av1::sequence(primary(&context).ok()?).ok()?.cicp;
        // BT.709 (1) and unspecified (2) primaries are sRGB's.
        if matches!(cicp.primaries, 1 | 2) {
            return None;
        }
        cicp_profile(cicp)
    }

    /// The primary item is the image; an image sequence's other frames are not read.
    fn frames(&self, _src: &[u8], _limit: usize) -> usize {
        1
    }
}

/// An ICC profile for H.273 primaries and transfer, by moxcms; `None` for code points it does not know.
fn cicp_profile(cicp: av1::Cicp) -> Option<Vec<u8>> {
    use moxcms::{CicpColorPrimaries, CicpProfile, ColorProfile, MatrixCoefficients};
    let profile = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(cicp.primaries).ok()?,
        // Unspecified or unknown transfer: sRGB's curve, as browsers assume.
        transfer_characteristics: moxcms::TransferCharacteristics::try_from(cicp.transfer)
            .ok()
            .filter(|t| !matches!(t, moxcms::TransferCharacteristics::Unspecified))
            .unwrap_or(moxcms::TransferCharacteristics::Srgb),
        matrix_coefficients: MatrixCoefficients::try_from(0u8).ok()?,
        full_range: true,
    };
    ColorProfile::new_from_cicp(profile).encode().ok()
}
