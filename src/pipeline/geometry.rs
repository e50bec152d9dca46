//! Output geometry: imgproxy's size arithmetic (`processing/prepare.go`,
//! `calc_position.go`) for the five resize types, `enlarge`, `extend`,
//! `extend_aspect_ratio`, `min-width`/`min-height`, `zoom`, `dpr`,
//! `padding`, `crop` and gravity, and the orientation `rotate` and `flip`
//! make with EXIF's. Pure integer/float work on dimensions, so it is
//! computed before any pixel is decoded and drives shrink-on-load.

use crate::error::Error;
use crate::request::options::{Gravity, GravityType, Options, ResizingType};

/// What to do to an (oriented) source of a known size.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Crop applied to the source before scaling: size and gravity.
    pub pre_crop: Option<(u32, u32, Gravity)>,
    /// Size the (pre-cropped) source is scaled to.
    pub scaled: (u32, u32),
    /// Crop applied after scaling: size (each ≤ `scaled`) and gravity.
    pub result_crop: Option<(u32, u32, Gravity)>,
    /// The canvas the image is placed on (`extend`, `extend_aspect_ratio`,
    /// `padding`).
    pub extend: Option<Extend>,
    /// The final width and height.
    pub output: (u32, u32),
    /// Scale factor from source pixels to output pixels (largest axis); the
    /// decoder may shrink on load down to this.
    pub scale: f64,
    /// The effective device pixel ratio, which scales gravity offsets.
    pub dpr: f64,
}

/// A canvas around the result: `size`, with the image placed on it by
/// `gravity`, then `padding` (top, right, bottom, left) around that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extend {
    pub size: (u32, u32),
    pub gravity: Gravity,
    pub padding: [u32; 4],
}

impl Extend {
    /// The whole canvas, padding included; wide enough not to overflow,
    /// since the padding comes from the URL ([`compute`] checks it).
    pub fn outer(&self) -> (u64, u64) {
        let [top, right, bottom, left] = self.padding.map(u64::from);
        (
            u64::from(self.size.0) + left + right,
            u64::from(self.size.1) + top + bottom,
        )
    }

    /// Where an image of `inner` size goes on the canvas.
    pub fn position(&self, inner: (u32, u32), dpr: f64) -> (u32, u32) {
        let (x, y) = position(self.size, inner, &self.gravity, dpr);
        (x + self.padding[3], y + self.padding[0])
    }
}

/// The EXIF orientation (1-8) that shows the source as EXIF's `exif`, then
/// `rotate` (clockwise) and `flip` ask, as imgproxy applies them: one
/// transform, so orienting, cropping and resampling stay one pass.
pub fn orientation(exif: u8, o: &Options) -> u8 {
    // EXIF as (clockwise quarter turns, then a horizontal mirror).
    const TABLE: [(u32, bool); 8] = [
        (0, false),
        (0, true),
        (2, false),
        (2, true),
        (1, true),
        (1, false),
        (3, true),
        (3, false),
    ];
    let (mut turns, mut mirror) = TABLE[(exif.clamp(1, 8) - 1) as usize];
    // A turn after a mirror is the opposite turn before it.
    let q = o.rotate / 90;
    turns = (if mirror { turns + 4 - q } else { turns + q }) % 4;
    if o.flip.0 {
        mirror = !mirror;
    }
    // A vertical flip is a half turn and a horizontal one.
    if o.flip.1 {
        turns = (turns + 2) % 4;
        mirror = !mirror;
    }
    let index = TABLE
        .iter()
        .position(|&t| t == (turns, mirror))
        .unwrap_or(0);
    index as u8 + 1
}

fn round(a: f64) -> i64 {
    a.round() as i64
}

fn scale_dim(a: i64, scale: f64) -> i64 {
    if a == 0 {
        0
    } else {
        round(a as f64 * scale)
    }
}

/// Scales a padding, rounding halves to even (imgproxy's `ScaleToEven`).
fn scale_dim_even(a: i64, scale: f64) -> u32 {
    (a as f64 * scale)
        .round_ties_even()
        .clamp(0.0, u32::MAX as f64) as u32
}

fn min_non_zero(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

fn crop_size(orig: i64, crop: f64) -> i64 {
    if crop == 0.0 {
        0
    } else if crop >= 1.0 {
        crop as i64
    } else {
        scale_dim(orig, crop).max(1)
    }
}

/// Computes the geometry for a source of `src_w`×`src_h` (after EXIF
/// orientation). Refuses results larger than `max_dim` on either side.
pub fn compute(src_w: u32, src_h: u32, o: &Options, max_dim: u32) -> Result<Geometry, Error> {
    let (sw, sh) = (src_w.max(1) as i64, src_h.max(1) as i64);

    let crop_w = crop_size(sw, o.crop_width);
    let crop_h = crop_size(sh, o.crop_height);
    let w_to_scale = min_non_zero(crop_w, sw);
    let h_to_scale = min_non_zero(crop_h, sh);
    let pre_crop = (w_to_scale < sw || h_to_scale < sh).then(|| {
        (
            w_to_scale as u32,
            h_to_scale as u32,
            o.crop_gravity.unwrap_or(o.gravity),
        )
    });

    // calcScale
    let (src_wf, src_hf) = (w_to_scale as f64, h_to_scale as f64);
    let dst_w = if o.width == 0 { src_wf } else { o.width as f64 };
    let dst_h = if o.height == 0 {
        src_hf
    } else {
        o.height as f64
    };
    let mut wshrink = if dst_w != src_wf { src_wf / dst_w } else { 1.0 };
    let mut hshrink = if dst_h != src_hf { src_hf / dst_h } else { 1.0 };

    if wshrink != 1.0 || hshrink != 1.0 {
        let mut rt = o.resizing_type;
        if rt == ResizingType::Auto {
            let same_orientation = (src_wf - src_hf >= 0.0) == (dst_w - dst_h >= 0.0);
            rt = if same_orientation {
                ResizingType::Fill
            } else {
                ResizingType::Fit
            };
        }
        if o.width == 0 && rt != ResizingType::Force {
            wshrink = hshrink;
        } else if o.height == 0 && rt != ResizingType::Force {
            hshrink = wshrink;
        } else if rt == ResizingType::Fit {
            wshrink = wshrink.max(hshrink);
            hshrink = wshrink;
        } else if matches!(rt, ResizingType::Fill | ResizingType::FillDown) {
            wshrink = wshrink.min(hshrink);
            hshrink = wshrink;
        }
    }
    wshrink /= o.zoom.0;
    hshrink /= o.zoom.1;

    let mut dpr_scale = o.dpr;
    if !o.enlarge {
        let min_shrink = wshrink.min(hshrink);
        if min_shrink < 1.0 {
            wshrink /= min_shrink;
            hshrink /= min_shrink;
            if !o.extend {
                dpr_scale /= min_shrink;
            }
        }
        dpr_scale = dpr_scale.min(wshrink.min(hshrink));
    }
    // A minimum side undoes enough of the shrink on its axis, and as much
    // on the other.
    if o.min_width > 0 {
        let min_shrink = src_wf / o.min_width as f64;
        if min_shrink < wshrink {
            hshrink /= wshrink / min_shrink;
            wshrink = min_shrink;
        }
    }
    if o.min_height > 0 {
        let min_shrink = src_hf / o.min_height as f64;
        if min_shrink < hshrink {
            wshrink /= hshrink / min_shrink;
            hshrink = min_shrink;
        }
    }
    wshrink /= dpr_scale;
    hshrink /= dpr_scale;
    wshrink = wshrink.min(src_wf);
    hshrink = hshrink.min(src_hf);
    let (wscale, hscale) = (1.0 / wshrink, 1.0 / hshrink);

    // calcSizes
    let target_w = scale_dim(o.width as i64, dpr_scale * o.zoom.0);
    let target_h = scale_dim(o.height as i64, dpr_scale * o.zoom.1);
    let scaled_w = scale_dim(w_to_scale, wscale).max(1);
    let scaled_h = scale_dim(h_to_scale, hscale).max(1);

    let (mut rc_w, mut rc_h) = (target_w, target_h);
    if o.resizing_type == ResizingType::FillDown && !o.enlarge && target_w > 0 && target_h > 0 {
        let diff_w = target_w as f64 / scaled_w as f64;
        let diff_h = target_h as f64 / scaled_h as f64;
        if diff_w > diff_h && diff_w > 1.0 {
            rc_h = scale_dim(scaled_w, target_h as f64 / target_w as f64);
            rc_w = scaled_w;
        } else if diff_h > diff_w && diff_h > 1.0 {
            rc_w = scale_dim(scaled_h, target_w as f64 / target_h as f64);
            rc_h = scaled_h;
        }
    }
    // cropToResult: zero means "the whole side"; never larger than the image.
    let crop_w = min_non_zero(rc_w, scaled_w).min(scaled_w);
    let crop_h = min_non_zero(rc_h, scaled_h).min(scaled_h);
    let result_crop = (crop_w < scaled_w || crop_h < scaled_h).then_some((
        crop_w as u32,
        crop_h as u32,
        o.gravity,
    ));

    let size = if o.extend && (target_w > crop_w || target_h > crop_h) {
        let side = |target: i64, crop: i64| if target <= 0 { crop } else { target.max(crop) };
        Some((
            side(target_w, crop_w),
            side(target_h, crop_h),
            o.extend_gravity,
        ))
    } else if o.extend_aspect_ratio && target_w > 0 && target_h > 0 {
        // The side that falls short of the asked aspect ratio grows.
        let (diff_w, diff_h) = (
            target_w as f64 / crop_w as f64,
            target_h as f64 / crop_h as f64,
        );
        let (ew, eh) = if diff_h > diff_w {
            (crop_w, scale_dim(crop_w, target_h as f64 / target_w as f64))
        } else if diff_w > diff_h {
            (scale_dim(crop_h, target_w as f64 / target_h as f64), crop_h)
        } else {
            (crop_w, crop_h)
        };
        (ew > crop_w || eh > crop_h).then_some((ew, eh, o.extend_aspect_ratio_gravity))
    } else {
        None
    };
    let even = |a: u32| scale_dim_even(a as i64, dpr_scale);
    let padding = o.padding.map(even);
    let extend = match size {
        Some((w, h, gravity)) => Some(Extend {
            size: (w as u32, h as u32),
            gravity,
            padding,
        }),
        None if padding != [0; 4] => Some(Extend {
            size: (crop_w as u32, crop_h as u32),
            gravity: Gravity::default(),
            padding,
        }),
        None => None,
    };
    let out = match &extend {
        Some(e) => {
            let (w, h) = e.outer();
            (w.min(i64::MAX as u64) as i64, h.min(i64::MAX as u64) as i64)
        }
        None => (crop_w, crop_h),
    };

    // The scaled image before the result crop is only allocated for smart
    // crops, but bound it too: never more pixels than a max-size result.
    let limit = max_dim as i64;
    if out.0 > limit || out.1 > limit || scaled_w.saturating_mul(scaled_h) > limit * limit {
        return Err(Error::bad_option(
            "resize",
            format!(
                "result {}x{} is over the limit of {max_dim} px a side",
                out.0.max(scaled_w),
                out.1.max(scaled_h)
            ),
        ));
    }

    Ok(Geometry {
        pre_crop,
        scaled: (scaled_w as u32, scaled_h as u32),
        result_crop,
        extend,
        output: (out.0 as u32, out.1 as u32),
        scale: wscale.max(hscale),
        dpr: dpr_scale,
    })
}

/// Top-left corner of an `inner` box placed on an `outer` box by gravity
/// (imgproxy's `calcPosition` without overflow). Smart gravity is resolved
/// from pixels elsewhere; here it means centre.
pub fn position(outer: (u32, u32), inner: (u32, u32), g: &Gravity, dpr: f64) -> (u32, u32) {
    let (left, top) = unclamped(outer, inner, g, dpr);
    let (w, h) = (outer.0 as i64, outer.1 as i64);
    let left = left.clamp(0, (w - inner.0 as i64).max(0));
    let top = top.clamp(0, (h - inner.1 as i64).max(0));
    (left as u32, top as u32)
}

/// [`position`] with overflow (a watermark's): the box may hang over any
/// edge, but keeps at least one pixel on the outer box.
pub fn place(outer: (u32, u32), inner: (u32, u32), g: &Gravity, dpr: f64) -> (i64, i64) {
    let (left, top) = unclamped(outer, inner, g, dpr);
    let (w, h) = (outer.0 as i64, outer.1 as i64);
    let (iw, ih) = (inner.0 as i64, inner.1 as i64);
    (left.clamp(1 - iw, w - 1), top.clamp(1 - ih, h - 1))
}

fn unclamped(outer: (u32, u32), inner: (u32, u32), g: &Gravity, dpr: f64) -> (i64, i64) {
    let (w, h) = (outer.0 as i64, outer.1 as i64);
    let (iw, ih) = (inner.0 as i64, inner.1 as i64);
    let even = |a: f64| a.round_ties_even() as i64;
    let scale_even = |a: i64, s: f64| if a == 0 { 0 } else { even(a as f64 * s) };
    if g.kind == GravityType::FocusPoint {
        (scale_even(w, g.x) - iw / 2, scale_even(h, g.y) - ih / 2)
    } else {
        let off = |v: f64, size: i64| {
            if v.abs() >= 1.0 {
                even(v * dpr)
            } else {
                scale_even(size, v)
            }
        };
        let (off_x, off_y) = (off(g.x, w), off(g.y, h));
        let mut left = even((w - iw + 1) as f64 / 2.0) + off_x;
        let mut top = even((h - ih + 1) as f64 / 2.0) + off_y;
        use GravityType::*;
        if matches!(g.kind, North | NorthEast | NorthWest) {
            top = off_y;
        }
        if matches!(g.kind, East | NorthEast | SouthEast) {
            left = w - iw - off_x;
        }
        if matches!(g.kind, South | SouthEast | SouthWest) {
            top = h - ih - off_y;
        }
        if matches!(g.kind, West | NorthWest | SouthWest) {
            left = off_x;
        }
        (left, top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::options::{build, Presets, RawOption};

    fn geo(src: (u32, u32), opts: &str) -> Geometry {
        let raw: Vec<RawOption> = opts
            .split('/')
            .map(|s| RawOption::split(s).unwrap())
            .collect();
        let o = build(&raw, None, &Presets::default()).unwrap();
        compute(src.0, src.1, &o, 8192).unwrap()
    }

    fn out(src: (u32, u32), opts: &str) -> (u32, u32) {
        geo(src, opts).output
    }

    // Expected sizes follow imgproxy's documented semantics for each type.
    #[test]
    fn fit_keeps_aspect_inside_the_box() {
        assert_eq!(out((1000, 500), "rs:fit:300:300"), (300, 150));
        assert_eq!(out((500, 1000), "rs:fit:300:300"), (150, 300));
        assert_eq!(out((1000, 500), "rs:fit:0:100"), (200, 100));
        assert_eq!(out((1000, 500), "rs:fit:250:0"), (250, 125));
        // No upscaling without enlarge; with it, up to the box.
        assert_eq!(out((1000, 500), "rs:fit:2000:2000"), (1000, 500));
        assert_eq!(out((1000, 500), "rs:fit:2000:2000:1"), (2000, 1000));
        // Zero and zero: the source size.
        assert_eq!(out((1000, 500), "q:80"), (1000, 500));
    }

    #[test]
    fn fill_covers_then_crops() {
        assert_eq!(out((1000, 500), "rs:fill:300:300"), (300, 300));
        let g = geo((1000, 500), "rs:fill:300:300");
        assert_eq!(g.scaled, (600, 300));
        assert_eq!(g.result_crop.map(|c| (c.0, c.1)), Some((300, 300)));
        // Smaller source, no enlarge: no upscale, crop limited to the image.
        assert_eq!(out((1000, 500), "rs:fill:2000:2000"), (1000, 500));
        assert_eq!(out((1000, 500), "rs:fill:2000:2000:1"), (2000, 2000));
        // One side zero behaves like fit on the other.
        assert_eq!(out((1000, 500), "rs:fill:0:100"), (200, 100));
    }

    #[test]
    fn fill_down_keeps_the_requested_aspect_when_too_small() {
        assert_eq!(out((1000, 500), "rs:fill-down:300:300"), (300, 300));
        assert_eq!(out((1000, 500), "rs:fill-down:2000:2000"), (500, 500));
        assert_eq!(out((1000, 500), "rs:fill-down:2000:1000"), (1000, 500));
        assert_eq!(out((1000, 500), "rs:fill-down:800:1000"), (400, 500));
    }

    #[test]
    fn force_ignores_aspect() {
        assert_eq!(out((1000, 500), "rs:force:300:300"), (300, 300));
        assert_eq!(out((1000, 500), "rs:force:300:0"), (300, 500));
        // Without enlarge imgproxy keeps the forced aspect but never scales
        // any side up: the larger shrink is undone on both axes.
        assert_eq!(out((1000, 500), "rs:force:2000:2000"), (500, 500));
        assert_eq!(out((1000, 500), "rs:force:2000:2000:1"), (2000, 2000));
    }

    #[test]
    fn auto_fills_same_orientation_and_fits_otherwise() {
        assert_eq!(out((1000, 500), "rs:auto:300:100"), (300, 100));
        assert_eq!(out((1000, 500), "rs:auto:100:300"), (100, 50));
        assert_eq!(out((500, 1000), "rs:auto:100:300"), (100, 300));
    }

    #[test]
    fn extend_and_dpr() {
        let g = geo((1000, 500), "rs:fit:300:300:0:1");
        assert_eq!(g.output, (300, 300));
        assert_eq!(g.extend.map(|e| e.size), Some((300, 300)));
        assert_eq!(out((1000, 500), "rs:fit:2000:2000:0:1"), (2000, 2000));
        assert_eq!(out((1000, 500), "rs:fit:300:300/dpr:2"), (600, 300));
        // dpr cannot enlarge past the source without enlarge.
        assert_eq!(out((1000, 500), "rs:fit:800:800/dpr:2"), (1000, 500));
    }

    #[test]
    fn crop_before_resize() {
        let g = geo((1000, 500), "c:500:500/rs:fit:100:100");
        assert_eq!(g.pre_crop.map(|c| (c.0, c.1)), Some((500, 500)));
        assert_eq!(g.output, (100, 100));
        // Relative crop sizes.
        assert_eq!(geo((1000, 500), "c:0.5:0.5").output, (500, 250));
        // A crop larger than the image is the image.
        assert_eq!(geo((1000, 500), "c:5000:5000").pre_crop, None);
    }

    #[test]
    fn results_over_the_limit_are_refused() {
        for opts in [
            "rs:force:60000:60000:1",
            "rs:fill:8192:1:1/g:sm",
            "pd:5000",
            "rs:fit:10:10:1/z:10000",
        ] {
            let raw: Vec<RawOption> = opts
                .split('/')
                .map(|s| RawOption::split(s).unwrap())
                .collect();
            let o = build(&raw, None, &Presets::default()).unwrap();
            assert!(compute(1, 2, &o, 8192).is_err(), "{opts}");
        }
    }

    /// Every EXIF orientation, `rotate` and `flip`: the one combined
    /// orientation shows the same pixels as imgproxy's steps (EXIF's
    /// rotation and mirror, then `rotate` clockwise, then the flips).
    #[test]
    fn rotate_and_flip_compose_with_exif_orientation() {
        use image::{imageops, metadata::Orientation, RgbImage};
        let src = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0]));
        for exif in 1..=8u8 {
            for rotate in [0, 90, 180, 270] {
                for flip in [(false, false), (true, false), (false, true), (true, true)] {
                    let mut steps = image::DynamicImage::ImageRgb8(src.clone());
                    steps.apply_orientation(Orientation::from_exif(exif).unwrap());
                    let mut steps = steps.to_rgb8();
                    for _ in 0..rotate / 90 {
                        steps = imageops::rotate90(&steps);
                    }
                    if flip.0 {
                        steps = imageops::flip_horizontal(&steps);
                    }
                    if flip.1 {
                        steps = imageops::flip_vertical(&steps);
                    }
                    let o = Options {
                        rotate,
                        flip,
                        ..Options::default()
                    };
                    let combined = orientation(exif, &o);
                    let mut once = image::DynamicImage::ImageRgb8(src.clone());
                    once.apply_orientation(Orientation::from_exif(combined).unwrap());
                    assert_eq!(
                        once.to_rgb8(),
                        steps,
                        "EXIF {exif}, rotate {rotate}, flip {flip:?}: {combined}"
                    );
                }
            }
        }
    }

    #[test]
    fn min_sizes_zoom_extend_aspect_ratio_and_padding() {
        // imgproxy crops to the other side's target (its docs warn of it).
        assert_eq!(out((400, 200), "h:50/mw:150"), (150, 50));
        assert_eq!(out((400, 200), "w:100/mh:100"), (100, 100));
        // A minimum already met does nothing.
        assert_eq!(out((400, 200), "w:100/mw:50"), (100, 50));
        assert_eq!(out((400, 200), "rs:fit:100:100/z:0.5"), (50, 25));
        assert_eq!(out((400, 200), "rs:fit:100:100/z:2"), (200, 100));
        assert_eq!(out((400, 200), "rs:fit:100:100/z:0.5:0.25"), (50, 13));
        // Zoom leaves offsets alone; dpr scales them.
        assert_eq!(geo((400, 200), "rs:fit:100:100/z:2").dpr, 1.0);
        let g = geo((400, 200), "rs:fit:100:100/exar:1:so");
        assert_eq!(g.output, (100, 100));
        let e = g.extend.unwrap();
        assert_eq!((e.size, e.gravity.kind), ((100, 100), GravityType::South));
        assert_eq!(e.position((100, 50), 1.0), (0, 50));
        assert_eq!(out((400, 200), "rs:fit:50:100/exar:1"), (50, 100));
        assert_eq!(geo((400, 200), "rs:fit:200:100/exar:1").extend, None);
        // exar needs both sides; extend wins when it applies.
        assert_eq!(geo((400, 200), "rs:fit:100:0/exar:1").extend, None);
        assert_eq!(out((400, 200), "rs:fit:300:300:0:1/exar:1"), (300, 300));
        // Padding: CSS order, scaled by dpr (halves to even), after extend.
        let g = geo((400, 200), "rs:fit:100:0/pd:1:2:3");
        assert_eq!(g.output, (104, 54));
        let e = g.extend.unwrap();
        assert_eq!((e.padding, e.outer()), ([1, 2, 3, 2], (104, 54)));
        assert_eq!(e.position((100, 50), 1.0), (2, 1));
        assert_eq!(
            geo((400, 200), "rs:fit:100:0/pd:5/dpr:1.5")
                .extend
                .unwrap()
                .padding,
            [8; 4]
        );
        assert_eq!(
            geo((400, 200), "rs:fit:100:0/pd:3/dpr:1.5")
                .extend
                .unwrap()
                .padding,
            [4; 4]
        );
        let g = geo((400, 200), "rs:fit:100:100:0:1:nowe/pd:10");
        assert_eq!(g.output, (120, 120));
        assert_eq!(g.extend.unwrap().position((100, 50), 1.0), (10, 10));
    }

    #[test]
    fn gravity_positions() {
        let g = |s: &str| {
            let raw = [RawOption::split(&format!("g:{s}")).unwrap()];
            build(&raw, None, &Presets::default()).unwrap().gravity
        };
        let p = |s: &str| position((600, 300), (300, 300), &g(s), 1.0);
        assert_eq!(p("ce"), (150, 0));
        assert_eq!(p("we"), (0, 0));
        assert_eq!(p("ea"), (300, 0));
        assert_eq!(p("ea:10:0"), (290, 0));
        assert_eq!(p("fp:0:0"), (0, 0));
        assert_eq!(p("fp:1:1"), (300, 0));
        assert_eq!(p("fp:0.5:0.5"), (150, 0));
        let p = |s: &str| position((300, 600), (300, 300), &g(s), 1.0);
        assert_eq!(p("no"), (0, 0));
        assert_eq!(p("so"), (0, 300));
        assert_eq!(p("soea"), (0, 300));
        assert_eq!(p("ce"), (0, 150));
        assert_eq!(p("ce:0:0.1"), (0, 210));
    }
}
