//! CMYK and YCCK JPEGs (print workflows, stock agencies, old catalogues) to sRGB.
//!
//! libjpeg delivers CMYK (turning YCCK into it) at the same DCT scale as any JPEG; this module reads the
//! four channels as ink amounts and converts them:
//! - **Adobe's inversion.** Photoshop writes CMYK JPEGs with an Adobe APP14 marker and stores every
//!   channel inverted (255 = no ink). Done wrong, the picture is a negative. The rule every major decoder
//!   follows (libvips, Pillow, browsers): with the APP14 marker, the values are inverted; without it, they
//!   are plain ink amounts.
//! - **With an embedded CMYK profile** (the usual case from Photoshop), the ink amounts go through it to
//!   sRGB with moxcms (a LUT transform: the profile knows the press).
//! - **Without one**, the naive conversion most tools use: R = (1 − C)(1 − K), and so on. Colours are
//!   approximate (no press is like that), never inverted.

use moxcms::Layout as CmsLayout;

/// Whether `jpeg` carries an Adobe APP14 marker (so its CMYK channels are stored inverted).
pub fn adobe_inverted(jpeg: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if marker == 0xEE && jpeg.get(at + 4..at + 9) == Some(b"Adobe") {
            return true;
        }
        at += 2 + len;
    }
    false
}

/// Four-channel CMYK samples (inverted when `inverted`) to packed RGB, through `profile` when it is a
/// usable CMYK profile.
pub fn to_rgb(mut cmyk: Vec<u8>, inverted: bool, profile: Option<&[u8]>) -> Vec<u8> {
    if inverted {
        cmyk.iter_mut().for_each(|v| *v = 255 - *v);
    }
    if let Some(rgb) = profile
        .filter(|p| super::colour::profile_space(p) == Some(*b"CMYK"))
        .and_then(|p| through_profile(&cmyk, p))
    {
        return rgb;
    }
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let white = 255 - u32::from(p[3]);
            let channel = |ink: u8| ((255 - u32::from(ink)) * white / 255) as u8;
            [channel(p[0]), channel(p[1]), channel(p[2])]
        })
        .collect()
}

fn through_profile(cmyk: &[u8], profile: &[u8]) -> Option<Vec<u8>> {
    // moxcms takes 8-bit CMYK in the RGBA layout. Built once per profile (see `colour`).
    let transform = super::colour::transform_for(profile, CmsLayout::Rgba, CmsLayout::Rgb)?;
    let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
    transform.transform(cmyk, &mut rgb).ok()?;
    Some(rgb)
}

#[cfg(test)]
mod tests;
