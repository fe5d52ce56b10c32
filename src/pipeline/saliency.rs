//! Attention-based crop placement for `g/smart`: where a `fit/cover` crop window should sit so that it
//! keeps the part of the picture a viewer would look at.
//!
//! The idea is libvips' *attention* smartcrop (`vips_smartcrop` with `VIPS_INTERESTING_ATTENTION`, what
//! sharp calls `position: 'attention'`), itself adapted from smartcrop.js: shrink the image to a grid of
//! about 32x32 whatever its aspect, score every grid cell for edges, skin tones and saturated colour,
//! blur the scores with a Gaussian as wide as a tenth of the crop's diagonal on the grid, and centre the
//! window on the highest blurred score. This is an independent implementation of that idea:
//!
//! - One pass down the rows averages them into the grid (per cell: mean colour, mean alpha and the
//!   mean difference between neighbouring pixels, all from integer sums in byte and 16-bit lanes that
//!   the compiler vectorises). Images under 768 rows are read whole; taller ones at evenly spaced
//!   pairs of adjacent rows, at least 8 per grid row, so the cost stays within a few milliseconds
//!   however tall the original. Every later step works on at most 32x32 cells.
//! - Cell colours go to CIELAB (exact sRGB D65 formulas; with at most 1024 cells there is no reason to
//!   approximate). Scores per cell: the absolute 4-neighbour Laplacian of lightness (libvips' edge
//!   term), the in-cell mean absolute gradient (fine texture that averaging into a cell would
//!   otherwise erase: an addition to libvips, which sees only the 32x32 grid), closeness of the
//!   chromaticity to a skin-colour direction with lightness and chroma gates (smartcrop.js' skin term)
//!   and chroma above a threshold with lightness gates (the saturation term). Grey images have no
//!   chroma and score by structure (edges and detail) alone.
//! - Alpha: colours are averaged premultiplied, so transparent pixels lend nothing, and every cell's score
//!   is weighted by its coverage; a fully transparent region is never interesting, whatever RGB it hides.
//! - A map without any interest (a flat image) and ties resolve towards the centre.
//!
//! It must never panic, whatever the buffer (any size including 1x1 and 10000x3, a short or empty
//! `data`, a crop of 0 or larger than the image), never copy the image, and never read a pixel twice.
//! It only places the window: choosing the crop size and cutting are the caller's.

use super::{Layout, Pixels};

/// Cells along each axis of the analysis grid (fewer when the image itself is smaller).
const GRID: u32 = 32;

/// Weights of the four terms, each of which is on a 0-100 scale (L* units for the structure terms).
/// Structure weighs most, as in libvips (which scales its edges by 5). Detail is a per-pixel mean
/// difference, a few units for in-focus photographic texture and near zero for blur, so it weighs
/// twice the grid-scale edges to count as much. A skin-coloured area outweighs an equally large
/// saturated one (smartcrop.js weighs skin 1.8 against saturation 0.1-0.3), so faces win over bright
/// clothing.
const EDGE_WEIGHT: f32 = 2.0;
const DETAIL_WEIGHT: f32 = 4.0;
const SKIN_WEIGHT: f32 = 1.0;
const SATURATION_WEIGHT: f32 = 0.5;
/// In-cell detail (see `CellStats::detail`) from which a cell counts as in focus; sharp photographic
/// texture measures a few units, a blurred background a fraction of one.
const FOCUS_DETAIL: f32 = 2.0;
/// Share of the skin term that counts without focus.
const SKIN_UNFOCUSED: f32 = 0.25;

/// Skin: the direction of (0.78, 0.57, 0.44) in sRGB (smartcrop.js' skin colour), normalised.
const SKIN_DIRECTION: [f32; 3] = [0.734_7, 0.536_9, 0.414_5];
/// Distance between unit RGB directions below which a colour counts as skin. Wider than smartcrop.js'
/// 0.2 so that dark skin tones such as #8d5524 (0.23) still count; the chroma gate below keeps neutral
/// greys (0.23 too) out.
const SKIN_DISTANCE: f32 = 0.25;
const SKIN_MIN_LIGHTNESS: f32 = 20.0;
const SKIN_MIN_CHROMA: f32 = 10.0;

/// Saturation: chroma (C*ab) from which a colour starts to count, and the span over which it reaches
/// full score. Skin and wood stay below ~30; pure sRGB primaries are at 50 (cyan) to 134 (blue).
const SATURATION_FROM: f32 = 30.0;
const SATURATION_SPAN: f32 = 50.0;
const SATURATION_MIN_LIGHTNESS: f32 = 5.0;
const SATURATION_MAX_LIGHTNESS: f32 = 98.0;

/// Top-left corner (x, y) of the `crop_w` x `crop_h` window of `image` that holds the most interesting content.
/// Requires 1 <= crop_w <= image.width and 1 <= crop_h <= image.height; otherwise clamps and never panics.
pub fn attention_offset(image: &Pixels, crop_w: u32, crop_h: u32) -> (u32, u32) {
    let (width, height) = (image.width, image.height);
    if width == 0 || height == 0 {
        return (0, 0);
    }
    let crop_w = crop_w.clamp(1, width);
    let crop_h = crop_h.clamp(1, height);
    if (crop_w, crop_h) == (width, height) {
        return (0, 0);
    }
    let centred = ((width - crop_w) / 2, (height - crop_h) / 2);
    let Some(grid) = shrink(image) else {
        return centred;
    };
    let scores = score(&grid, image.layout);
    // libvips: sigma = max(|crop diagonal on the grid| / 10, 1).
    let crop_gw = f64::from(crop_w) * f64::from(grid.width) / f64::from(width);
    let crop_gh = f64::from(crop_h) * f64::from(grid.height) / f64::from(height);
    let sigma = (crop_gw.hypot(crop_gh) / 10.0).max(1.0);
    let blurred = gaussian_blur(&scores, grid.width, grid.height, sigma);
    let Some((gx, gy)) = peak(&blurred, grid.width, grid.height) else {
        return centred;
    };
    // Centre of the peak cell in image pixels; the window is centred there, then kept inside the image.
    let cx = (f64::from(gx) + 0.5) * f64::from(width) / f64::from(grid.width);
    let cy = (f64::from(gy) + 0.5) * f64::from(height) / f64::from(grid.height);
    (
        place(cx, crop_w, width - crop_w),
        place(cy, crop_h, height - crop_h),
    )
}

/// Start of a window of `size` centred on `centre`, within `0..=max_start`.
fn place(centre: f64, size: u32, max_start: u32) -> u32 {
    let start = (centre - f64::from(size) / 2.0).round();
    // A float-to-int `as` saturates (and maps NaN to 0), so this cannot wrap; the clamp keeps it inside.
    (start.max(0.0) as u32).min(max_start)
}

/// Per-cell sums of the analysis grid, row-major.
struct Grid {
    width: u32,
    height: u32,
    cells: Vec<Cell>,
}

/// Sums over the pixels of one cell. Channels are those of the layout; for RGBA the colour channels
/// hold premultiplied values (the colour composited over black), the fourth channel plain alpha.
/// `gradient` sums, per channel, the absolute differences of each pixel with its left and upper
/// neighbours.
#[derive(Clone, Copy, Default)]
struct Cell {
    count: u64,
    sum: [u64; 4],
    gradient: [u64; 4],
}

/// Per-column sums of the rows seen since they were last folded into the cells. Kept in `u16` so that
/// the per-pixel work is byte and 16-bit arithmetic the compiler vectorises 8 to 16 lanes wide; folded
/// every `FOLD_ROWS` rows, which keeps them from overflowing.
struct Columns {
    sum: Vec<u16>,
    gradient: Vec<u16>,
    rows: u32,
}

/// Rows a [`Columns`] may hold: a gradient adds at most 2 * 255 per row, and 128 * 510 <= u16::MAX.
const FOLD_ROWS: u32 = 128;

/// Pairs of adjacent rows read per grid band, at least. Bands of fewer than three times as many rows
/// are read whole (every image under 768 rows); taller ones at evenly spaced pairs, which still gives
/// every cell thousands of pixels of a large original while reading a bounded number of rows (~550 of
/// a 3000-row one). Reading every row of a 12-megapixel original cost 3-10x the budget.
const PAIRS_PER_BAND: u64 = 8;

/// Averages the image into a grid of at most `GRID` x `GRID` cells in one pass down its rows. `None`
/// when the buffer holds no complete row (or its geometry overflows).
fn shrink(image: &Pixels) -> Option<Grid> {
    let channels = image.layout.channels();
    let width = usize::try_from(image.width).ok()?;
    let row_bytes = width.checked_mul(channels)?;
    if row_bytes == 0 {
        return None;
    }
    let rows = image
        .data
        .len()
        .checked_div(row_bytes)?
        .min(usize::try_from(image.height).ok()?);
    let last = u64::try_from(rows).ok()?.checked_sub(1)?;
    let grid_w = image.width.min(GRID);
    let grid_h = image.height.min(GRID);
    let mut shrinker = Shrinker {
        grid: Grid {
            width: grid_w,
            height: grid_h,
            cells: vec![Cell::default(); grid_w as usize * grid_h as usize],
        },
        columns: Columns {
            sum: vec![0; row_bytes],
            gradient: vec![0; row_bytes],
            rows: 0,
        },
        channels,
        image_height: image.height,
        band: 0,
        band_end: band_edge(1, image.height, grid_h),
    };
    let row_at = |y: u64| {
        let start = usize::try_from(y).ok()?.checked_mul(row_bytes)?;
        image.data.get(start..start.checked_add(row_bytes)?)
    };
    // RGBA rows are premultiplied first, into these.
    let rgba = image.layout == Layout::Rgba;
    let (mut upper_rgba, mut lower_rgba) = if rgba {
        (vec![0u8; row_bytes], vec![0u8; row_bytes])
    } else {
        (Vec::new(), Vec::new())
    };
    let stride = (u64::from(image.height) / u64::from(grid_h) / PAIRS_PER_BAND).max(2);
    let mut y = 0u64;
    while y <= last {
        // A pair of adjacent rows, each the other's vertical neighbour (a lone last row is its own).
        let below = (y + 1).min(last);
        let (Some(mut upper), Some(mut lower)) = (row_at(y), row_at(below)) else {
            break;
        };
        if rgba {
            premultiply(upper, &mut upper_rgba);
            premultiply(lower, &mut lower_rgba);
            (upper, lower) = (&upper_rgba, &lower_rgba);
        }
        shrinker.add(y, upper, lower);
        if below != y {
            shrinker.add(below, lower, upper);
        }
        y = y.saturating_add(stride);
    }
    shrinker.fold();
    Some(shrinker.grid)
}

/// First pixel row (or column) of grid band `index` when `size` pixels are split into `bands`.
fn band_edge(index: u32, size: u32, bands: u32) -> u64 {
    u64::from(index) * u64::from(size) / u64::from(bands.max(1))
}

struct Shrinker {
    grid: Grid,
    columns: Columns,
    channels: usize,
    image_height: u32,
    /// Grid row the column sums belong to, and the first pixel row past it.
    band: u32,
    band_end: u64,
}

impl Shrinker {
    /// Adds pixel row `y` (rows arrive in increasing order); `neighbour` is the row above or below it.
    fn add(&mut self, y: u64, row: &[u8], neighbour: &[u8]) {
        if y >= self.band_end {
            self.fold();
            while y >= self.band_end && self.band + 1 < self.grid.height {
                self.band += 1;
                self.band_end = band_edge(self.band + 1, self.image_height, self.grid.height);
            }
        }
        let columns = &mut self.columns;
        for (((sum, gradient), &value), &other) in columns
            .sum
            .iter_mut()
            .zip(columns.gradient.iter_mut())
            .zip(row)
            .zip(neighbour)
        {
            *sum += u16::from(value);
            *gradient += u16::from(value.abs_diff(other));
        }
        // Horizontal differences, each channel against the same channel of the pixel to its left.
        let channels = self.channels;
        if let (Some(gradient), Some(right)) =
            (columns.gradient.get_mut(channels..), row.get(channels..))
        {
            for ((gradient, &value), &left) in gradient.iter_mut().zip(right).zip(row) {
                *gradient += u16::from(value.abs_diff(left));
            }
        }
        columns.rows += 1;
        if columns.rows == FOLD_ROWS {
            self.fold();
        }
    }

    /// Adds the column sums into the cells of the current band and empties them.
    fn fold(&mut self) {
        let rows = std::mem::take(&mut self.columns.rows);
        let channels = self.channels;
        if rows == 0 || channels == 0 {
            return;
        }
        let columns = &mut self.columns;
        let grid = &mut self.grid;
        let Ok(pixels) = u32::try_from(columns.sum.len() / channels) else {
            return;
        };
        let base = self.band as usize * grid.width as usize;
        for gx in 0..grid.width {
            let offset = |edge: u64| {
                usize::try_from(edge)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(channels)
            };
            let start = offset(band_edge(gx, pixels, grid.width));
            let end = offset(band_edge(gx + 1, pixels, grid.width));
            let (Some(sums), Some(gradients), Some(cell)) = (
                columns.sum.get(start..end),
                columns.gradient.get(start..end),
                grid.cells.get_mut(base + gx as usize),
            ) else {
                continue;
            };
            cell.count += u64::from(rows) * ((end - start) / channels) as u64;
            for (sum_px, gradient_px) in sums
                .chunks_exact(channels)
                .zip(gradients.chunks_exact(channels))
            {
                for ((acc, acc_gradient), (&s, &g)) in cell
                    .sum
                    .iter_mut()
                    .zip(cell.gradient.iter_mut())
                    .zip(sum_px.iter().zip(gradient_px))
                {
                    *acc += u64::from(s);
                    *acc_gradient += u64::from(g);
                }
            }
        }
        columns.sum.fill(0);
        columns.gradient.fill(0);
    }
}

/// `c * a / 255` rounded: exact for all 8-bit inputs (`t` stays within 16 bits, the result within 8).
fn premultiplied(c: u8, a: u8) -> u8 {
    let t = u16::from(c) * u16::from(a) + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// RGBA row to premultiplied RGBA, alpha kept. Four pixels at a time as 16 independent byte products
/// (alpha times 255 gives alpha back), a shape the compiler vectorises.
fn premultiply(row: &[u8], out: &mut [u8]) {
    let (src, src_rest) = row.as_chunks::<16>();
    let (dst, dst_rest) = out.as_chunks_mut::<16>();
    for (s, d) in src.iter().zip(dst.iter_mut()) {
        *d = std::array::from_fn(|i| {
            let alpha = s.get(i | 3).copied().unwrap_or(0);
            let value = if i & 3 == 3 {
                255
            } else {
                s.get(i).copied().unwrap_or(0)
            };
            premultiplied(value, alpha)
        });
    }
    let (src_rest, _) = src_rest.as_chunks::<4>();
    let (dst_rest, _) = dst_rest.as_chunks_mut::<4>();
    for (&[r, g, b, a], d) in src_rest.iter().zip(dst_rest.iter_mut()) {
        *d = [
            premultiplied(r, a),
            premultiplied(g, a),
            premultiplied(b, a),
            a,
        ];
    }
}

/// Interest of every grid cell (row-major), all terms weighted by the cell's alpha coverage.
fn score(grid: &Grid, layout: Layout) -> Vec<f32> {
    let colour_channels = match layout {
        Layout::Gray => 1,
        Layout::Rgb | Layout::Rgba => 3,
    };
    let n = grid.cells.len();
    let mut coverage = Vec::with_capacity(n);
    let mut lightness = Vec::with_capacity(n);
    let mut opacity = Vec::with_capacity(n);
    let mut colour_score = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    for cell in &grid.cells {
        let stats = CellStats::of(cell, layout, colour_channels);
        coverage.push(stats.coverage);
        // Lightness as seen over black, and coverage on the same 0-100 scale: the outline of an opaque
        // object on a transparent background is an edge even where the object is black.
        lightness.push(stats.lab[0] * stats.coverage);
        opacity.push(100.0 * stats.coverage);
        colour_score.push(if layout == Layout::Gray {
            0.0
        } else {
            // Colour draws the eye where it is in focus: out-of-focus colour (a blurred background,
            // bokeh, often beige enough to pass for skin) has almost no fine detail and counts for
            // little. Skin keeps a quarter of its weight unfocused, since a face can be smooth.
            let focus = (stats.detail / FOCUS_DETAIL).min(1.0);
            SKIN_WEIGHT
                * skin(stats.rgb, stats.lab)
                * (SKIN_UNFOCUSED + (1.0 - SKIN_UNFOCUSED) * focus)
                + SATURATION_WEIGHT * saturation(stats.lab) * focus
        });
        detail.push(stats.detail);
    }
    let edges_l = laplacian(&lightness, grid.width, grid.height);
    let edges_a = laplacian(&opacity, grid.width, grid.height);
    coverage
        .iter()
        .zip(edges_l.iter().zip(&edges_a))
        .zip(colour_score.iter().zip(&detail))
        .map(|((&cov, (&el, &ea)), (&colour, &detail))| {
            cov * (EDGE_WEIGHT * (el + ea) + DETAIL_WEIGHT * detail + colour)
        })
        .collect()
}

struct CellStats {
    /// Mean colour (unpremultiplied), 0-255 per channel.
    rgb: [f32; 3],
    /// CIELAB of `rgb`.
    lab: [f32; 3],
    /// Mean alpha, 0-1; 1 for layouts without alpha, 0 for a cell no row reached.
    coverage: f32,
    /// Mean absolute difference between neighbouring pixels inside the cell, over the (premultiplied)
    /// colour channels, in L*-like units (0-100): fine texture the cell average hides.
    detail: f32,
}

impl CellStats {
    fn of(cell: &Cell, layout: Layout, colour_channels: usize) -> CellStats {
        if cell.count == 0 {
            return CellStats {
                rgb: [0.0; 3],
                lab: [0.0; 3],
                coverage: 0.0,
                detail: 0.0,
            };
        }
        let count = cell.count as f64;
        let mean = |c: usize| cell.sum.get(c).map_or(0.0, |&s| s as f64 / count);
        let [r, g, b, a] = [mean(0), mean(1), mean(2), mean(3)];
        let (rgb, coverage) = match layout {
            Layout::Gray => ([r, r, r], 1.0),
            Layout::Rgb => ([r, g, b], 1.0),
            Layout::Rgba if a > 0.0 => ([r, g, b].map(|c| (c * 255.0 / a).min(255.0)), a / 255.0),
            Layout::Rgba => ([0.0; 3], 0.0),
        };
        // Mean absolute difference with a neighbour (the average of the horizontal and the vertical
        // one), over the colour channels.
        let gradient = (0..colour_channels)
            .map(|c| cell.gradient.get(c).map_or(0.0, |&g| g as f64 / count))
            .sum::<f64>()
            / (2 * colour_channels.max(1)) as f64;
        let rgb = rgb.map(|c| c as f32);
        CellStats {
            rgb,
            lab: srgb_to_lab(rgb),
            coverage: coverage as f32,
            detail: (gradient * 100.0 / 255.0) as f32,
        }
    }
}

/// sRGB (0-255, gamma encoded) to CIELAB under D65.
fn srgb_to_lab([r, g, b]: [f32; 3]) -> [f32; 3] {
    let linear = |c: f32| {
        let c = (c / 255.0).clamp(0.0, 1.0);
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f32| {
        if t > 216.0 / 24_389.0 {
            t.cbrt()
        } else {
            (24_389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// 0-100: how close the colour's direction in sRGB is to skin (smartcrop.js' measure), for colours
/// light enough and chromatic enough to be skin.
fn skin(rgb: [f32; 3], [l, a, b]: [f32; 3]) -> f32 {
    if l < SKIN_MIN_LIGHTNESS || a.hypot(b) < SKIN_MIN_CHROMA {
        return 0.0;
    }
    let norm = rgb.iter().map(|c| c * c).sum::<f32>().sqrt();
    if norm <= 0.0 {
        return 0.0;
    }
    let distance = rgb
        .iter()
        .zip(SKIN_DIRECTION)
        .map(|(c, s)| (c / norm - s).powi(2))
        .sum::<f32>()
        .sqrt();
    (100.0 * (1.0 - distance / SKIN_DISTANCE)).max(0.0)
}

/// 0-100: chroma above `SATURATION_FROM`, for colours neither near black nor near white.
fn saturation([l, a, b]: [f32; 3]) -> f32 {
    if !(SATURATION_MIN_LIGHTNESS..=SATURATION_MAX_LIGHTNESS).contains(&l) {
        return 0.0;
    }
    (100.0 * (a.hypot(b) - SATURATION_FROM) / SATURATION_SPAN).clamp(0.0, 100.0)
}

/// Absolute 4-neighbour Laplacian, the border replicated (so a flat map gives zero everywhere).
fn laplacian(values: &[f32], width: u32, height: u32) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let at = |x: usize, y: usize| values.get(y * w + x).copied().unwrap_or(0.0);
    let mut out = Vec::with_capacity(values.len());
    for y in 0..h {
        for x in 0..w {
            let centre = at(x, y);
            let neighbours = at(x.saturating_sub(1), y)
                + at((x + 1).min(w - 1), y)
                + at(x, y.saturating_sub(1))
                + at(x, (y + 1).min(h - 1));
            out.push((4.0 * centre - neighbours).abs());
        }
    }
    out
}

/// Separable Gaussian blur; at the borders the kernel is cut and renormalised, so a flat map stays flat
/// and content at an edge of the image is neither favoured nor penalised.
fn gaussian_blur(values: &[f32], width: u32, height: u32, sigma: f64) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    // Beyond the grid's own size the tail of the kernel never lands on a cell.
    let radius = ((3.0 * sigma).ceil() as usize).min(w.max(h));
    let kernel: Vec<f32> = (0..=radius)
        .map(|k| (-((k * k) as f64) / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let pass = |src: &[f32], len: usize, lines: usize, index: &dyn Fn(usize, usize) -> usize| {
        let mut dst = vec![0.0f32; src.len()];
        for line in 0..lines {
            for i in 0..len {
                let (mut total, mut weight) = (0.0f32, 0.0f32);
                for j in i.saturating_sub(radius)..(i + radius + 1).min(len) {
                    let k = kernel.get(i.abs_diff(j)).copied().unwrap_or(0.0);
                    total += k * src.get(index(line, j)).copied().unwrap_or(0.0);
                    weight += k;
                }
                if let Some(out) = dst.get_mut(index(line, i)) {
                    *out = if weight > 0.0 { total / weight } else { 0.0 };
                }
            }
        }
        dst
    };
    let horizontal = pass(values, w, h, &|y, x| y * w + x);
    pass(&horizontal, h, w, &|x, y| y * w + x)
}

/// Cell of the highest value; among values within a hair of it, the one nearest the centre. `None`
/// when nothing scores at all or everything scores the same (a uniformly textured or coloured image),
/// where no position is better than the centre.
fn peak(values: &[f32], width: u32, height: u32) -> Option<(u32, u32)> {
    let max = values.iter().copied().fold(0.0f32, f32::max);
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    if max <= 1e-3 || min >= max * (1.0 - 1e-5) {
        return None;
    }
    let (w, h) = (f64::from(width), f64::from(height));
    let off_centre = |x: u32, y: u32| {
        let dx = (f64::from(x) + 0.5) / w - 0.5;
        let dy = (f64::from(y) + 0.5) / h - 0.5;
        dx * dx + dy * dy
    };
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .zip(values)
        .filter(|&(_, &v)| v >= max * (1.0 - 1e-5))
        .map(|(cell, _)| cell)
        .min_by(|&(ax, ay), &(bx, by)| off_centre(ax, ay).total_cmp(&off_centre(bx, by)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(
        width: u32,
        height: u32,
        layout: Layout,
        mut pixel: impl FnMut(u32, u32) -> Vec<u8>,
    ) -> Pixels {
        let mut data = Vec::with_capacity(width as usize * height as usize * layout.channels());
        for y in 0..height {
            for x in 0..width {
                let p = pixel(x, y);
                assert_eq!(p.len(), layout.channels());
                data.extend(p);
            }
        }
        Pixels {
            width,
            height,
            layout,
            data,
        }
    }

    fn inside(rect: (u32, u32, u32, u32), x: u32, y: u32) -> bool {
        let (rx, ry, rw, rh) = rect;
        (rx..rx + rw).contains(&x) && (ry..ry + rh).contains(&y)
    }

    /// Asserts that the window at `at` of size `crop` covers the whole of `patch` (x, y, w, h).
    fn assert_covers(at: (u32, u32), crop: (u32, u32), patch: (u32, u32, u32, u32)) {
        let (x, y) = at;
        let (px, py, pw, ph) = patch;
        assert!(
            x <= px && px + pw <= x + crop.0 && y <= py && py + ph <= y + crop.1,
            "window {crop:?} at {at:?} misses patch {patch:?}"
        );
    }

    /// A small deterministic generator, for noise and for the property test.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }
        fn byte(&mut self) -> u8 {
            (self.next() & 0xff) as u8
        }
    }

    #[test]
    fn flat_image_gives_a_centred_window() {
        for layout in [Layout::Gray, Layout::Rgb, Layout::Rgba] {
            let flat = image(300, 200, layout, |_, _| {
                [120, 60, 200, 255][..layout.channels()].to_vec()
            });
            assert_eq!(attention_offset(&flat, 100, 100), (100, 50), "{layout:?}");
            assert_eq!(attention_offset(&flat, 300, 50), (0, 75), "{layout:?}");
        }
    }

    #[test]
    fn crop_of_the_whole_image_is_at_the_origin() {
        let noisy = {
            let mut rng = Lcg(7);
            image(97, 61, Layout::Rgb, |_, _| {
                vec![rng.byte(), rng.byte(), rng.byte()]
            })
        };
        assert_eq!(attention_offset(&noisy, 97, 61), (0, 0));
        assert_eq!(attention_offset(&noisy, 500, 500), (0, 0));
    }

    #[test]
    fn an_out_of_focus_colourful_background_does_not_beat_a_sharp_subject() {
        // Left: a sharp grey texture (the subject). Right: a smooth, saturated blue blur (bokeh).
        let subject = (20, 20, 160, 160);
        let img = image(900, 200, Layout::Rgb, |x, y| {
            if inside(subject, x, y) {
                let v = if (x + y) % 2 == 0 { 120 } else { 136 };
                vec![v, v, v]
            } else if x >= 600 {
                // A slow gradient: colourful, but no detail at all.
                vec![10, 40, (225 + (x - 600) / 10) as u8]
            } else {
                vec![128, 128, 128]
            }
        });
        let at = attention_offset(&img, 200, 200);
        assert_covers(at, (200, 200), subject);
    }

    #[test]
    fn saturated_patch_near_an_edge_draws_the_window() {
        // Red 60x60 patch near the right edge of a 600x400 grey picture; a 200x400 window must hold it.
        let patch = (520, 170, 60, 60);
        let img = image(600, 400, Layout::Rgb, |x, y| {
            if inside(patch, x, y) {
                vec![220, 30, 30]
            } else {
                vec![128, 128, 128]
            }
        });
        let at = attention_offset(&img, 200, 400);
        assert_covers(at, (200, 400), patch);
        // And vertically: near the top of a tall picture.
        let patch = (40, 10, 50, 50);
        let tall = image(200, 900, Layout::Rgb, |x, y| {
            if inside(patch, x, y) {
                vec![20, 60, 230]
            } else {
                vec![90, 90, 90]
            }
        });
        let at = attention_offset(&tall, 200, 200);
        assert_covers(at, (200, 200), patch);
    }

    #[test]
    fn skin_beats_a_grey_region_of_more_contrast() {
        // Two blobs of the same size, mirror images of each other about the centre and aligned to the
        // grid's cells: one skin-coloured, one neutral grey a little lighter (L* + 5), so the grey one has
        // the stronger edges and in-cell detail against the background. Skin chroma (~29) is below the
        // saturation threshold, so only the skin term can make the skin blob win.
        let skin_colour = [224u8, 172, 138];
        let target = srgb_to_lab(skin_colour.map(f32::from))[0] + 5.0;
        let grey = (0..=255u8)
            .min_by(|&a, &b| {
                let la = (srgb_to_lab([f32::from(a); 3])[0] - target).abs();
                let lb = (srgb_to_lab([f32::from(b); 3])[0] - target).abs();
                la.total_cmp(&lb)
            })
            .unwrap();
        // 800 px on 32 cells: 25 px per cell; 100..220 mirrors to 580..700.
        let grey_blob = (100, 150, 120, 120);
        let skin_blob = (580, 150, 120, 120);
        let img = image(800, 420, Layout::Rgb, |x, y| {
            if inside(skin_blob, x, y) {
                skin_colour.to_vec()
            } else if inside(grey_blob, x, y) {
                vec![grey; 3]
            } else {
                vec![70, 70, 70]
            }
        });
        let at = attention_offset(&img, 300, 420);
        assert_covers(at, (300, 420), skin_blob);
    }

    #[test]
    fn fine_texture_draws_the_window_even_with_the_background_mean() {
        // A 1-px checkerboard of 28/228 averages to the background's 128: invisible on the grid, found by
        // the in-cell detail.
        let patch = (30, 250, 100, 100);
        let img = image(640, 400, Layout::Gray, |x, y| {
            if inside(patch, x, y) {
                vec![if (x + y) % 2 == 0 { 28 } else { 228 }]
            } else {
                vec![128]
            }
        });
        let at = attention_offset(&img, 200, 200);
        assert_covers(at, (200, 200), patch);
    }

    #[test]
    fn grey_image_scores_by_edges() {
        let patch = (700, 20, 80, 80);
        let img = image(800, 600, Layout::Gray, |x, y| {
            if inside(patch, x, y) {
                vec![240]
            } else {
                vec![40]
            }
        });
        let at = attention_offset(&img, 300, 300);
        assert_covers(at, (300, 300), patch);
    }

    #[test]
    fn transparent_area_is_uninteresting_whatever_it_hides() {
        // The only visible content is an opaque grey patch in the bottom-left corner; everything else is
        // fully transparent over loud, saturated noise.
        let patch = (0, 330, 70, 70);
        let mut rng = Lcg(42);
        let img = image(500, 400, Layout::Rgba, |x, y| {
            if inside(patch, x, y) {
                vec![90, 90, 90, 255]
            } else {
                vec![rng.byte(), 0, rng.byte(), 0]
            }
        });
        let at = attention_offset(&img, 150, 150);
        assert_covers(at, (150, 150), patch);
        // Also when the patch is black: its outline against transparency still counts.
        let img = image(500, 400, Layout::Rgba, |x, y| {
            if inside(patch, x, y) {
                vec![0, 0, 0, 255]
            } else {
                vec![255, 0, 255, 0]
            }
        });
        assert_covers(attention_offset(&img, 150, 150), (150, 150), patch);
    }

    #[test]
    fn window_stays_in_bounds_for_any_size_layout_and_crop() {
        let mut rng = Lcg(1);
        let mut sizes: Vec<(u32, u32)> = Vec::new();
        for w in [1, 2, 3, 5, 31, 32, 33, 64, 65, 100] {
            for h in [1, 2, 7, 32, 33, 47] {
                sizes.push((w, h));
            }
        }
        sizes.extend([(10_000, 3), (3, 10_000), (10_000, 1), (1, 4_000), (257, 1)]);
        for &(w, h) in &sizes {
            for layout in [Layout::Gray, Layout::Rgb, Layout::Rgba] {
                // Noise, so the peak lands anywhere.
                let img = image(w, h, layout, |_, _| {
                    (0..layout.channels()).map(|_| rng.byte()).collect()
                });
                let crops = [
                    (1, 1),
                    (w, h),
                    (w / 2, h / 3),
                    (1, h),
                    (w, 1),
                    (0, 0),
                    (w + 5, h.saturating_mul(2)),
                    (rng.next() % w + 1, rng.next() % h + 1),
                ];
                for (cw, ch) in crops {
                    let (x, y) = attention_offset(&img, cw, ch);
                    let (cw, ch) = (cw.clamp(1, w), ch.clamp(1, h));
                    assert!(
                        x + cw <= w && y + ch <= h,
                        "{w}x{h} {layout:?} crop {cw}x{ch} at ({x}, {y})"
                    );
                    if (cw, ch) == (w, h) {
                        assert_eq!((x, y), (0, 0));
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_buffers_do_not_panic() {
        let short = Pixels {
            width: 100,
            height: 100,
            layout: Layout::Rgb,
            data: vec![200; 100 * 3 * 10 + 7],
        };
        let (x, y) = attention_offset(&short, 10, 10);
        assert!(x <= 90 && y <= 90);
        let empty = Pixels {
            width: 50,
            height: 40,
            layout: Layout::Rgba,
            data: Vec::new(),
        };
        assert_eq!(attention_offset(&empty, 10, 10), (20, 15));
        let zero = Pixels {
            width: 0,
            height: 0,
            layout: Layout::Gray,
            data: Vec::new(),
        };
        assert_eq!(attention_offset(&zero, 10, 10), (0, 0));
    }

    #[test]
    fn premultiply_rounds_like_division() {
        // Five pixels: four through the 16-byte path, one through the per-pixel remainder.
        for c in 0..=255u8 {
            for a in 0..=255u8 {
                let row = [c, 255 - c, c / 2, a].repeat(5);
                let mut out = [0u8; 20];
                premultiply(&row, &mut out);
                let mul = |v: u8| ((u32::from(v) * u32::from(a)) as f64 / 255.0).round() as u8;
                let expected = [mul(c), mul(255 - c), mul(c / 2), a].repeat(5);
                assert_eq!(out.as_slice(), expected.as_slice(), "{c} {a}");
            }
        }
    }

    #[test]
    fn sampled_rows_of_a_tall_original_still_find_the_patch() {
        // 4000 rows: bands of 125 rows, read at pairs 15 rows apart.
        let patch = (60, 3700, 80, 100);
        let img = image(200, 4000, Layout::Rgb, |x, y| {
            if inside(patch, x, y) {
                vec![240, 200, 0]
            } else {
                vec![30, 30, 30]
            }
        });
        assert_covers(attention_offset(&img, 200, 600), (200, 600), patch);
    }
}
