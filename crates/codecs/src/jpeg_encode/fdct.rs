//! The forward DCT and quantisation of one 8×8 block.
//!
//! The DCT is the Arai-Agui-Nakajima factorisation in `f32` (libjpeg's
//! "float" method): five multiplies per eight points, and its scale
//! factors fold into the quantiser, so a block costs two passes and one
//! multiply per coefficient. Each pass runs the eight rows (then columns)
//! as lanes, which the compiler turns into SIMD where the target has it.

/// One 8×8 block of samples, centred on zero; `[row][column]`.
pub type Block = [[f32; 8]; 8];

/// Natural index (row × 8 + column) of the k-th coefficient in zigzag
/// order, the order every table and scan uses.
pub const ZIGZAG: [u8; 64] = zigzag();

const fn zigzag() -> [u8; 64] {
    let mut order = [0u8; 64];
    let mut k = 0;
    let mut sum = 0;
    while sum < 15 {
        // Along each anti-diagonal, rows rise on odd sums, fall on even.
        let low = if sum > 7 { sum - 7 } else { 0 };
        let high = if sum < 7 { sum } else { 7 };
        let mut i = 0;
        while i <= high - low {
            let row = if sum % 2 == 1 { low + i } else { high - i };
            order[k] = (row * 8 + (sum - row)) as u8;
            k += 1;
            i += 1;
        }
        sum += 1;
    }
    order
}

/// The standard's luminance and chrominance quantisation tables (K.1),
/// in natural order.
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// 1.5·2^23: a float this size has no fraction bits, and an integer
/// added to it sits in the low bits of its mantissa.
const ROUNDER: f32 = 12_582_912.0;

/// AAN's scale of frequency k: cos(kπ/16)·√2, and 1 for k = 0.
const AAN: [f32; 8] = [
    1.0,
    1.387_039_8,
    1.306_563,
    1.175_875_6,
    1.0,
    0.785_694_96,
    0.541_196_1,
    0.275_899_38,
];

/// A quantisation table: as the DQT segment carries it, and as the
/// quantiser multiplies.
#[derive(Debug, Clone)]
pub struct Quantizer {
    /// Zigzag order, 1..=255 (8-bit, baseline).
    pub zigzag: [u8; 64],
    /// For the k-th coefficient in zigzag order: where [`forward`] leaves
    /// it, and what to multiply it by.
    from: [u8; 64],
    scale: [f32; 64],
}

impl Quantizer {
    /// The standard table for luminance or chrominance at `quality`
    /// (1..=100), scaled as libjpeg scales it, so files match its sizes.
    pub fn new(chroma: bool, quality: u8) -> Quantizer {
        let quality = quality.clamp(1, 100) as u32;
        let percent = if quality < 50 {
            5000 / quality
        } else {
            200 - 2 * quality
        };
        let base = if chroma { &CHROMA } else { &LUMA };
        let mut q = Quantizer {
            zigzag: [0; 64],
            from: [0; 64],
            scale: [0.0; 64],
        };
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let (row, col) = (natural as usize / 8, natural as usize % 8);
            let value = ((base[natural as usize] as u32 * percent + 50) / 100).clamp(1, 255);
            q.zigzag[k] = value as u8;
            // [`forward`] leaves the coefficient of (row, col) transposed.
            q.from[k] = (col * 8 + row) as u8;
            q.scale[k] = 1.0 / (value as f32 * AAN[row] * AAN[col] * 8.0);
        }
        q
    }

    /// `block`'s coefficients, quantised (rounded to nearest, ties to
    /// even), in zigzag order, at most 1023 in magnitude, as 8-bit JPEG
    /// requires of AC.
    #[inline]
    pub fn quantize(&self, block: &Block, out: &mut [i16; 64]) {
        let flat = block.as_flattened();
        let mut gathered = [0f32; 64];
        for (g, &from) in gathered.iter_mut().zip(self.from.iter()) {
            *g = flat[from as usize];
        }
        for ((o, &g), &s) in out.iter_mut().zip(gathered.iter()).zip(self.scale.iter()) {
            // Clamped, then rounded to nearest by adding 1.5·2^23, which
            // leaves the integer in the low mantissa bits: no conversion
            // instruction, so the loop stays in SIMD lanes.
            let v = (g * s).clamp(-1023.0, 1023.0) + ROUNDER;
            *o = (v.to_bits() as i32 - ROUNDER.to_bits() as i32) as i16;
        }
    }
}

/// The forward DCT of `block` in place, scaled as [`Quantizer`] expects
/// and transposed (`[column frequency][row frequency]`).
#[inline]
pub fn forward(block: &mut Block) {
    pass(block);
    transpose(block);
    pass(block);
}

/// One 1-D DCT down each of the eight columns at once.
#[inline(always)]
// `i` is the lane: the same index into all eight rows.
#[allow(clippy::needless_range_loop)]
fn pass(b: &mut Block) {
    for i in 0..8 {
        let t0 = b[0][i] + b[7][i];
        let t7 = b[0][i] - b[7][i];
        let t1 = b[1][i] + b[6][i];
        let t6 = b[1][i] - b[6][i];
        let t2 = b[2][i] + b[5][i];
        let t5 = b[2][i] - b[5][i];
        let t3 = b[3][i] + b[4][i];
        let t4 = b[3][i] - b[4][i];

        // Even part.
        let t10 = t0 + t3;
        let t13 = t0 - t3;
        let t11 = t1 + t2;
        let t12 = t1 - t2;
        b[0][i] = t10 + t11;
        b[4][i] = t10 - t11;
        let z1 = (t12 + t13) * core::f32::consts::FRAC_1_SQRT_2;
        b[2][i] = t13 + z1;
        b[6][i] = t13 - z1;

        // Odd part.
        let t10 = t4 + t5;
        let t11 = t5 + t6;
        let t12 = t6 + t7;
        let z5 = (t10 - t12) * 0.382_683_43;
        let z2 = 0.541_196_1 * t10 + z5;
        let z4 = 1.306_563 * t12 + z5;
        let z3 = t11 * core::f32::consts::FRAC_1_SQRT_2;
        let z11 = t7 + z3;
        let z13 = t7 - z3;
        b[5][i] = z13 + z2;
        b[3][i] = z13 - z2;
        b[1][i] = z11 + z4;
        b[7][i] = z11 - z4;
    }
}

#[inline(always)]
fn transpose(b: &mut Block) {
    let t = *b;
    for (r, row) in b.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = t[c][r];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_starts_and_ends_as_the_standard_does() {
        assert_eq!(ZIGZAG[..10], [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(ZIGZAG[58..], [61, 54, 47, 55, 62, 63]);
        let mut seen = ZIGZAG;
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &v)| i == v as usize));
    }

    /// The textbook DCT-II, orthonormal, for comparison.
    fn reference(block: &Block) -> [[f64; 8]; 8] {
        let c = |k: usize| if k == 0 { (0.125f64).sqrt() } else { 0.5 };
        let mut out = [[0.0; 8]; 8];
        for (u, row) in out.iter_mut().enumerate() {
            for (v, o) in row.iter_mut().enumerate() {
                let mut sum = 0.0;
                for (y, line) in block.iter().enumerate() {
                    for (x, &s) in line.iter().enumerate() {
                        sum += s as f64
                            * (((2 * y + 1) * u) as f64 * std::f64::consts::PI / 16.0).cos()
                            * (((2 * x + 1) * v) as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                *o = c(u) * c(v) * sum;
            }
        }
        out
    }

    #[test]
    fn quantised_coefficients_are_the_dct_over_the_table() {
        let mut block: Block = [[0.0; 8]; 8];
        for (y, row) in block.iter_mut().enumerate() {
            for (x, s) in row.iter_mut().enumerate() {
                *s = ((x * 37 + y * 91 + x * y * 13) % 255) as f32 - 128.0;
            }
        }
        let expected = reference(&block);
        let q = Quantizer::new(false, 100);
        assert!(q.zigzag.iter().all(|&v| v == 1));
        let mut dct = block;
        forward(&mut dct);
        let mut out = [0i16; 64];
        q.quantize(&dct, &mut out);
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let want = expected[natural as usize / 8][natural as usize % 8];
            assert!(
                (out[k] as f64 - want).abs() <= 0.51,
                "coefficient {natural}: {} against {want}",
                out[k]
            );
        }
    }

    #[test]
    fn quality_scales_the_table_as_libjpeg() {
        // At 50 the table is the standard's; at 80, 40% of it, rounded.
        assert_eq!(Quantizer::new(false, 50).zigzag[0], 16);
        assert_eq!(Quantizer::new(false, 80).zigzag[0], 6);
        assert_eq!(Quantizer::new(true, 80).zigzag[63], 40);
        assert_eq!(Quantizer::new(true, 1).zigzag[63], 255);
    }
}
