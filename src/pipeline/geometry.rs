//! Where the output's pixels come from: given the displayed size of an original and the requested box,
//! which region of the original is kept, what size it is resized to, and whether it is padded onto a
//! canvas. sharp's vocabulary: `inside` (within the box, aspect kept), `cover` (fills the box, the
//! overflow cropped by gravity), `contain` (within the box, then padded to it), `fill` (stretched).
//!
//! Never upscales unless told to: a box larger than the original gives the largest result of the same
//! shape that needs no upscaling, and says so (`reduced`). Pure arithmetic, no pixels.

/// How the image meets a box of both width and height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Within the box, keeping the aspect ratio (the default).
    #[default]
    Inside,
    /// Fills the box exactly, keeping the aspect ratio; the overflow is cropped by gravity.
    Cover,
    /// Within the box, keeping the aspect ratio, then padded to exactly the box.
    Contain,
    /// Stretched to the box.
    Fill,
}

impl Fit {
    pub const NAMES: &[(&str, Fit)] = &[
        ("inside", Fit::Inside),
        ("cover", Fit::Cover),
        ("contain", Fit::Contain),
        ("fill", Fit::Fill),
    ];

    pub fn from_name(name: &str) -> Option<Fit> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, f)| f)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("inside", |&(n, _)| n)
    }
}

/// Which part of the image a `cover` crop keeps, or where `contain` places the image on its canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    #[default]
    Centre,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// The most interesting region (saliency), for `cover` only.
    Smart,
}

impl Gravity {
    pub const NAMES: &[(&str, Gravity)] = &[
        ("centre", Gravity::Centre),
        ("north", Gravity::North),
        ("south", Gravity::South),
        ("east", Gravity::East),
        ("west", Gravity::West),
        ("northeast", Gravity::NorthEast),
        ("northwest", Gravity::NorthWest),
        ("southeast", Gravity::SouthEast),
        ("southwest", Gravity::SouthWest),
        ("smart", Gravity::Smart),
    ];

    pub fn from_name(name: &str) -> Option<Gravity> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, g)| g)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("centre", |&(n, _)| n)
    }

    /// Horizontal and vertical placement of a smaller span in a larger one: 0 start, 0.5 middle, 1 end.
    /// `Smart` places in the middle here; its real position comes from the pixels.
    fn anchor(self) -> (f64, f64) {
        match self {
            Gravity::Centre | Gravity::Smart => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::South => (0.5, 1.0),
            Gravity::East => (1.0, 0.5),
            Gravity::West => (0.0, 0.5),
            Gravity::NorthEast => (1.0, 0.0),
            Gravity::NorthWest => (0.0, 0.0),
            Gravity::SouthEast => (1.0, 1.0),
            Gravity::SouthWest => (0.0, 1.0),
        }
    }
}

/// The requested box and how to meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Target {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub gravity: Gravity,
    pub allow_upscale: bool,
}

/// A rectangle in an image's pixel space (fractional, as resamplers take it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Region {
    /// This region with its origin at (`x`, `y`), moved as little as needed to lie within a
    /// `bound_w` x `bound_h` image (the region is never larger than the image).
    pub fn placed_at(self, x: f64, y: f64, bound_w: f64, bound_h: f64) -> Region {
        Region {
            x: x.min(bound_w - self.width).max(0.0),
            y: y.min(bound_h - self.height).max(0.0),
            ..self
        }
    }
}

/// A canvas the resized image is placed on (`contain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
}

/// How an original of a given displayed size becomes the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Region of the displayed original that is kept.
    pub region: Region,
    /// Whether the region's position is to be chosen by saliency (its size is final).
    pub smart: bool,
    /// Size the region is resized to.
    pub resized: (u32, u32),
    /// Padding canvas, for `contain`.
    pub canvas: Option<Canvas>,
    /// Whether the result was made smaller than asked, to avoid upscaling.
    pub reduced: bool,
}

impl Plan {
    /// Dimensions of the output image.
    pub fn output(&self) -> (u32, u32) {
        match self.canvas {
            Some(c) => (c.width, c.height),
            None => self.resized,
        }
    }

    /// Size of the whole displayed original at the scale the region is resized with: what a decoder
    /// must deliver at least.
    pub fn scaled_original(&self, display_w: u32, display_h: u32) -> (u32, u32) {
        let sx = f64::from(self.resized.0) / self.region.width;
        let sy = f64::from(self.resized.1) / self.region.height;
        (
            px((f64::from(display_w) * sx).ceil()),
            px((f64::from(display_h) * sy).ceil()),
        )
    }
}

/// Rounds to a pixel count of at least 1.
fn px(v: f64) -> u32 {
    if v.is_nan() || v < 1.0 {
        1
    } else if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v.round() as u32
    }
}

pub fn plan(display_w: u32, display_h: u32, target: &Target) -> Plan {
    let (sw, sh) = (f64::from(display_w.max(1)), f64::from(display_h.max(1)));
    let whole = Region {
        x: 0.0,
        y: 0.0,
        width: sw,
        height: sh,
    };
    let simple = |scale: f64, reduced: bool| Plan {
        region: whole,
        smart: false,
        resized: (px(sw * scale), px(sh * scale)),
        canvas: None,
        reduced,
    };
    let (w, h) = match (target.width, target.height) {
        (None, None) => return simple(1.0, false),
        (Some(w), None) => {
            let scale = f64::from(w) / sw;
            return if scale > 1.0 && !target.allow_upscale {
                simple(1.0, true)
            } else {
                let mut plan = simple(scale, false);
                plan.resized.0 = w;
                plan
            };
        }
        (None, Some(h)) => {
            let scale = f64::from(h) / sh;
            return if scale > 1.0 && !target.allow_upscale {
                simple(1.0, true)
            } else {
                let mut plan = simple(scale, false);
                plan.resized.1 = h;
                plan
            };
        }
        (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
    };
    let upscale_ok = target.allow_upscale;
    match target.fit {
        Fit::Inside => {
            let scale = (w / sw).min(h / sh);
            if scale > 1.0 && !upscale_ok {
                return simple(1.0, true);
            }
            let mut plan = simple(scale, false);
            // The binding side is exact, never off by a rounding.
            if w / sw <= h / sh {
                plan.resized.0 = px(w);
            } else {
                plan.resized.1 = px(h);
            }
            plan
        }
        Fit::Fill => {
            let k = if upscale_ok {
                1.0
            } else {
                (sw / w).min(sh / h).min(1.0)
            };
            Plan {
                region: whole,
                smart: false,
                resized: (px(w * k), px(h * k)),
                canvas: None,
                reduced: k < 1.0,
            }
        }
        Fit::Cover => {
            let scale = (w / sw).max(h / sh);
            let (out_w, out_h, scale, reduced) = if scale > 1.0 && !upscale_ok {
                // The largest box of the asked shape inside the original, at its own resolution.
                let k = (sw / w).min(sh / h);
                (px(w * k), px(h * k), 1.0, true)
            } else {
                (px(w), px(h), scale, false)
            };
            let (cw, ch) = (
                (f64::from(out_w) / scale).min(sw),
                (f64::from(out_h) / scale).min(sh),
            );
            let (ax, ay) = target.gravity.anchor();
            Plan {
                region: Region {
                    x: (sw - cw) * ax,
                    y: (sh - ch) * ay,
                    width: cw,
                    height: ch,
                },
                smart: target.gravity == Gravity::Smart,
                resized: (out_w, out_h),
                canvas: None,
                reduced,
            }
        }
        Fit::Contain => {
            let scale = (w / sw).min(h / sh);
            let (scale, canvas_w, canvas_h, reduced) = if scale > 1.0 && !upscale_ok {
                // The smallest box of the asked shape that holds the original at its own resolution.
                let k = (sw / w).max(sh / h);
                (
                    1.0,
                    px(w * k).max(display_w),
                    px(h * k).max(display_h),
                    true,
                )
            } else {
                (scale, px(w), px(h), false)
            };
            let resized = (px(sw * scale).min(canvas_w), px(sh * scale).min(canvas_h));
            let (ax, ay) = target.gravity.anchor();
            let offset = |free: u32, a: f64| (f64::from(free) * a).floor() as u32;
            Plan {
                region: whole,
                smart: false,
                resized,
                canvas: Some(Canvas {
                    width: canvas_w,
                    height: canvas_h,
                    x: offset(canvas_w - resized.0, ax),
                    y: offset(canvas_h - resized.1, ay),
                }),
                reduced,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(w: Option<u32>, h: Option<u32>, fit: Fit) -> Target {
        Target {
            width: w,
            height: h,
            fit,
            ..Target::default()
        }
    }

    #[test]
    fn one_side_keeps_the_aspect_ratio() {
        let p = plan(6028, 3391, &target(Some(600), None, Fit::Inside));
        assert_eq!(p.output(), (600, 338));
        let p = plan(6028, 3391, &target(None, Some(338), Fit::Cover));
        assert_eq!(p.output(), (601, 338));
        assert!(!p.reduced);
    }

    #[test]
    fn a_width_alone_rounds_the_height_to_the_nearest_pixel() {
        let height = |w, h, to| plan(w, h, &target(Some(to), None, Fit::Inside)).output().1;
        assert_eq!(height(6028, 3391, 600), 338);
        assert_eq!(height(3640, 2400, 300), 198);
        assert_eq!(height(1000, 1, 10), 1);
        assert_eq!(height(10, 1000, 10), 1000);
    }

    #[test]
    fn regions_are_placed_inside_the_image() {
        let r = Region {
            x: 0.0,
            y: 0.0,
            width: 40.0,
            height: 30.0,
        };
        assert_eq!(r.placed_at(70.0, -5.0, 100.0, 50.0).x, 60.0);
        assert_eq!(r.placed_at(70.0, -5.0, 100.0, 50.0).y, 0.0);
        assert_eq!(r.placed_at(10.5, 12.0, 100.0, 50.0).x, 10.5);
        assert_eq!(r.placed_at(10.5, 12.0, 100.0, 50.0).width, 40.0);
    }

    #[test]
    fn no_box_is_the_original_size() {
        let p = plan(640, 480, &Target::default());
        assert_eq!((p.output(), p.reduced), ((640, 480), false));
    }

    #[test]
    fn inside_fits_the_box_exactly_on_its_binding_side() {
        let p = plan(1000, 500, &target(Some(600), Some(600), Fit::Inside));
        assert_eq!(p.output(), (600, 300));
        let p = plan(500, 1000, &target(Some(600), Some(600), Fit::Inside));
        assert_eq!(p.output(), (300, 600));
    }

    #[test]
    fn cover_crops_the_overflow_by_gravity() {
        let t = |g| Target {
            gravity: g,
            ..target(Some(400), Some(400), Fit::Cover)
        };
        let p = plan(1600, 800, &t(Gravity::Centre));
        assert_eq!(p.output(), (400, 400));
        assert_eq!(
            p.region,
            Region {
                x: 400.0,
                y: 0.0,
                width: 800.0,
                height: 800.0
            }
        );
        assert_eq!(plan(1600, 800, &t(Gravity::West)).region.x, 0.0);
        assert_eq!(plan(1600, 800, &t(Gravity::East)).region.x, 800.0);
        assert_eq!(plan(800, 1600, &t(Gravity::South)).region.y, 800.0);
        assert_eq!(plan(800, 1600, &t(Gravity::NorthEast)).region.y, 0.0);
        assert!(plan(1600, 800, &t(Gravity::Smart)).smart);
    }

    #[test]
    fn contain_pads_to_the_box() {
        let t = Target {
            gravity: Gravity::Centre,
            ..target(Some(400), Some(400), Fit::Contain)
        };
        let p = plan(1600, 800, &t);
        assert_eq!(p.resized, (400, 200));
        assert_eq!(
            p.canvas,
            Some(Canvas {
                width: 400,
                height: 400,
                x: 0,
                y: 100
            })
        );
        let north = plan(
            1600,
            800,
            &Target {
                gravity: Gravity::North,
                ..t
            },
        );
        assert_eq!(north.canvas.map(|c| c.y), Some(0));
    }

    #[test]
    fn fill_stretches() {
        let p = plan(1600, 800, &target(Some(300), Some(300), Fit::Fill));
        assert_eq!(p.output(), (300, 300));
        assert_eq!(p.region.width, 1600.0);
    }

    #[test]
    fn small_originals_are_never_upscaled_and_keep_the_asked_shape() {
        // A 400x300 original asked for 800x800.
        let (w, h) = (Some(800), Some(800));
        let inside = plan(400, 300, &target(w, h, Fit::Inside));
        assert_eq!((inside.output(), inside.reduced), ((400, 300), true));
        let cover = plan(400, 300, &target(w, h, Fit::Cover));
        assert_eq!((cover.output(), cover.reduced), ((300, 300), true));
        assert_eq!(cover.region.width, 300.0);
        let contain = plan(400, 300, &target(w, h, Fit::Contain));
        assert_eq!((contain.output(), contain.reduced), ((400, 400), true));
        assert_eq!(contain.resized, (400, 300));
        let fill = plan(400, 300, &target(w, h, Fit::Fill));
        assert_eq!((fill.output(), fill.reduced), ((300, 300), true));
        let wide = plan(400, 300, &target(Some(1000), None, Fit::Inside));
        assert_eq!((wide.output(), wide.reduced), ((400, 300), true));
        // Only when the box really is larger.
        let fits = plan(400, 300, &target(Some(400), Some(300), Fit::Cover));
        assert_eq!((fits.output(), fits.reduced), ((400, 300), false));
    }

    #[test]
    fn upscaling_when_allowed() {
        let t = Target {
            allow_upscale: true,
            ..target(Some(800), Some(800), Fit::Cover)
        };
        let p = plan(400, 300, &t);
        assert_eq!((p.output(), p.reduced), ((800, 800), false));
        assert_eq!(p.region.width, 300.0);
    }

    #[test]
    fn extreme_shapes_never_reach_zero() {
        for (sw, sh) in [(1, 1), (10000, 1), (1, 10000), (3, 7)] {
            for fit in [Fit::Inside, Fit::Cover, Fit::Contain, Fit::Fill] {
                for (w, h) in [(Some(1), Some(1)), (Some(4096), Some(1)), (Some(1), None)] {
                    let p = plan(sw, sh, &target(w, h, fit));
                    let (ow, oh) = p.output();
                    assert!(ow >= 1 && oh >= 1, "{sw}x{sh} {fit:?} {w:?}x{h:?}");
                    assert!(p.region.width > 0.0 && p.region.height > 0.0);
                    assert!(p.region.x + p.region.width <= f64::from(sw) + 1e-9);
                    if let Some(c) = p.canvas {
                        assert!(c.x + p.resized.0 <= c.width && c.y + p.resized.1 <= c.height);
                    }
                }
            }
        }
    }
}
