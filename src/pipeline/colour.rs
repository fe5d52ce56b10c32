//! Colour management: the ICC profile embedded in an original (JPEG APP2 chunks reassembled in order, PNG
//! `iCCP`, WebP `ICCP`), and its pixels converted to sRGB right after decoding, before anything else touches
//! them, with moxcms (pure Rust, already in the tree through `image`; lcms2 would build C for the same
//! matrix-shaper maths). Output is then untagged sRGB, which is what every browser assumes of an untagged
//! image. A Display P3 photo from a phone keeps its reds and greens instead of coming out dull.
//!
//! - A profile that is sRGB already (most camera JPEGs carry one) is recognised by its effect (the
//!   transform leaves a grid of test colours unchanged) and costs nothing after the first time.
//! - Greyscale stays greyscale: a grey image's profile is not applied (a grey TRC differs from sRGB's by
//!   far less than its rounding at 8 bits for the usual gamma-2.2 ones).
//! - A profile that cannot be read, or does not fit the pixels (a CMYK profile on RGB data), is ignored
//!   with a debug log: the image is served as if untagged, never refused for it.
//! - Transforms are cached by the profile's hash, so a thousand photos from one phone build one transform.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use moxcms::{ColorProfile, Layout as CmsLayout, TransformExecutor, TransformOptions};

use super::format::InputFormat;
use super::{Layout, Pixels};

/// Largest profile read. Real ones are a few kB (a CMYK one up to ~2 MB); anything bigger is ignored.
pub const MAX_PROFILE_BYTES: usize = 4 << 20;

/// Transforms kept, by profile hash.
const CACHED_TRANSFORMS: usize = 32;

/// The ICC profile embedded in `src`, if any and readable within [`MAX_PROFILE_BYTES`].
pub fn embedded_profile(format: InputFormat, src: &[u8]) -> Option<Vec<u8>> {
    super::decode::codec(format).profile(src)
}

/// The colour space a profile describes (`RGB `, `CMYK`, `GRAY`, ...), from its header.
pub fn profile_space(profile: &[u8]) -> Option<[u8; 4]> {
    profile.get(16..20)?.try_into().ok()
}

/// Converts `pixels` (RGB or RGBA, 8 bits, in the space of `profile`) to sRGB in place. Returns whether
/// anything changed (false for grey images, sRGB profiles and profiles that cannot be used).
pub fn to_srgb(pixels: &mut Pixels, profile: &[u8]) -> bool {
    let layout = match pixels.layout {
        Layout::Rgb => CmsLayout::Rgb,
        Layout::Rgba => CmsLayout::Rgba,
        Layout::Gray => return false,
    };
    let Some(transform) = transform_for(profile, layout, layout) else {
        return false;
    };
    let mut out = vec![0u8; pixels.data.len()];
    if let Err(e) = transform.transform(&pixels.data, &mut out) {
        tracing::debug!(error = %e, "colour transform failed; pixels left as they are");
        return false;
    }
    pixels.data = out;
    true
}

/// A cached transform from `profile` (pixels in `from`) to sRGB (pixels in `to`); `None` for unusable
/// profiles, and for sRGB-equivalent ones when the layouts are the same.
pub(crate) fn transform_for(
    profile: &[u8],
    from: CmsLayout,
    to: CmsLayout,
) -> Option<Arc<dyn TransformExecutor<u8> + Send + Sync>> {
    /// (profile hash, source layout, destination layout).
    type Key = (u64, u8, u8);
    type Cached = Option<Arc<dyn TransformExecutor<u8> + Send + Sync>>;
    static CACHE: OnceLock<Mutex<HashMap<Key, Cached>>> = OnceLock::new();
    let key = (xxhash_rust::xxh3::xxh3_64(profile), from as u8, to as u8);
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().ok()?.get(&key) {
        return found.clone();
    }
    let built = build(profile, from, to);
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= CACHED_TRANSFORMS {
            cache.clear();
        }
        cache.insert(key, built.clone());
    }
    built
}

fn build(
    profile: &[u8],
    from: CmsLayout,
    to: CmsLayout,
) -> Option<Arc<dyn TransformExecutor<u8> + Send + Sync>> {
    let source = match ColorProfile::new_from_slice(profile) {
        Ok(source) => source,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable ICC profile ignored");
            return None;
        }
    };
    let transform = match source.create_transform_8bit(
        from,
        &ColorProfile::new_srgb(),
        to,
        TransformOptions::default(),
    ) {
        Ok(transform) => transform,
        Err(e) => {
            tracing::debug!(error = %e, "ICC profile not usable for these pixels; ignored");
            return None;
        }
    };
    (from != to || !is_identity(transform.as_ref(), from)).then_some(transform)
}

/// Whether a transform leaves colours as they are (an sRGB profile by another name): a grid of test
/// colours, each channel within one step.
fn is_identity(transform: &(dyn TransformExecutor<u8> + Send + Sync), layout: CmsLayout) -> bool {
    let channels = if layout == CmsLayout::Rgba { 4 } else { 3 };
    let steps = [0u8, 40, 96, 160, 220, 255];
    let mut grid = Vec::new();
    for r in steps {
        for g in steps {
            for b in steps {
                grid.extend_from_slice(&[r, g, b, 255][..channels]);
            }
        }
    }
    let mut out = vec![0u8; grid.len()];
    transform.transform(&grid, &mut out).is_ok()
        && grid.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// JPEG: APP2 segments `ICC_PROFILE\0 <seq> <count> <data>`, joined in `seq` order; every part must be
/// there exactly once.
pub(crate) fn jpeg_profile(src: &[u8]) -> Option<Vec<u8>> {
    const TAG: &[u8] = b"ICC_PROFILE\0";
    let mut parts: Vec<(u8, &[u8])> = Vec::new();
    let mut count = 0u8;
    let mut total = 0usize;
    let mut at = 2; // after SOI
    while at + 4 <= src.len() {
        if src[at] != 0xFF {
            return None;
        }
        let marker = src[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        // Start of scan or end of image: no more metadata segments.
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([src[at + 2], src[at + 3]]));
        let body = src.get(at + 4..at + 2 + len)?;
        if marker == 0xE2 && body.starts_with(TAG) && body.len() > TAG.len() + 2 {
            let (seq, of) = (body[TAG.len()], body[TAG.len() + 1]);
            if seq == 0 || of == 0 || (count != 0 && of != count) {
                return None;
            }
            count = of;
            let data = &body[TAG.len() + 2..];
            total += data.len();
            if total > MAX_PROFILE_BYTES {
                return None;
            }
            parts.push((seq, data));
        }
        at += 2 + len;
    }
    if parts.is_empty() || parts.len() != usize::from(count) {
        return None;
    }
    parts.sort_by_key(|(seq, _)| *seq);
    if parts
        .iter()
        .enumerate()
        .any(|(i, (seq, _))| usize::from(*seq) != i + 1)
    {
        return None;
    }
    Some(
        parts
            .into_iter()
            .flat_map(|(_, data)| data.iter().copied())
            .collect(),
    )
}

/// PNG: the `iCCP` chunk before `IDAT`: a name, a NUL, the compression method (0), zlib data.
pub(crate) fn png_profile(src: &[u8]) -> Option<Vec<u8>> {
    let mut at = 8;
    while at + 8 <= src.len() {
        let len = usize::try_from(u32::from_be_bytes(src[at..at + 4].try_into().ok()?)).ok()?;
        let kind = &src[at + 4..at + 8];
        let body = src.get(at + 8..(at + 8).checked_add(len)?)?;
        match kind {
            b"iCCP" => {
                let name_end = body.iter().position(|&b| b == 0)?;
                let compressed = body.get(name_end + 2..)?;
                return miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(
                    compressed,
                    MAX_PROFILE_BYTES,
                )
                .ok();
            }
            b"IDAT" | b"IEND" => return None,
            _ => {}
        }
        at = at.checked_add(12 + len)?;
    }
    None
}

/// WebP: the `ICCP` chunk of an extended (VP8X) file.
pub(crate) fn webp_profile(src: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12; // "RIFF" size "WEBP"
    while at + 8 <= src.len() {
        let kind = &src[at..at + 4];
        let len = usize::try_from(u32::from_le_bytes(src[at + 4..at + 8].try_into().ok()?)).ok()?;
        let body = src.get(at + 8..(at + 8).checked_add(len)?)?;
        if kind == b"ICCP" {
            return (body.len() <= MAX_PROFILE_BYTES).then(|| body.to_vec());
        }
        // Chunks are padded to an even size.
        at = at.checked_add(8 + len + (len & 1))?;
    }
    None
}

#[cfg(test)]
mod tests;
