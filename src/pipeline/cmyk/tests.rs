use super::*;
use crate::pipeline::format::Format;
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

/// A CMYK profile of our own: a lut16 A2B0 on a 2-point grid that sends every ink combination to one
/// colour, Lab (50, 0, −40), a mid blue no naive conversion gives. Whatever the inks, a converter that
/// applies it paints that blue.
fn one_colour_cmyk_profile() -> Vec<u8> {
    // lut16 Lab: L 0..100 on 0..0xFF00, a and b −128..128 on 0..0xFFFF (0 at 0x8000).
    let lab = [0x7F80u16, 0x8000, (88 * 256) as u16];
    let lut = moxcms::LutDataType {
        num_input_channels: 4,
        num_output_channels: 3,
        num_clut_grid_points: 2,
        matrix: moxcms::Matrix3d::IDENTITY,
        num_input_table_entries: 2,
        num_output_table_entries: 2,
        input_table: moxcms::LutStore::Store16([0, 0xFFFF].repeat(4)),
        clut_table: moxcms::LutStore::Store16(lab.repeat(16)),
        output_table: moxcms::LutStore::Store16([0, 0xFFFF].repeat(3)),
        lut_type: moxcms::LutType::Lut16,
    };
    let mut profile = moxcms::ColorProfile::default();
    profile.color_space = moxcms::DataColorSpace::Cmyk;
    profile.pcs = moxcms::DataColorSpace::Lab;
    profile.profile_class = moxcms::ProfileClass::OutputDevice;
    profile.rendering_intent = moxcms::RenderingIntent::Perceptual;
    profile.white_point = moxcms::Xyzd {
        x: 0.9642,
        y: 1.0,
        z: 0.8249,
    };
    profile.lut_a_to_b_perceptual = Some(moxcms::LutWarehouse::Lut(lut));
    profile.encode().expect("the profile encodes")
}

/// `jpeg` with `profile` in one APP2 ICC_PROFILE segment after its SOI.
fn with_icc(jpeg: &[u8], profile: &[u8]) -> Vec<u8> {
    let mut app2 = b"ICC_PROFILE\0\x01\x01".to_vec();
    app2.extend_from_slice(profile);
    let len = u16::try_from(app2.len() + 2).expect("a short profile");
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE2];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app2);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn an_embedded_cmyk_profile_is_applied_instead_of_the_naive_conversion() {
    let profile = one_colour_cmyk_profile();
    assert_eq!(
        super::super::colour::profile_space(&profile),
        Some(*b"CMYK")
    );
    let blue = to_rgb(PATCHES.concat(), false, Some(&profile));
    let naive = to_rgb(PATCHES.concat(), false, None);
    assert_ne!(blue, naive);
    let first = [blue[0], blue[1], blue[2]];
    // Lab (50, 0, −40) is about sRGB (67, 120, 180): a blue, the same for every patch.
    assert!(first[2] > first[0] + 60, "{first:?}");
    for p in blue.chunks_exact(3) {
        assert!(
            p.iter().zip(first).all(|(a, b)| a.abs_diff(b) <= 2),
            "{p:?}"
        );
    }
    // Through the whole pipeline, from an Adobe CMYK JPEG carrying the profile.
    let jpeg = with_icc(
        &cmyk_jpeg(|ink| 255 - ink, mozjpeg::ColorSpace::JCS_CMYK),
        &profile,
    );
    for got in patches_out(&jpeg) {
        assert!(
            got.iter().zip(first).all(|(a, b)| a.abs_diff(b) <= 12),
            "{got:?} against {first:?}"
        );
    }
}
