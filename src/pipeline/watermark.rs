//! `watermark`: the configured image placed on the result, last, as
//! imgproxy does: at its own size or fitted to a share of the result, by
//! gravity with offsets (and free to overhang the edge), or tiled over the
//! whole result in a grid centred on it; its alpha times the opacity,
//! blended over.
//!
//! The blend runs in place on the result, RGB or RGBA. photon-rs's
//! `watermark` would need the result copied to RGBA first and has no
//! opacity, so it is not used here.

use bytes::Bytes;
use image::{DynamicImage, RgbaImage};

use super::deadline::Deadline;
use super::geometry;
use super::{decode, resize, sniff, Limits};
use crate::error::Error;
use crate::request::options::{Gravity, Watermark};

/// The operator's watermark image, and the opacity it multiplies.
#[derive(Debug, Clone)]
pub struct WatermarkImage {
    pub bytes: Bytes,
    pub opacity: f64,
}

/// The watermark's size once placed on a result of `out` pixels, from its
/// own size `wm`: fitted into `scale` of the result (enlarged if need be),
/// or as it is. Refused past the result dimension limit, since `scale`
/// comes from the URL.
pub fn size(
    wm: (u32, u32),
    out: (u32, u32),
    w: &Watermark,
    max_dim: u32,
) -> Result<(u32, u32), Error> {
    let size = match w.scale {
        s if s > 0.0 => {
            let bound = |a: u32| (a as f64 * s).round_ties_even().max(1.0);
            let (bw, bh) = (bound(out.0), bound(out.1));
            let fit = (bw / wm.0.max(1) as f64).min(bh / wm.1.max(1) as f64);
            let dim = |a: u32| (a as f64 * fit).round().max(1.0);
            (dim(wm.0), dim(wm.1))
        }
        _ => (wm.0 as f64, wm.1 as f64),
    };
    if size.0 > max_dim as f64 || size.1 > max_dim as f64 {
        return Err(Error::bad_option(
            "watermark",
            format!(
                "a {}x{} watermark is over the limit of {max_dim}",
                size.0, size.1
            ),
        ));
    }
    Ok((size.0 as u32, size.1 as u32))
}

/// The bytes a watermark adds to a transform: the decoded image, its
/// resample's intermediate and the resampled one, each RGBA.
pub fn memory(wm: (u32, u32), placed: (u32, u32)) -> u64 {
    let px = |(w, h): (u32, u32)| w as u64 * h as u64;
    4 * (px(wm) + placed.0 as u64 * wm.1 as u64 + px(placed))
}

/// The watermark image's header, checked against the source limits.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<decode::Header, Error> {
    let format = sniff::sniff(bytes)?;
    super::preflight::check(bytes, format)?;
    decode::probe(bytes, format, limits)
}

/// Decodes, sizes and fades the watermark for a result of `out` pixels.
pub fn prepare(
    image: &WatermarkImage,
    w: &Watermark,
    out: (u32, u32),
    limits: &Limits,
    deadline: &Deadline,
) -> Result<RgbaImage, Error> {
    let header = probe(&image.bytes, limits)?;
    let placed = size(
        (header.width, header.height),
        out,
        w,
        limits.max_result_dimension,
    )?;
    let decoded = decode::decode(&image.bytes, &header, 1.0, limits, deadline, None)?;
    let whole = resize::Region::whole(&decoded);
    let mut wm = resize::resample(decoded, whole, placed)?.into_rgba8();
    let opacity = (w.opacity * image.opacity).clamp(0.0, 1.0);
    if opacity < 1.0 {
        for p in wm.pixels_mut() {
            p.0[3] = (p.0[3] as f64 * opacity).round() as u8;
        }
    }
    Ok(wm)
}

/// Places `wm` on `img` as `w` says; `dpr` scales pixel offsets.
pub fn apply(img: DynamicImage, wm: &RgbaImage, w: &Watermark, dpr: f64) -> DynamicImage {
    let out = (img.width(), img.height());
    let at: Vec<(i64, i64)> = match w.position {
        Some(kind) => {
            let g = Gravity {
                kind,
                x: w.x,
                y: w.y,
            };
            vec![geometry::place(out, wm.dimensions(), &g, dpr)]
        }
        None => tiles(out, wm.dimensions(), w, dpr),
    };
    let mut img = img;
    match &mut img {
        DynamicImage::ImageRgb8(base) => {
            for &(x, y) in &at {
                blend(base.as_mut(), out.0, 3, wm, x, y);
            }
        }
        DynamicImage::ImageRgba8(base) => {
            for &(x, y) in &at {
                blend(base.as_mut(), out.0, 4, wm, x, y);
            }
        }
        _ => {}
    }
    img
}

/// Where the tiles of `re` go: each tile is the watermark with the offsets
/// as the gaps around it (half on each side), in a grid of an odd number
/// of tiles each way centred on the result, as imgproxy's replicate.
fn tiles(out: (u32, u32), wm: (u32, u32), w: &Watermark, dpr: f64) -> Vec<(i64, i64)> {
    let gap = |v: f64, size: u32| -> i64 {
        match v.abs() >= 1.0 {
            true => (v * dpr).round_ties_even() as i64,
            false => (size as f64 * v).round_ties_even() as i64,
        }
        .max(0)
    };
    let (gx, gy) = (gap(w.x, out.0), gap(w.y, out.1));
    let axis = |size: u32, tile: i64, gap: i64| -> Vec<i64> {
        let tile = tile.max(1);
        let mut n = (size as i64 + tile - 1) / tile;
        if n % 2 == 0 {
            n += 1;
        }
        let start = -((n * tile - size as i64) / 2) + gap / 2;
        (0..n).map(|k| start + k * tile).collect()
    };
    let xs = axis(out.0, wm.0 as i64 + gx, gx);
    let ys = axis(out.1, wm.1 as i64 + gy, gy);
    ys.iter()
        .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
        .collect()
}

/// Blends `wm` over the `channels`-channel pixels of `base` (of `width`
/// pixels a row) with its top-left at (x, y), clipped to the base.
fn blend(base: &mut [u8], width: u32, channels: usize, wm: &RgbaImage, x: i64, y: i64) {
    let (bw, bh) = (
        width as i64,
        (base.len() / (width as usize * channels).max(1)) as i64,
    );
    let (ww, wh) = (wm.width() as i64, wm.height() as i64);
    let (x0, x1) = (x.max(0), (x + ww).min(bw));
    let (y0, y1) = (y.max(0), (y + wh).min(bh));
    for by in y0..y1 {
        let row = &mut base[(by * bw) as usize * channels..][..bw as usize * channels];
        for bx in x0..x1 {
            let p = wm.get_pixel((bx - x) as u32, (by - y) as u32).0;
            let a = p[3] as u32;
            if a == 0 {
                continue;
            }
            let d = &mut row[bx as usize * channels..][..channels];
            if channels == 4 {
                // Porter-Duff over, straight alpha.
                let da = d[3] as u32 * (255 - a) / 255;
                let oa = a + da;
                for c in 0..3 {
                    d[c] = ((p[c] as u32 * a + d[c] as u32 * da + oa / 2) / oa.max(1)) as u8;
                }
                d[3] = oa.min(255) as u8;
            } else {
                for c in 0..3 {
                    d[c] = ((p[c] as u32 * a + d[c] as u32 * (255 - a) + 127) / 255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::options::GravityType;
    use image::{Rgb, RgbImage, Rgba};

    fn mark(position: Option<GravityType>) -> Watermark {
        Watermark {
            opacity: 1.0,
            position,
            x: 0.0,
            y: 0.0,
            scale: 0.0,
        }
    }

    fn white(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([255, 255, 255])))
    }

    fn red(w: u32, h: u32, alpha: u8) -> RgbaImage {
        RgbaImage::from_pixel(w, h, Rgba([255, 0, 0, alpha]))
    }

    #[test]
    fn placed_by_gravity_with_offsets() {
        let w = Watermark {
            x: 2.0,
            y: 1.0,
            ..mark(Some(GravityType::SouthEast))
        };
        let out = apply(white(20, 10), &red(4, 3, 255), &w, 1.0).into_rgb8();
        // Bottom-right, 2 in from the right and 1 up: x 14..18, y 6..9.
        assert_eq!(out.get_pixel(14, 6).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(17, 8).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(18, 8).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(13, 6).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(14, 9).0, [255, 255, 255]);
    }

    #[test]
    fn opacity_and_alpha_blend_over() {
        let out = apply(
            white(4, 4),
            &red(4, 4, 128),
            &mark(Some(GravityType::Center)),
            1.0,
        );
        assert_eq!(out.into_rgb8().get_pixel(0, 0).0, [255, 127, 127]);
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0])));
        let out = apply(
            clear,
            &red(4, 4, 128),
            &mark(Some(GravityType::Center)),
            1.0,
        );
        assert_eq!(out.into_rgba8().get_pixel(1, 1).0, [255, 0, 0, 128]);
    }

    #[test]
    fn tiles_cover_the_result_centred() {
        // 10-wide tiles of a 4-wide mark with a 6-pixel gap: 3 across a
        // 25-wide result (odd, centred), starting at -(30-25)/2 + 3.
        let w = Watermark {
            x: 6.0,
            y: 0.0,
            ..mark(None)
        };
        let xs: Vec<i64> = tiles((25, 4), (4, 4), &w, 1.0)
            .iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(xs, [1, 11, 21]);
        let out = apply(white(25, 4), &red(4, 4, 255), &w, 1.0).into_rgb8();
        let reds = (0..25)
            .filter(|&x| out.get_pixel(x, 0).0 == [255, 0, 0])
            .count();
        assert_eq!(reds, 4 + 4 + 4);
    }

    #[test]
    fn scale_fits_a_share_of_the_result_and_is_bounded() {
        let w = Watermark {
            scale: 0.5,
            ..mark(None)
        };
        assert_eq!(size((100, 50), (400, 200), &w, 8192).unwrap(), (200, 100));
        assert_eq!(size((10, 50), (400, 200), &w, 8192).unwrap(), (20, 100));
        assert_eq!(
            size((10, 5), (400, 200), &mark(None), 8192).unwrap(),
            (10, 5)
        );
        let huge = Watermark {
            scale: 1000.0,
            ..mark(None)
        };
        assert!(size((10, 5), (400, 200), &huge, 8192).is_err());
    }

    #[test]
    fn overhanging_marks_are_clipped() {
        let w = Watermark {
            x: -3.0,
            ..mark(Some(GravityType::West))
        };
        let out = apply(white(10, 4), &red(5, 4, 255), &w, 1.0).into_rgb8();
        assert_eq!(out.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(1, 0).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(2, 0).0, [255, 255, 255]);
    }
}
