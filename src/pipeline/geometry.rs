//! Output geometry: imgproxy's size arithmetic (`processing/prepare.go`,
//! `calc_position.go`) for the five resize types, `enlarge`, `extend`,
//! `dpr`, `crop` and gravity. Pure integer/float work on dimensions, so it
//! is computed before any pixel is decoded and drives shrink-on-load.

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
    /// Canvas to extend to, with the gravity placing the image on it.
    pub extend: Option<(u32, u32, Gravity)>,
    /// The final width and height.
    pub output: (u32, u32),
    /// Scale factor from source pixels to output pixels (largest axis); the
    /// decoder may shrink on load down to this.
    pub scale: f64,
    /// The effective device pixel ratio, which scales gravity offsets.
    pub dpr: f64,
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
    wshrink /= dpr_scale;
    hshrink /= dpr_scale;
    wshrink = wshrink.min(src_wf);
    hshrink = hshrink.min(src_hf);
    let (wscale, hscale) = (1.0 / wshrink, 1.0 / hshrink);

    // calcSizes
    let target_w = scale_dim(o.width as i64, dpr_scale);
    let target_h = scale_dim(o.height as i64, dpr_scale);
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

    let mut out = (crop_w, crop_h);
    let extend = if o.extend && (target_w > crop_w || target_h > crop_h) {
        let ew = if target_w <= 0 {
            crop_w
        } else {
            target_w.max(crop_w)
        };
        let eh = if target_h <= 0 {
            crop_h
        } else {
            target_h.max(crop_h)
        };
        out = (ew, eh);
        Some((ew as u32, eh as u32, o.extend_gravity))
    } else {
        None
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
    let (w, h) = (outer.0 as i64, outer.1 as i64);
    let (iw, ih) = (inner.0 as i64, inner.1 as i64);
    let even = |a: f64| a.round_ties_even() as i64;
    let scale_even = |a: i64, s: f64| if a == 0 { 0 } else { even(a as f64 * s) };
    let (left, top) = if g.kind == GravityType::FocusPoint {
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
    };
    let left = left.clamp(0, (w - iw).max(0));
    let top = top.clamp(0, (h - ih).max(0));
    (left as u32, top as u32)
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
        assert_eq!(g.extend.map(|e| (e.0, e.1)), Some((300, 300)));
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
        for opts in ["rs:force:60000:60000:1", "rs:fill:8192:1:1/g:sm"] {
            let raw: Vec<RawOption> = opts
                .split('/')
                .map(|s| RawOption::split(s).unwrap())
                .collect();
            let o = build(&raw, None, &Presets::default()).unwrap();
            assert!(compute(1, 2, &o, 8192).is_err(), "{opts}");
        }
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
