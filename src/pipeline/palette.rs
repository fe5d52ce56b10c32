//! RGBA pixels to at most 256 colours, for palette PNGs.
//!
//! - An image with 256 distinct colours or fewer (logos, icons, flat art) keeps exactly its own colours:
//!   lossless.
//! - Anything else is mapped to a [`COLOURS`]-entry NeuQuant palette (`color_quant`, MIT, already in the tree
//!   through `image`'s GIF encoder), each pixel to its nearest entry. No error diffusion: on the bench
//!   photo (W4) Floyd–Steinberg lowered SSIM against the reference (0.9878 → 0.9689) and added bytes,
//!   because at thumbnail sizes its noise costs more than the banding it hides.
//! - Fully transparent pixels all become one transparent entry; an image without transparency gets an
//!   opaque palette (NeuQuant otherwise seeds a few translucent entries), so no tRNS chunk is written.

use std::collections::HashMap;

use color_quant::NeuQuant;

/// NeuQuant learns from every n-th pixel; n is chosen so that about this many pixels are learnt from,
/// which bounds the learning time whatever the output size.
const LEARNING_PIXELS: usize = 12_000;

/// Palette entries for images with more colours than that. Measured on W4 (goldfish, 300w; SSIM
/// against the float reference, bytes, NeuQuant learning time):
///
/// | entries | learning from | SSIM | bytes | learning |
/// |---|---|---|---|---|
/// | 256 | every pixel | 0.9878 | 19,005 | 42 ms |
/// | 256 | every 5th | 0.9832 | 19,430 | 10 ms |
/// | 192 | every 5th | 0.9804 | 17,233 | 8.5 ms |
/// | 128 | every 5th | 0.9704 | 14,346 | 6.5 ms |
/// | sharp (libimagequant, 142 colours) | | 0.9792 | 17,720 | |
///
/// 192 from every 5th pixel matches sharp's quality and bytes at a fifth of the full learning time.
const COLOURS: usize = 192;

pub struct Indexed {
    /// RGBA entries, at most 256.
    pub palette: Vec<[u8; 4]>,
    /// One palette index per pixel, row-major.
    pub indices: Vec<u8>,
}

impl Indexed {
    pub fn is_opaque(&self) -> bool {
        self.palette.iter().all(|c| c[3] == 255)
    }
}

/// `rgba` holds pixels of 4 bytes, straight (not premultiplied) alpha.
pub fn quantize(rgba: &[u8]) -> Indexed {
    exact(rgba).unwrap_or_else(|| nearest(rgba))
}

/// For GIF frames, whose pixels are opaque or fully transparent (alpha 255 or 0, transparent ones all
/// `[0; 4]`): the same choice as [`quantize`], but NeuQuant learns from the opaque pixels only and every
/// transparent one maps to a single transparent entry, the last.
pub fn quantize_binary_alpha(rgba: &[u8]) -> Indexed {
    if super::is_opaque(rgba) {
        return quantize(rgba);
    }
    if let Some(own) = exact(rgba) {
        return own;
    }
    let opaque: Vec<u8> = rgba
        .chunks_exact(4)
        .filter(|p| p[3] != 0)
        .flatten()
        .copied()
        .collect();
    let sample_factor = (opaque.len() / 4 / LEARNING_PIXELS).clamp(1, 30) as i32;
    let quant = NeuQuant::new(sample_factor, COLOURS, &opaque);
    let mut palette: Vec<[u8; 4]> = quant
        .color_map_rgba()
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], 255])
        .collect();
    let transparent = u8::try_from(palette.len()).unwrap_or(u8::MAX);
    palette.push([0; 4]);
    let mut nearest = NearestCache::new();
    let indices = rgba
        .chunks_exact(4)
        .map(|p| {
            if p[3] == 0 {
                transparent
            } else {
                nearest.index_of(&quant, [p[0], p[1], p[2], 255])
            }
        })
        .collect();
    Indexed { palette, indices }
}

/// The image's own colours, if there are at most 256 of them.
fn exact(rgba: &[u8]) -> Option<Indexed> {
    let mut index_of: HashMap<[u8; 4], u8> = HashMap::new();
    let mut palette = Vec::new();
    let mut indices = Vec::with_capacity(rgba.len() / 4);
    for px in rgba.chunks_exact(4) {
        let color = [px[0], px[1], px[2], px[3]];
        let index = match index_of.get(&color) {
            Some(&i) => i,
            None => {
                let i = u8::try_from(palette.len()).ok()?;
                palette.push(color);
                index_of.insert(color, i);
                i
            }
        };
        indices.push(index);
    }
    Some(Indexed { palette, indices })
}

fn nearest(rgba: &[u8]) -> Indexed {
    let opaque = super::is_opaque(rgba);
    // The colour of an invisible pixel is noise: give them all one colour, so they share one entry.
    let cleared;
    let pixels = if opaque {
        rgba
    } else {
        cleared = rgba
            .chunks_exact(4)
            .flat_map(|p| {
                if p[3] == 0 {
                    [0; 4]
                } else {
                    [p[0], p[1], p[2], p[3]]
                }
            })
            .collect::<Vec<u8>>();
        &cleared
    };
    let sample_factor = (pixels.len() / 4 / LEARNING_PIXELS).clamp(1, 30) as i32;
    let quant = NeuQuant::new(sample_factor, COLOURS, pixels);
    let palette = quant
        .color_map_rgba()
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], if opaque { 255 } else { c[3] }])
        .collect();
    let mut nearest = NearestCache::new();
    let indices = pixels
        .chunks_exact(4)
        .map(|p| nearest.index_of(&quant, [p[0], p[1], p[2], p[3]]))
        .collect();
    Indexed { palette, indices }
}

/// Remembers the palette index of recently seen colours. Neighbouring pixels of a photo often repeat a
/// colour exactly, and NeuQuant's search is the costliest step of mapping (1600w W4 input: 33% of the
/// whole resize before this cache). A direct-mapped table: a colour is looked up in one slot, and a
/// colliding colour simply replaces it, so results are exactly those of the search.
struct NearestCache {
    slots: Vec<(u32, u16)>,
}

impl NearestCache {
    const BITS: u32 = 16;
    const EMPTY: u16 = u16::MAX;

    fn new() -> Self {
        NearestCache {
            slots: vec![(0, Self::EMPTY); 1 << Self::BITS],
        }
    }

    fn index_of(&mut self, quant: &NeuQuant, color: [u8; 4]) -> u8 {
        let key = u32::from_le_bytes(color);
        let slot = (key.wrapping_mul(0x9E37_79B1) >> (32 - Self::BITS)) as usize;
        let (seen, index) = self.slots[slot];
        if index != Self::EMPTY && seen == key {
            return index as u8;
        }
        let index = quant.index_of(&color) as u8;
        self.slots[slot] = (key, u16::from(index));
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: usize, height: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(width * height * 4);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&[
                    (x * 255 / width) as u8,
                    (y * 255 / height) as u8,
                    ((x + y) * 127 / (width + height)) as u8,
                    255,
                ]);
            }
        }
        data
    }

    fn rebuilt(indexed: &Indexed) -> Vec<u8> {
        indexed
            .indices
            .iter()
            .flat_map(|&i| indexed.palette[usize::from(i)])
            .collect()
    }

    #[test]
    fn few_colours_are_kept_exactly() {
        let mut data = Vec::new();
        for i in 0..1000u32 {
            let alpha = if i % 2 == 0 { 0 } else { 255 };
            data.extend_from_slice(&[(i % 7) as u8 * 30, 10, 200, alpha]);
        }
        let indexed = quantize(&data);
        assert_eq!(indexed.palette.len(), 14);
        assert!(!indexed.is_opaque());
        assert_eq!(rebuilt(&indexed), data);
    }

    #[test]
    fn many_colours_map_to_near_palette_entries() {
        // 32,768 distinct colours.
        let data = gradient(256, 128);
        let indexed = quantize(&data);
        assert!(indexed.palette.len() <= 256);
        assert!(
            indexed.is_opaque(),
            "no translucent entries for an opaque image"
        );
        let out = rebuilt(&indexed);
        let errors: Vec<u8> = data.iter().zip(&out).map(|(a, b)| a.abs_diff(*b)).collect();
        let mean = errors.iter().map(|&e| f64::from(e)).sum::<f64>() / errors.len() as f64;
        let worst = errors.iter().copied().max().unwrap_or(0);
        assert!(mean < 3.0, "mean channel error {mean}");
        assert!(worst < 32, "worst channel error {worst}");
    }

    #[test]
    fn the_colour_cache_gives_the_search_results() {
        // Every colour twice, in two passes, so that cached answers are used and slots collide.
        let mut data = gradient(256, 128);
        data.extend_from_within(..);
        let quant = NeuQuant::new(1, COLOURS, &data);
        let mut cache = NearestCache::new();
        for px in data.chunks_exact(4) {
            let color = [px[0], px[1], px[2], px[3]];
            assert_eq!(
                usize::from(cache.index_of(&quant, color)),
                quant.index_of(&color)
            );
        }
    }

    #[test]
    fn invisible_pixels_share_one_transparent_entry() {
        let mut data = gradient(256, 128);
        // Left half fully transparent, each pixel keeping its (now meaningless) colour.
        for (i, px) in data.chunks_exact_mut(4).enumerate() {
            if i % 256 < 128 {
                px[3] = 0;
            }
        }
        let indexed = quantize(&data);
        let transparent: Vec<u8> = indexed
            .indices
            .iter()
            .zip(data.chunks_exact(4))
            .filter(|(_, px)| px[3] == 0)
            .map(|(&i, _)| i)
            .collect();
        assert!(transparent.iter().all(|&i| i == transparent[0]));
        assert_eq!(indexed.palette[usize::from(transparent[0])][3], 0);
        assert!(!indexed.is_opaque());
    }
}
