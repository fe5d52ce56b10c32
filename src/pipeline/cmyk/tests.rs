use super::*;
use crate::pipeline::probe::Format;
use crate::pipeline::{Job, process};

/// Four colour patches as ink amounts (0 = none, 255 = full), left to right: cyan, magenta + yellow
/// (red), 50% black, paper white.
const PATCHES: [[u8; 4]; 4] = [
    [255, 0, 0, 0],
    [0, 255, 255, 0],
    [0, 0, 0, 128],
    [0, 0, 0, 0],
];
/// What each patch must look like in sRGB (naive conversion), within a JPEG's error.
const EXPECTED: [[u8; 3]; 4] = [[0, 255, 255], [255, 0, 0], [127, 127, 127], [255, 255, 255]];

/// A 64x16 CMYK JPEG of the patches through libjpeg: `stored` maps ink amounts to what is written;
/// `space` is the JPEG colour space (CMYK or YCCK). libjpeg writes an Adobe APP14 marker for both.
fn cmyk_jpeg(stored: impl Fn(u8) -> u8, space: mozjpeg::ColorSpace) -> Vec<u8> {
    let (w, h) = (64usize, 16usize);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| PATCHES[(i % w) / 16].map(&stored))
        .collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    compress.set_size(w, h);
    compress.set_color_space(space);
    compress.set_quality(95.0);
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&data).unwrap();
    started.finish().unwrap()
}

/// `jpeg` without its APP14 segment.
fn without_app14(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    while jpeg[at + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if jpeg[at + 1] != 0xEE {
            out.extend_from_slice(&jpeg[at..at + 2 + len]);
        }
        at += 2 + len;
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// The centre pixel of each patch after the whole pipeline at 32 px wide (a 2:1 shrink, DCT-scaled).
fn patches_out(jpeg: &[u8]) -> Vec<[u8; 3]> {
    let mut job = Job::width(32);
    job.format = crate::pipeline::OutputFormat::Fixed(Format::Png);
    let out = process(jpeg, &job).expect("a CMYK JPEG is served");
    let rgb = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    (0..4).map(|p| rgb.get_pixel(p * 8 + 4, 4).0).collect()
}

fn assert_patches(jpeg: &[u8], what: &str) {
    for (got, want) in patches_out(jpeg).iter().zip(EXPECTED) {
        for (g, w) in got.iter().zip(want) {
            assert!(g.abs_diff(w) <= 12, "{what}: got {got:?}, want {want:?}");
        }
    }
}

#[test]
fn adobe_cmyk_is_stored_inverted_and_comes_out_right_side_up() {
    // Photoshop's convention: APP14 present, every channel inverted.
    let jpeg = cmyk_jpeg(|ink| 255 - ink, mozjpeg::ColorSpace::JCS_CMYK);
    assert!(adobe_inverted(&jpeg));
    assert_patches(&jpeg, "Adobe CMYK");
}

#[test]
fn plain_cmyk_without_the_adobe_marker_is_not_inverted() {
    let jpeg = without_app14(&cmyk_jpeg(|ink| ink, mozjpeg::ColorSpace::JCS_CMYK));
    assert!(!adobe_inverted(&jpeg));
    assert_patches(&jpeg, "plain CMYK");
}

#[test]
fn ycck_is_turned_into_cmyk_by_libjpeg_then_converted() {
    let jpeg = cmyk_jpeg(|ink| 255 - ink, mozjpeg::ColorSpace::JCS_YCCK);
    assert!(adobe_inverted(&jpeg));
    assert_patches(&jpeg, "Adobe YCCK");
}

#[test]
fn reading_the_inversion_wrongly_would_give_a_negative() {
    // The same inverted data with its marker stripped decodes as a negative: the marker decides.
    let negative = without_app14(&cmyk_jpeg(|ink| 255 - ink, mozjpeg::ColorSpace::JCS_CMYK));
    let white_patch = patches_out(&negative)[3];
    assert!(white_patch.iter().all(|&v| v < 40), "{white_patch:?}");
}

#[test]
fn an_unusable_profile_falls_back_to_the_naive_conversion() {
    let inks = PATCHES.concat();
    let naive = to_rgb(inks.clone(), false, None);
    // An RGB profile on CMYK data, and garbage claiming to be CMYK: both ignored.
    let rgb_profile = moxcms::ColorProfile::new_srgb().encode().unwrap();
    let mut fake_cmyk = vec![0u8; 200];
    fake_cmyk[16..20].copy_from_slice(b"CMYK");
    for profile in [rgb_profile.as_slice(), fake_cmyk.as_slice()] {
        assert_eq!(to_rgb(inks.clone(), false, Some(profile)), naive);
    }
    assert_eq!(naive[..3], [0, 255, 255]);
}
