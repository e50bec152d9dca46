//! From component planes to RGB rows: subsampled planes are upsampled
//! bilinearly between sample centres (libjpeg's "fancy" upsampling, which
//! for 2:1 is its 3/4–1/4 triangle), then YCbCr is converted as JFIF says.
//! Works a row at a time over planes that may hold only a band of rows
//! (a ring), so a sequential frame never holds its full-size planes.

use crate::cpu::{dispatch, v3_copy};

/// How the three components are to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ColorSpace {
    Grey,
    YCbCr,
    Rgb,
}

/// One decoded component plane, or the band of it held now: sample row
/// `r` is at `(r % ring) * stride`.
pub struct Plane<'a> {
    pub samples: &'a [u8],
    pub stride: usize,
    /// Sample rows held (all of them for a whole plane).
    pub ring: usize,
    /// Rows and columns that hold image data.
    pub width: usize,
    pub height: usize,
    /// Sampling factors, and the frame's largest.
    pub h: u8,
    pub v: u8,
    pub hmax: u8,
    pub vmax: u8,
}

impl Plane<'_> {
    fn row(&self, r: usize) -> &[u8] {
        let at = (r % self.ring) * self.stride;
        &self.samples[at..at + self.width]
    }
}

/// Per output index: the two source indices and the weight of the
/// second, in 1/256ths.
type Taps = Vec<(usize, usize, u32)>;

/// Bilinear taps between sample centres.
fn taps(len: usize, factor: u8, max: u8, valid: usize) -> Taps {
    let last = valid.saturating_sub(1) as f32;
    (0..len)
        .map(|i| {
            let f = ((i as f32 + 0.5) * factor as f32 / max as f32 - 0.5).clamp(0.0, last);
            let i0 = f.floor();
            let i1 = (i0 + 1.0).min(last);
            (i0 as usize, i1 as usize, ((f - i0) * 256.0).round() as u32)
        })
        .collect()
}

/// Turns plane rows into RGB rows, one output row at a time.
pub struct Converter {
    space: ColorSpace,
    width: usize,
    /// Per plane: at full resolution (no taps), or its (x, y) taps.
    grids: Vec<Option<(Taps, Taps)>>,
    heights: Vec<usize>,
    /// Scratch: each plane's row at output width, a blend, the RGB row.
    rows: Vec<Vec<u8>>,
    /// A vertical blend, in 1/256ths: at most 255·256, so 16 bits, which
    /// keeps the blend in SIMD lanes (there is no 32-bit multiply in SSE2).
    blended: Vec<u16>,
    line: Vec<u8>,
}

impl Converter {
    pub fn new(planes: &[Plane], space: ColorSpace, width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let grids = planes
            .iter()
            .map(|p| {
                (p.h != p.hmax || p.v != p.vmax).then(|| {
                    (
                        taps(w, p.h, p.hmax, p.width),
                        taps(h, p.v, p.vmax, p.height),
                    )
                })
            })
            .collect();
        let widest = planes.iter().map(|p| p.width).max().unwrap_or(0);
        Converter {
            space,
            width: w,
            grids,
            heights: planes.iter().map(|p| p.height).collect(),
            rows: planes.iter().map(|_| vec![0u8; w]).collect(),
            blended: vec![0u16; widest],
            line: vec![0u8; 3 * w],
        }
    }

    /// The last row of plane `i` that output row `y` reads: the row is
    /// ready once that one is decoded.
    pub fn last_read(&self, i: usize, y: usize) -> usize {
        match &self.grids[i] {
            None => y.min(self.heights[i].saturating_sub(1)),
            Some((_, ys)) => ys.get(y).map_or(0, |t| t.1),
        }
    }

    /// Output row `y`, as interleaved RGB.
    pub fn row(&mut self, planes: &[Plane], y: usize) -> &[u8] {
        dispatch!(self.row_v3(planes, y), self.row_body(planes, y))
    }

    v3_copy! {
        fn row_v3(&mut self, planes: &[Plane], y: usize) -> &[u8] {
            self.row_body(planes, y)
        }
    }

    #[inline(always)]
    fn row_body(&mut self, planes: &[Plane], y: usize) -> &[u8] {
        let w = self.width;
        for (i, p) in planes.iter().enumerate() {
            let row = &mut self.rows[i];
            let Some((xs, ys)) = &self.grids[i] else {
                row.copy_from_slice(&p.row(y.min(p.height.saturating_sub(1)))[..w]);
                continue;
            };
            // Blended vertically at the plane's own width first, then
            // horizontally to the output width: separable, so each output
            // sample costs two multiplies, not four.
            let (y0, y1, ty) = ys[y];
            let (r0, r1) = (p.row(y0), p.row(y1));
            let blended = &mut self.blended[..p.width];
            for ((v, &a), &b) in blended.iter_mut().zip(r0).zip(r1) {
                // ty is at most 256 (taps round to 1/256ths).
                let ty = ty as u16;
                *v = a as u16 * (256 - ty) + b as u16 * ty;
            }
            if p.hmax == 2 * p.h && p.width >= 2 && w == 2 * p.width {
                double_width(blended, row);
                continue;
            }
            for (px, &(x0, x1, tx)) in row.iter_mut().zip(xs) {
                let v = blended[x0] as u32 * (256 - tx) + blended[x1] as u32 * tx;
                *px = ((v + (1 << 15)) >> 16) as u8;
            }
        }
        let (rows, line) = (&self.rows, &mut self.line);
        match self.space {
            ColorSpace::Grey => {
                for (px, &l) in line.chunks_exact_mut(3).zip(&rows[0]) {
                    px.copy_from_slice(&[l, l, l]);
                }
            }
            ColorSpace::Rgb => {
                for (x, px) in line.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&[rows[0][x], rows[1][x], rows[2][x]]);
                }
            }
            ColorSpace::YCbCr => ycbcr_row(&rows[0], &rows[1], &rows[2], line),
        }
        &self.line
    }
}

/// The same taps for the common 2:1 case, without the table: each sample
/// becomes two, 3/4 of itself and 1/4 of its neighbour on that side (the
/// edges repeat). `blended` is in 1/256ths.
#[inline(always)]
fn double_width(blended: &[u16], row: &mut [u8]) {
    const N: usize = 16;
    let n = blended.len();
    let round = |v: u32| ((v + (1 << 9)) >> 10) as u8;
    row[0] = ((blended[0] as u32 + (1 << 7)) >> 8) as u8;
    row[2 * n - 1] = ((blended[n - 1] as u32 + (1 << 7)) >> 8) as u8;
    // Between samples j and j+1: outputs 2j+1 and 2j+2. N pairs at a
    // time, each side computed lane-wise first (SIMD), then interleaved.
    let pairs = n - 1;
    let full = pairs / N * N;
    let out = row[1..1 + 2 * full].chunks_exact_mut(2 * N);
    for (a, out) in blended.windows(N + 1).step_by(N).zip(out) {
        let (mut left, mut right) = ([0u8; N], [0u8; N]);
        for i in 0..N {
            let (a, b) = (a[i] as u32, a[i + 1] as u32);
            left[i] = round(3 * a + b);
            right[i] = round(a + 3 * b);
        }
        for (o, (l, r)) in out.chunks_exact_mut(2).zip(left.into_iter().zip(right)) {
            (o[0], o[1]) = (l, r);
        }
    }
    for (j, pair) in blended.windows(2).enumerate().skip(full) {
        let (a, b) = (pair[0] as u32, pair[1] as u32);
        row[2 * j + 1] = round(3 * a + b);
        row[2 * j + 2] = round(a + 3 * b);
    }
}

/// One row of YCbCr to interleaved RGB, 16 pixels at a time: each
/// channel is computed for all 16 first (plain lane-wise arithmetic, which
/// compiles to SIMD), then interleaved.
#[inline(always)]
fn ycbcr_row(ys: &[u8], cbs: &[u8], crs: &[u8], out: &mut [u8]) {
    const N: usize = 16;
    let full = ys.len() / N * N;
    let chunks = ys[..full]
        .chunks_exact(N)
        .zip(cbs.chunks_exact(N))
        .zip(crs.chunks_exact(N))
        .zip(out.chunks_exact_mut(3 * N));
    for (((y, cb), cr), px) in chunks {
        let (mut r, mut g, mut b) = ([0u8; N], [0u8; N], [0u8; N]);
        for i in 0..N {
            [r[i], g[i], b[i]] = ycbcr_to_rgb(y[i], cb[i], cr[i]);
        }
        // Three stores a pixel: a 3-byte copy_from_slice is a call's worth.
        for (i, p) in px.chunks_exact_mut(3).enumerate() {
            (p[0], p[1], p[2]) = (r[i], g[i], b[i]);
        }
    }
    let rest = ys[full..]
        .iter()
        .zip(&cbs[full..])
        .zip(&crs[full..])
        .zip(out[3 * full..].chunks_exact_mut(3));
    for (((&y, &cb), &cr), p) in rest {
        p.copy_from_slice(&ycbcr_to_rgb(y, cb, cr));
    }
}

/// JFIF's YCbCr to RGB, in 16-bit fixed point.
#[inline(always)]
pub fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = ((y as i32) << 16, cb as i32 - 128, cr as i32 - 128);
    let c = |v: i32| ((v + (1 << 15)) >> 16).clamp(0, 255) as u8;
    [
        c(y + 91_881 * cr),
        c(y - 22_554 * cb - 46_802 * cr),
        c(y + 116_130 * cb),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_matches_the_jfif_formula() {
        for (y, cb, cr) in [
            (0u8, 0u8, 0u8),
            (255, 255, 255),
            (128, 64, 200),
            (17, 240, 3),
        ] {
            let (yf, cbf, crf) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
            let want = [
                yf + 1.402 * crf,
                yf - 0.344_136 * cbf - 0.714_136 * crf,
                yf + 1.772 * cbf,
            ]
            .map(|v| v.round().clamp(0.0, 255.0) as i32);
            let got = ycbcr_to_rgb(y, cb, cr).map(|v| v as i32);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1, "{y},{cb},{cr}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn the_two_to_one_fast_path_matches_the_taps() {
        // Widths under, at and past the 16-pair chunks; samples as the
        // vertical blend makes them (0..=255·256).
        let mut seed = 7u32;
        for n in 2..70 {
            let samples: Vec<u16> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((seed >> 8) % (255 * 256 + 1)) as u16
                })
                .collect();
            let mut fast = vec![0u8; 2 * n];
            double_width(&samples, &mut fast);
            let slow: Vec<u8> = taps(2 * n, 1, 2, n)
                .iter()
                .map(|&(x0, x1, t)| {
                    let v = samples[x0] as u32 * (256 - t) + samples[x1] as u32 * t;
                    ((v + (1 << 15)) >> 16) as u8
                })
                .collect();
            assert_eq!(fast, slow, "{n} samples");
        }
    }

    #[test]
    fn two_to_one_upsampling_is_libjpegs_triangle() {
        let t = taps(8, 1, 2, 4);
        // Output i sits at chroma position (i + 0.5) / 2 − 0.5.
        assert_eq!(t[0], (0, 1, 0));
        assert_eq!(t[2], (0, 1, 192));
        assert_eq!(t[3], (1, 2, 64));
        assert_eq!(t[7], (3, 3, 0));
    }
}
