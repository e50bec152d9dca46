//! One row of MCUs (16 pixel rows) in the form the encoder codes: Y at
//! full resolution, Cb and Cr averaged over each 2×2 (4:2:0, as libjpeg
//! averages: taking one pixel of four aliases), all centred on zero and
//! padded to whole MCUs by repeating the last column and row.

use super::fdct::Block;

pub struct Strip {
    /// Padded width: a multiple of 16.
    width: usize,
    y: Vec<f32>,
    cb: Vec<f32>,
    cr: Vec<f32>,
}

/// Pixel rows in a strip.
pub const ROWS: usize = 16;

impl Strip {
    pub fn new(padded_width: usize) -> Strip {
        Strip {
            width: padded_width,
            y: vec![0.0; ROWS * padded_width],
            cb: vec![0.0; ROWS / 2 * padded_width / 2],
            cr: vec![0.0; ROWS / 2 * padded_width / 2],
        }
    }

    /// Converts `rows` (1..=16) RGB rows of `width` pixels from `rgb`.
    /// Inlined, so it is compiled for the CPU its caller is.
    #[inline(always)]
    pub fn fill(&mut self, rgb: &[u8], width: usize, rows: usize) {
        let stride = width * 3;
        let half = self.width / 2;
        let row = |r: usize| &rgb[r.min(rows - 1) * stride..][..stride];
        for pair in 0..ROWS / 2 {
            let (top, bottom) = (row(2 * pair), row(2 * pair + 1));
            let (y0, rest) = self.y[2 * pair * self.width..].split_at_mut(self.width);
            let y1 = &mut rest[..self.width];
            let cb = &mut self.cb[pair * half..][..half];
            let cr = &mut self.cr[pair * half..][..half];
            // Whole pairs of columns, then the edge, repeated.
            let whole = width / 2;
            for (x, (t, b)) in top
                .chunks_exact(6)
                .zip(bottom.chunks_exact(6))
                .enumerate()
                .take(whole)
            {
                let p = [&t[..3], &t[3..], &b[..3], &b[3..]];
                y0[2 * x] = luma(p[0]);
                y0[2 * x + 1] = luma(p[1]);
                y1[2 * x] = luma(p[2]);
                y1[2 * x + 1] = luma(p[3]);
                (cb[x], cr[x]) = chroma(p);
            }
            for x in whole..half {
                let (c0, c1) = ((2 * x).min(width - 1) * 3, (2 * x + 1).min(width - 1) * 3);
                let p = [
                    &top[c0..c0 + 3],
                    &top[c1..c1 + 3],
                    &bottom[c0..c0 + 3],
                    &bottom[c1..c1 + 3],
                ];
                y0[2 * x] = luma(p[0]);
                y0[2 * x + 1] = luma(p[1]);
                y1[2 * x] = luma(p[2]);
                y1[2 * x + 1] = luma(p[3]);
                (cb[x], cr[x]) = chroma(p);
            }
        }
    }

    /// The Y block at block column `bx`, block row `by` (0 or 1).
    #[inline(always)]
    pub fn y_block(&self, bx: usize, by: usize, out: &mut Block) {
        load(&self.y, self.width, bx * 8, by * 8, out);
    }

    /// The Cb or Cr block at block column `bx`.
    #[inline(always)]
    pub fn chroma_block(&self, red: bool, bx: usize, out: &mut Block) {
        let plane = if red { &self.cr } else { &self.cb };
        load(plane, self.width / 2, bx * 8, 0, out);
    }
}

#[inline(always)]
fn load(plane: &[f32], stride: usize, x: usize, y: usize, out: &mut Block) {
    for (r, line) in out.iter_mut().enumerate() {
        line.copy_from_slice(&plane[(y + r) * stride + x..][..8]);
    }
}

/// Each channel's share of Y for every value, the first less 128: three
/// loads and two adds a pixel instead of three conversions and multiplies.
static LUMA: [[f32; 256]; 3] = luma_tables();

const fn luma_tables() -> [[f32; 256]; 3] {
    let mut t = [[0.0; 256]; 3];
    let mut v = 0;
    while v < 256 {
        t[0][v] = 0.299 * v as f32 - 128.0;
        t[1][v] = 0.587 * v as f32;
        t[2][v] = 0.114 * v as f32;
        v += 1;
    }
    t
}

/// Y (BT.601, full range, as JFIF), less 128.
#[inline(always)]
fn luma(p: &[u8]) -> f32 {
    LUMA[0][p[0] as usize] + LUMA[1][p[1] as usize] + LUMA[2][p[2] as usize]
}

/// Cb and Cr of the mean of four pixels (both already centred on zero).
#[inline(always)]
fn chroma(p: [&[u8]; 4]) -> (f32, f32) {
    let sum = |c: usize| (p[0][c] as u32 + p[1][c] as u32 + p[2][c] as u32 + p[3][c] as u32) as f32;
    let (r, g, b) = (sum(0) * 0.25, sum(1) * 0.25, sum(2) * 0.25);
    (
        -0.168_736 * r - 0.331_264 * g + 0.5 * b,
        0.5 * r - 0.418_688 * g - 0.081_312 * b,
    )
}
