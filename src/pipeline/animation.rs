//! Whether an original is animated, read from its container structure without decoding any pixels:
//! a GIF with more than one image, a WebP whose VP8X header sets the animation flag.
//!
//! sizer serves the first frame of animations today; `f/auto` uses this so a negotiated format is never
//! one that could not carry the animation (AVIF here), keeping animated originals in their own format.

use super::probe::Format;

/// Whether `src` (already sniffed as `format`) holds more than one frame.
pub fn is_animated(format: Format, src: &[u8]) -> bool {
    match format {
        Format::Gif => gif_frames(src, 2) >= 2,
        Format::WebP => webp_animation_flag(src),
        _ => false,
    }
}

/// Counts GIF image descriptors, stopping at `limit` (or at the trailer, or at anything malformed).
fn gif_frames(src: &[u8], limit: usize) -> usize {
    // Header (6) + logical screen descriptor (7), then an optional global colour table.
    let Some(&packed) = src.get(10) else { return 0 };
    let mut pos = 13usize;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 0x07) + 1);
    }
    let mut frames = 0;
    while frames < limit {
        match src.get(pos) {
            // Image descriptor: 9 bytes after the separator, an optional local colour table, the LZW
            // minimum code size, then data sub-blocks.
            Some(0x2C) => {
                frames += 1;
                let Some(&local) = src.get(pos + 9) else {
                    break;
                };
                pos += 10;
                if local & 0x80 != 0 {
                    pos += 3 << ((local & 0x07) + 1);
                }
                pos += 1;
                let Some(next) = skip_sub_blocks(src, pos) else {
                    break;
                };
                pos = next;
            }
            // Extension: label, then sub-blocks.
            Some(0x21) => {
                let Some(next) = skip_sub_blocks(src, pos + 2) else {
                    break;
                };
                pos = next;
            }
            _ => break,
        }
    }
    frames
}

/// The position after a chain of GIF data sub-blocks starting at `pos`; `None` if it runs off the end.
fn skip_sub_blocks(src: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*src.get(pos)?);
        pos += 1;
        if len == 0 {
            return Some(pos);
        }
        pos += len;
    }
}

/// `RIFF....WEBPVP8X` with the animation bit (0x02) of its flags byte set.
fn webp_animation_flag(src: &[u8]) -> bool {
    src.get(12..16) == Some(b"VP8X") && src.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};

    fn gif(frames: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut out);
            for i in 0..frames {
                let img = RgbaImage::from_pixel(8, 4, image::Rgba([i as u8 * 40, 0, 0, 255]));
                encoder
                    .encode_frame(Frame::from_parts(
                        img,
                        0,
                        0,
                        Delay::from_numer_denom_ms(100, 1),
                    ))
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn gifs_are_animated_from_their_second_frame() {
        assert!(!is_animated(Format::Gif, &gif(1)));
        assert!(is_animated(Format::Gif, &gif(2)));
        assert!(is_animated(Format::Gif, &gif(5)));
        assert_eq!(gif_frames(&gif(5), 100), 5);
    }

    #[test]
    fn truncated_or_junk_input_is_not_animated_and_never_panics() {
        let full = gif(3);
        for end in 0..full.len() {
            let _ = is_animated(Format::Gif, &full[..end]);
        }
        assert!(!is_animated(Format::Gif, b"GIF89a"));
        assert!(!is_animated(Format::WebP, b"RIFF\0\0\0\0WEBPVP8 "));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02\0\0\0".to_vec();
        assert!(is_animated(Format::WebP, &vp8x));
        vp8x[20] = 0x10;
        assert!(!is_animated(Format::WebP, &vp8x));
    }
}
