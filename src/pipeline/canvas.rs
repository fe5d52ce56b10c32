//! Background work on the final, small image: padding onto a canvas (`fit/contain`) and flattening
//! alpha onto a colour for formats without it (JPEG). Both follow the same rule: an explicit `bg` colour
//! is used as given; without one, padding is transparent where the output format has alpha and white
//! where it has not, and alpha is flattened onto white (what a browser shows on a default page).

use super::format::Format;
use super::geometry::Canvas;
use super::{Layout, Pixels, is_opaque};

/// Whether `format` can carry transparency (JPEG is the only one of ours that cannot).
pub fn has_alpha(format: Format) -> bool {
    !matches!(format, Format::Jpeg)
}

/// An opaque sRGB colour, as `bg/{rrggbb}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    pub const WHITE: Rgb = Rgb([255, 255, 255]);

    /// Six hex digits, either case (`ff8800`).
    pub fn from_hex(hex: &str) -> Option<Rgb> {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }

    /// Lower-case hex, the canonical spelling.
    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("{r:02x}{g:02x}{b:02x}")
    }
}

/// Places `image` on `canvas`, filled with `background` (or transparent when `None`).
pub fn pad(image: Pixels, canvas: Canvas, background: Option<Rgb>) -> Pixels {
    if (canvas.width, canvas.height) == (image.width, image.height) {
        return image;
    }
    // The canvas has the image's channels, plus alpha when the padding is transparent.
    let layout = match (image.layout, background) {
        (_, None) => Layout::Rgba,
        (Layout::Gray, Some(Rgb([r, g, b]))) if r == g && g == b => Layout::Gray,
        (Layout::Gray | Layout::Rgb, Some(_)) => Layout::Rgb,
        (Layout::Rgba, Some(_)) => Layout::Rgba,
    };
    let fill: Vec<u8> = match (layout, background) {
        (Layout::Gray, Some(Rgb([v, _, _]))) => vec![v],
        (Layout::Rgb, Some(Rgb(c))) => c.to_vec(),
        (Layout::Rgba, Some(Rgb([r, g, b]))) => vec![r, g, b, 255],
        _ => vec![0, 0, 0, 0],
    };
    let image = image.into_layout(layout);
    let channels = layout.channels();
    let mut data = fill.repeat(canvas.width as usize * canvas.height as usize);
    let row_bytes = image.width as usize * channels;
    let stride = canvas.width as usize * channels;
    for (row, src) in image.data.chunks_exact(row_bytes).enumerate() {
        let y = canvas.y as usize + row;
        if y >= canvas.height as usize {
            break;
        }
        let start = y * stride + canvas.x as usize * channels;
        let end = (start + row_bytes).min((y + 1) * stride);
        data[start..end].copy_from_slice(&src[..end - start]);
    }
    Pixels {
        width: canvas.width,
        height: canvas.height,
        layout,
        data,
    }
}

/// Composites RGBA onto `background` (white when `None`), for formats without alpha.
pub fn flatten(image: Pixels, background: Option<Rgb>) -> Pixels {
    if image.layout != Layout::Rgba {
        return image;
    }
    if is_opaque(&image.data) {
        return image.into_layout(Layout::Rgb);
    }
    Pixels {
        data: blend_onto(&image.data, background.unwrap_or(Rgb::WHITE)),
        layout: Layout::Rgb,
        ..image
    }
}

/// RGBA bytes composited onto `background`, as RGB bytes.
pub(crate) fn blend_onto(rgba: &[u8], Rgb(bg): Rgb) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let mix =
                |c: u8, b: u8| ((u32::from(c) * a + u32::from(b) * (255 - a) + 127) / 255) as u8;
            [mix(p[0], bg[0]), mix(p[1], bg[1]), mix(p[2], bg[2])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(width: u32, height: u32) -> Pixels {
        Pixels {
            width,
            height,
            layout: Layout::Rgb,
            data: [200, 0, 0].repeat((width * height) as usize),
        }
    }

    #[test]
    fn hex_colours_parse_in_either_case_and_print_lower() {
        assert_eq!(Rgb::from_hex("FF8800"), Some(Rgb([255, 136, 0])));
        assert_eq!(
            Rgb::from_hex("ff8800").map(Rgb::hex).as_deref(),
            Some("ff8800")
        );
        for bad in ["fff", "ff88001", "gg0000", "+f8800", "ff 800", "ffé00"] {
            assert_eq!(Rgb::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn padding_places_the_image_and_fills_the_rest() {
        let canvas = Canvas {
            width: 4,
            height: 3,
            x: 1,
            y: 1,
        };
        let out = pad(red(2, 1), canvas, Some(Rgb([0, 0, 255])));
        assert_eq!((out.width, out.height, out.layout), (4, 3, Layout::Rgb));
        let at = |x: usize, y: usize| &out.data[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3];
        assert_eq!(at(1, 1), [200, 0, 0]);
        assert_eq!(at(2, 1), [200, 0, 0]);
        assert_eq!(at(0, 1), [0, 0, 255]);
        assert_eq!(at(3, 2), [0, 0, 255]);
        let clear = pad(red(2, 1), canvas, None);
        assert_eq!(clear.layout, Layout::Rgba);
        assert_eq!(&clear.data[..4], [0, 0, 0, 0]);
        assert_eq!(&clear.data[(4 + 1) * 4..(4 + 1) * 4 + 4], [200, 0, 0, 255]);
    }

    #[test]
    fn flattening_composites_on_the_background() {
        let half = Pixels {
            width: 1,
            height: 1,
            layout: Layout::Rgba,
            data: vec![0, 0, 0, 128],
        };
        assert_eq!(flatten(half.clone(), None).data, vec![127, 127, 127]);
        assert_eq!(flatten(half, Some(Rgb([0, 0, 200]))).data, vec![0, 0, 100]);
    }
}
