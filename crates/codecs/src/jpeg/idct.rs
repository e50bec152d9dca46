//! Scaled inverse DCTs: an 8×8 block straight to n×n samples (n = 1, 2, 4,
//! or 8 for full scale) from its top-left n×n coefficients, the rest never
//! touched.
//!
//! The n×n result samples the block's continuous reconstruction at the
//! centres of n×n larger pixels, the same reduced transform libjpeg's
//! `jidctred.c` and jpeg-decoder use for DCT scaling. With the 8-point
//! IDCT's weights `C(u)/2`, that is an n-point IDCT scaled by 1/√(8/n)
//! per axis, so DC alone gives the block mean.

use std::num::Wrapping;

use crate::cpu::{dispatch, v3_copy};

/// The scaled IDCT of one block: `coef` holds its K = n×n dequantised
/// coefficients in rows of n (vertical frequency by row); writes n rows of
/// n samples at `out`, `stride` apart. The weights are `C(u)/2 ·
/// cos((2x+1)uπ / 2n)`, folded into each size's butterflies below. Chosen
/// by K, known where the block is decoded, so no branch on the scale is
/// left in the block loop.
#[inline(always)]
pub fn block<const K: usize>(coef: &[i32; K], out: &mut [u8], stride: usize) {
    match K {
        // The mean: DC / 8.
        1 => out[0] = level_shift(coef[0], 3),
        // Both weights are ±1/(2√2) per axis: a 2×2 Hadamard over 8.
        4 => {
            let mut c = [0; 4];
            c.copy_from_slice(&coef[..4]);
            let s = samples_2(&c);
            out[..2].copy_from_slice(&s[..2]);
            out[stride..stride + 2].copy_from_slice(&s[2..]);
        }
        // The larger transforms out of line, so this stays small
        // enough to inline at 1/8 and 1/4, a call per block saved.
        16 => block_4(coef, out, stride),
        _ => block_8(coef, out, stride),
    }
}

/// The 2×2 block's samples, row by row, from its four coefficients
/// (dequantised, so each within ±2^20 and no sum overflows): the
/// Hadamard, then each sum over 8, rounded, level-shifted and clamped.
/// On x86-64 in one SSE2 vector (every x86-64 has SSE2, so the portable
/// copy of the block loop has it too): at 1/4 scale this runs for every
/// block, and the vector made those decodes 2–4 % faster natively. A
/// simd128 copy measured no faster under V8 (bythewater +4 %, within
/// its noise), so wasm keeps the scalar form.
#[inline(always)]
fn samples_2(c: &[i32; 4]) -> [u8; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline).
        unsafe { samples_2_sse2(c) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        samples_2_scalar(c)
    }
}

/// [`samples_2`] in SSE2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn samples_2_sse2(c: &[i32; 4]) -> [u8; 4] {
    use std::arch::x86_64::*;
    let v = _mm_set_epi32(c[3], c[2], c[1], c[0]);
    // [a, b, a, b] and [c, d, c, d]: the columns' sums and differences.
    let (u, w) = (_mm_shuffle_epi32::<0x44>(v), _mm_shuffle_epi32::<0xEE>(v));
    let t = _mm_unpacklo_epi64(_mm_add_epi32(u, w), _mm_sub_epi32(u, w));
    // [t0, t0, t2, t2] and [t1, t1, t3, t3]: then the rows'.
    let (u, w) = (_mm_shuffle_epi32::<0xA0>(t), _mm_shuffle_epi32::<0xF5>(t));
    let (p, m) = (_mm_add_epi32(u, w), _mm_sub_epi32(u, w));
    let r = _mm_unpacklo_epi64(_mm_unpacklo_epi32(p, m), _mm_unpackhi_epi32(p, m));
    let r = _mm_srai_epi32::<3>(_mm_add_epi32(r, _mm_set1_epi32(4)));
    let r = _mm_add_epi32(r, _mm_set1_epi32(128));
    // Saturating to i16, then to u8, is the clamp to 0..=255.
    let b = _mm_packus_epi16(_mm_packs_epi32(r, r), _mm_setzero_si128());
    (_mm_cvtsi128_si32(b) as u32).to_le_bytes()
}

/// [`samples_2`] one sample at a time: other targets, and the tests'
/// reference.
#[cfg_attr(all(not(test), target_arch = "x86_64"), allow(dead_code))]
fn samples_2_scalar(c: &[i32; 4]) -> [u8; 4] {
    let (top, bottom) = (c[0] + c[2], c[0] - c[2]);
    let (top_d, bottom_d) = (c[1] + c[3], c[1] - c[3]);
    [
        level_shift(top + top_d, 3),
        level_shift(top - top_d, 3),
        level_shift(bottom + bottom_d, 3),
        level_shift(bottom - bottom_d, 3),
    ]
}

/// Flat blocks (no AC among the kept coefficients: most chroma and smooth
/// areas) are their mean, without the transform.
#[inline(always)]
fn flat<const N: usize>(coef: &[i32], out: &mut [u8], stride: usize) -> bool {
    if coef[1..N * N].iter().fold(0, |a, &c| a | c) != 0 {
        return false;
    }
    let v = level_shift(coef[0], 3);
    for y in 0..N {
        out[y * stride..y * stride + N].fill(v);
    }
    true
}

/// The 4×4 IDCT: a 4-point IDCT down the columns, then along the rows, as
/// butterflies (6 multiplies a pass instead of 16), in 13-bit fixed
/// point like [`block_8`]. With w(u) = C(u)/2 · cos((2x+1)uπ/8): the
/// even part is (c0 ± c2)/(2√2), the odd part mixes c1 and c3 by
/// cos(π/8)/2 and cos(3π/8)/2.
#[inline(never)]
fn block_4(coef: &[i32], out: &mut [u8], stride: usize) {
    dispatch!(
        block_4_v3(coef, out, stride),
        block_4_body(coef, out, stride)
    )
}

v3_copy! {
    fn block_4_v3(coef: &[i32], out: &mut [u8], stride: usize) {
        if !flat::<4>(coef, out, stride) {
            store_4(sse41::samples(coef), out, stride);
        }
    }
}

#[inline(always)]
fn block_4_body(coef: &[i32], out: &mut [u8], stride: usize) {
    if !flat::<4>(coef, out, stride) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        store_4(simd128::samples(coef), out, stride);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        store_4(lanes4::samples(coef), out, stride);
    }
}

/// The 4×4 block's samples, row by row, into `out`.
#[inline(always)]
fn store_4(samples: [u8; 16], out: &mut [u8], stride: usize) {
    // Indexed, not `chunks_mut(stride)`, whose chunk count is a division.
    for (y, s) in samples.chunks_exact(4).enumerate() {
        out[y * stride..y * stride + 4].copy_from_slice(s);
    }
}

/// The 4×4 IDCT over a backend's `V` (4 × i32, one row of the block) and
/// its `load`, `splat`, `add`, `sub`, `mul`, `shr`, `transpose` and
/// `bytes`. Each pass is four 4-point IDCTs side by side: the rows of
/// coefficients are the lanes of the column pass, and after a transpose
/// the rows of its result are those of the row pass. Written for vectors
/// by hand because the compiler made the 4×4 case scalar, twice the
/// instructions of the vectors. `$attr` is what the kernel needs to be
/// compiled for the backend.
macro_rules! idct_4_kernel {
    ($(#[$attr:meta])*) => {
        /// One pass: 4-point IDCTs in 13-bit fixed point, shifted right
        /// by `descale` (rounded). With w(u) = C(u)/2 · cos((2x+1)uπ/8):
        /// the even part is (c0 ± c2)/(2√2), the odd part mixes c1 and c3
        /// by cos(π/8)/2 and cos(3π/8)/2 (2896, 3784 and 1567 over 2^13).
        $(#[$attr])*
        fn pass(c: [V; 4], descale: u32) -> [V; 4] {
            let e0 = mul(add(c[0], c[2]), 2896);
            let e1 = mul(sub(c[0], c[2]), 2896);
            let o0 = add(mul(c[1], 3784), mul(c[3], 1567));
            let o1 = sub(mul(c[1], 1567), mul(c[3], 3784));
            let round = splat(1 << (descale - 1));
            let (e0, e1) = (add(e0, round), add(e1, round));
            [
                shr(add(e0, o0), descale),
                shr(add(e1, o1), descale),
                shr(sub(e1, o1), descale),
                shr(sub(e0, o0), descale),
            ]
        }

        /// The samples of the 4×4 block whose dequantised coefficients
        /// are `coef[..16]` (vertical frequency by row), row by row.
        $(#[$attr])*
        pub fn samples(coef: &[i32]) -> [u8; 16] {
            let rows = [load(&coef[0..4]), load(&coef[4..8]), load(&coef[8..12]), load(&coef[12..16])];
            let columns = pass(rows, FIX_BITS - PASS1_BITS);
            bytes(transpose(pass(transpose(columns), FIX_BITS + PASS1_BITS)))
        }
    };
}

/// x86-64 with SSE4.1 (for its 32-bit multiply): called from the
/// x86-64-v3 copy, which has it.
#[cfg(target_arch = "x86_64")]
mod sse41 {
    use super::{FIX_BITS, PASS1_BITS};
    use std::arch::x86_64::*;

    type V = __m128i;

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn load(c: &[i32]) -> V {
        let mut a = [0i32; 4];
        a.copy_from_slice(c);
        _mm_set_epi32(a[3], a[2], a[1], a[0])
    }

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn splat(v: i32) -> V {
        _mm_set1_epi32(v)
    }

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn add(a: V, b: V) -> V {
        _mm_add_epi32(a, b)
    }

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn sub(a: V, b: V) -> V {
        _mm_sub_epi32(a, b)
    }

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn mul(a: V, k: i32) -> V {
        _mm_mullo_epi32(a, _mm_set1_epi32(k))
    }

    /// Arithmetic shift right.
    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn shr(a: V, n: u32) -> V {
        _mm_sra_epi32(a, _mm_cvtsi32_si128(n as i32))
    }

    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn transpose(m: [V; 4]) -> [V; 4] {
        let (t0, t1) = (
            _mm_unpacklo_epi32(m[0], m[1]),
            _mm_unpacklo_epi32(m[2], m[3]),
        );
        let (t2, t3) = (
            _mm_unpackhi_epi32(m[0], m[1]),
            _mm_unpackhi_epi32(m[2], m[3]),
        );
        [
            _mm_unpacklo_epi64(t0, t1),
            _mm_unpackhi_epi64(t0, t1),
            _mm_unpacklo_epi64(t2, t3),
            _mm_unpackhi_epi64(t2, t3),
        ]
    }

    /// Level-shifted by 128 and clamped to 0..=255: saturating to i16,
    /// then to u8, is the clamp.
    #[target_feature(enable = "sse4.1")]
    #[inline]
    fn bytes(m: [V; 4]) -> [u8; 16] {
        let shift = _mm_set1_epi32(128);
        let m = m.map(|v| _mm_add_epi32(v, shift));
        let packed = _mm_packus_epi16(_mm_packs_epi32(m[0], m[1]), _mm_packs_epi32(m[2], m[3]));
        let mut out = [0u8; 16];
        // SAFETY: `out` is 16 bytes, the store's width; unaligned is allowed.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), packed) };
        out
    }

    idct_4_kernel!(#[target_feature(enable = "sse4.1")]);
}

/// wasm32 built with simd128 (all our edge builds: `.cargo/config.toml`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{FIX_BITS, PASS1_BITS};
    use std::arch::wasm32::*;

    type V = v128;

    #[inline(always)]
    fn load(c: &[i32]) -> V {
        i32x4(c[0], c[1], c[2], c[3])
    }

    #[inline(always)]
    fn splat(v: i32) -> V {
        i32x4_splat(v)
    }

    #[inline(always)]
    fn add(a: V, b: V) -> V {
        i32x4_add(a, b)
    }

    #[inline(always)]
    fn sub(a: V, b: V) -> V {
        i32x4_sub(a, b)
    }

    #[inline(always)]
    fn mul(a: V, k: i32) -> V {
        i32x4_mul(a, i32x4_splat(k))
    }

    #[inline(always)]
    fn shr(a: V, n: u32) -> V {
        i32x4_shr(a, n)
    }

    #[inline(always)]
    fn transpose(m: [V; 4]) -> [V; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(m[0], m[1]);
        let t1 = i32x4_shuffle::<0, 4, 1, 5>(m[2], m[3]);
        let t2 = i32x4_shuffle::<2, 6, 3, 7>(m[0], m[1]);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(m[2], m[3]);
        [
            i64x2_shuffle::<0, 2>(t0, t1),
            i64x2_shuffle::<1, 3>(t0, t1),
            i64x2_shuffle::<0, 2>(t2, t3),
            i64x2_shuffle::<1, 3>(t2, t3),
        ]
    }

    #[inline(always)]
    fn bytes(m: [V; 4]) -> [u8; 16] {
        let m = m.map(|v| i32x4_add(v, i32x4_splat(128)));
        let packed = u8x16_narrow_i16x8(
            i16x8_narrow_i32x4(m[0], m[1]),
            i16x8_narrow_i32x4(m[2], m[3]),
        );
        u128::to_le_bytes(
            u128::from(u64x2_extract_lane::<0>(packed))
                | u128::from(u64x2_extract_lane::<1>(packed)) << 64,
        )
    }

    idct_4_kernel!();
}

/// Plain arrays: other targets, x86-64 without v3, and the tests' check
/// of the vector backends against the same kernel.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
mod lanes4 {
    use super::{FIX_BITS, PASS1_BITS};

    type V = [i32; 4];

    #[inline(always)]
    fn load(c: &[i32]) -> V {
        let mut a = [0; 4];
        a.copy_from_slice(c);
        a
    }

    #[inline(always)]
    fn splat(v: i32) -> V {
        [v; 4]
    }

    #[inline(always)]
    fn add(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i].wrapping_add(b[i]))
    }

    #[inline(always)]
    fn sub(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i].wrapping_sub(b[i]))
    }

    #[inline(always)]
    fn mul(a: V, k: i32) -> V {
        a.map(|v| v.wrapping_mul(k))
    }

    #[inline(always)]
    fn shr(a: V, n: u32) -> V {
        a.map(|v| v >> n)
    }

    #[inline(always)]
    fn transpose(m: [V; 4]) -> [V; 4] {
        std::array::from_fn(|i| std::array::from_fn(|j| m[j][i]))
    }

    #[inline(always)]
    fn bytes(m: [V; 4]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (o, v) in out.iter_mut().zip(m.as_flattened()) {
            *o = v.wrapping_add(128).clamp(0, 255) as u8;
        }
        out
    }

    idct_4_kernel!();
}

/// The full 8×8 IDCT: columns, then rows, each an 8-point IDCT by
/// Loeffler's factorisation (12 multiplies, as libjpeg's `jidctint.c`) in
/// 13-bit fixed point, which scales each pass by 2√2, so the result is 8×
/// the samples. Integer, because wasm's float-to-byte conversions are
/// slow; wrapping, because hostile coefficients may overflow (their
/// output is garbage, never a panic). A column whose AC is all zero (most
/// of them) is its DC, without the transform.
#[inline(never)]
fn block_8(coef: &[i32], out: &mut [u8], stride: usize) {
    dispatch!(
        block_8_v3(coef, out, stride),
        block_8_body(coef, out, stride)
    )
}

v3_copy! {
    fn block_8_v3(coef: &[i32], out: &mut [u8], stride: usize) {
        block_8_body(coef, out, stride)
    }
}

#[inline(always)]
fn block_8_body(coef: &[i32], out: &mut [u8], stride: usize) {
    if !flat::<8>(coef, out, stride) {
        lanes_8(coef, out, stride);
    }
}

/// Columns, then rows, of the 8-point IDCT, each pass over all eight
/// columns (then rows) at once: the same arithmetic lane by lane, which
/// compiles to SIMD (a column at a time did not), so the same samples as
/// a column at a time.
#[inline(always)]
fn lanes_8(coef: &[i32], out: &mut [u8], stride: usize) {
    // rows[v][u]: the coefficients, vertical frequency by row.
    let mut rows = [[0i32; 8]; 8];
    for (row, c) in rows.iter_mut().zip(coef[..64].chunks_exact(8)) {
        row.copy_from_slice(c);
    }
    // Down the columns: [y][u]; then along the rows, transposed: [x][y].
    let columns = idct_8_lanes(&rows, FIX_BITS - PASS1_BITS);
    let mut across = [[0i32; 8]; 8];
    for (u, line) in across.iter_mut().enumerate() {
        for (y, v) in line.iter_mut().enumerate() {
            *v = columns[y][u];
        }
    }
    // Each pass scales by 2√2: 8 in all, 3 bits.
    let samples = idct_8_lanes(&across, FIX_BITS + PASS1_BITS + 3);
    // Indexed, not `chunks_mut(stride)`, whose chunk count is a division.
    for y in 0..8 {
        let line = &mut out[y * stride..y * stride + 8];
        for (x, px) in line.iter_mut().enumerate() {
            *px = samples[x][y].wrapping_add(128).clamp(0, 255) as u8;
        }
    }
}

/// [`idct_8`] of each lane i of `c` (`c[k][i]` its k-th input).
#[inline(always)]
fn idct_8_lanes(c: &[[i32; 8]; 8], descale: u32) -> [[i32; 8]; 8] {
    let mut out = [[0i32; 8]; 8];
    for i in 0..8 {
        let r = idct_8(std::array::from_fn(|k| Wrapping(c[k][i])), descale);
        for (o, v) in out.iter_mut().zip(r) {
            o[i] = v.0;
        }
    }
    out
}

/// Fixed-point bits of the IDCT's constants.
const FIX_BITS: u32 = 13;

/// Bits of precision kept between the two passes.
const PASS1_BITS: u32 = 2;

/// One 8-point IDCT, scaled by 2√2 · 2^13 and then shifted right by
/// `descale` (rounded).
#[inline(always)]
fn idct_8(c: [Wrapping<i32>; 8], descale: u32) -> [Wrapping<i32>; 8] {
    let k = |v: i32| Wrapping(v);
    // Even part: a 4-point IDCT of c0, c2, c4, c6.
    let z1 = (c[2] + c[6]) * k(4433);
    let (t2, t3) = (z1 - c[6] * k(15137), z1 + c[2] * k(6270));
    let (t0, t1) = (
        (c[0] + c[4]) << FIX_BITS as usize,
        (c[0] - c[4]) << FIX_BITS as usize,
    );
    let e = [t0 + t3, t1 + t2, t1 - t2, t0 - t3];
    // Odd part: c7, c5, c3, c1 by the rotations of the factorisation.
    let (a0, a1, a2, a3) = (c[7], c[5], c[3], c[1]);
    let z5 = (a0 + a2 + a1 + a3) * k(9633);
    let z1 = (a0 + a3) * k(-7373);
    let z2 = (a1 + a2) * k(-20995);
    let z3 = (a0 + a2) * k(-16069) + z5;
    let z4 = (a1 + a3) * k(-3196) + z5;
    let o0 = a0 * k(2446) + z1 + z3;
    let o1 = a1 * k(16819) + z2 + z4;
    let o2 = a2 * k(25172) + z2 + z3;
    let o3 = a3 * k(12299) + z1 + z4;
    let round = k(1 << (descale - 1));
    let d = |v: Wrapping<i32>| (v + round) >> descale as usize;
    [
        d(e[0] + o3),
        d(e[1] + o2),
        d(e[2] + o1),
        d(e[3] + o0),
        d(e[3] - o0),
        d(e[2] - o1),
        d(e[1] - o2),
        d(e[0] - o3),
    ]
}

/// `v / 2^shift`, rounded, level-shifted and clamped to 8 bits.
#[inline(always)]
fn level_shift(v: i32, shift: u32) -> u8 {
    ((v.saturating_add(1 << (shift - 1)) >> shift) + 128).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    /// An 8×8 block's samples from all 64 coefficients (the textbook
    /// IDCT), in natural order.
    fn full_idct(coef: &[f32; 64]) -> [f32; 64] {
        let c = |u: usize| if u == 0 { 1.0 / 2f32.sqrt() } else { 1.0 };
        let mut out = [0f32; 64];
        for y in 0..8 {
            for x in 0..8 {
                let mut s = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        s += c(u)
                            * c(v)
                            * coef[v * 8 + u]
                            * (((2 * x + 1) * u) as f32 * PI / 16.0).cos()
                            * (((2 * y + 1) * v) as f32 * PI / 16.0).cos();
                    }
                }
                out[y * 8 + x] = s / 4.0 + 128.0;
            }
        }
        out
    }

    /// One scaled 4-point IDCT, a column at a time: the reference for the
    /// 4×4 kernels.
    fn idct_4(c: [Wrapping<i32>; 4], descale: u32) -> [Wrapping<i32>; 4] {
        // 1/(2√2), cos(π/8)/2 and cos(3π/8)/2, times 2^13.
        let (k0, k1, k3) = (Wrapping(2896), Wrapping(3784), Wrapping(1567));
        let (e0, e1) = ((c[0] + c[2]) * k0, (c[0] - c[2]) * k0);
        let (o0, o1) = (c[1] * k1 + c[3] * k3, c[1] * k3 - c[3] * k1);
        let round = Wrapping(1 << (descale - 1));
        let d = |v: Wrapping<i32>| (v + round) >> descale as usize;
        [d(e0 + o0), d(e1 + o1), d(e1 - o1), d(e0 - o0)]
    }

    /// The reference for [`lanes_8`] and the 4×4 kernels: columns, then
    /// rows, one at a time, a column whose AC is all zero taken as its DC's
    /// transform.
    fn separable<const N: usize>(
        coef: &[i32],
        out: &mut [u8],
        stride: usize,
        idct: impl Fn([Wrapping<i32>; N], u32) -> [Wrapping<i32>; N],
        gain_bits: u32,
    ) {
        // t[y][u]: vertical pass done.
        let mut t = [[Wrapping(0i32); N]; N];
        for u in 0..N {
            let column: [Wrapping<i32>; N] = std::array::from_fn(|v| Wrapping(coef[v * N + u]));
            let f = if column[1..].iter().all(|v| v.0 == 0) {
                let mut dc = [Wrapping(0); N];
                dc[0] = column[0];
                [idct(dc, FIX_BITS - PASS1_BITS)[0]; N]
            } else {
                idct(column, FIX_BITS - PASS1_BITS)
            };
            for (y, v) in f.into_iter().enumerate() {
                t[y][u] = v;
            }
        }
        for (y, row) in t.into_iter().enumerate() {
            let line = &mut out[y * stride..y * stride + N];
            for (px, v) in line
                .iter_mut()
                .zip(idct(row, FIX_BITS + PASS1_BITS + gain_bits))
            {
                *px = v.0.wrapping_add(128).clamp(0, 255) as u8;
            }
        }
    }

    #[test]
    fn lanes_give_the_column_at_a_times_samples() {
        // Coefficients over the whole range, sparse and dense, including
        // ones that overflow (garbage in, the same garbage out).
        let mut seed = 1u32;
        for case in 0..2000 {
            let mut coef = [0i32; 64];
            for (k, c) in coef.iter_mut().enumerate() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let keep = case % 4 == 0 || k % (1 + case % 9) == 0;
                let range = if case == 7 { i32::MAX } else { 2048 * 16 };
                if keep {
                    *c = (seed >> 1) as i32 % range - range / 2;
                }
            }
            let (mut a, mut b) = ([0u8; 80], [0u8; 80]);
            lanes_8(&coef, &mut a, 10);
            separable::<8>(&coef, &mut b, 10, idct_8, 3);
            assert_eq!(a, b, "8×8, case {case}");
            // The 4×4 transform from the block's first 16.
            let (mut a, mut b) = ([0u8; 40], [0u8; 40]);
            separable::<4>(&coef, &mut b, 10, idct_4, 0);
            store_4(lanes4::samples(&coef), &mut a, 10);
            assert_eq!(a, b, "4×4, case {case}");
            #[cfg(target_arch = "x86_64")]
            if crate::cpu::v3() {
                // SAFETY: the CPU has v3, so SSE4.1.
                store_4(unsafe { sse41::samples(&coef) }, &mut a, 10);
                assert_eq!(a, b, "4×4 (SSE4.1), case {case}");
            }
        }
    }

    #[test]
    fn the_2x2_vector_gives_the_scalar_samples() {
        let bound = 1 << 20;
        let mut seed = 7u32;
        let mut cases = vec![
            [bound; 4],
            [-bound; 4],
            [bound, -bound, bound, -bound],
            [0; 4],
        ];
        for _ in 0..20_000 {
            cases.push(std::array::from_fn(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Mostly near the 8-bit range, some far past it.
                let range = if seed.is_multiple_of(5) {
                    2 * bound
                } else {
                    4096
                };
                (seed >> 1) as i32 % range - range / 2
            }));
        }
        for c in cases {
            assert_eq!(samples_2(&c), samples_2_scalar(&c), "{c:?}");
        }
    }

    #[test]
    fn scaled_blocks_are_the_means_of_smooth_blocks() {
        // A smooth block (low frequencies only): each n×n sample is close
        // to the mean of the (8/n)×(8/n) pixels it stands for.
        let mut coef = [0f32; 64];
        coef[0] = 200.0;
        coef[1] = -60.0;
        coef[8] = 40.0;
        coef[9] = 15.0;
        let full = full_idct(&coef);
        for n in [1usize, 2, 4, 8] {
            let mut low = [0i32; 64];
            for v in 0..n {
                for u in 0..n {
                    low[v * n + u] = coef[v * 8 + u] as i32;
                }
            }
            let mut out = [0u8; 64];
            match n {
                1 => block::<1>(&[low[0]], &mut out, n),
                2 => block::<4>(&low[..4].try_into().unwrap(), &mut out, n),
                4 => block::<16>(&low[..16].try_into().unwrap(), &mut out, n),
                _ => block::<64>(&low, &mut out, n),
            }
            let f = 8 / n;
            for y in 0..n {
                for x in 0..n {
                    let mut sum = 0.0;
                    for yy in 0..f {
                        for xx in 0..f {
                            sum += full[(y * f + yy) * 8 + x * f + xx];
                        }
                    }
                    let mean = sum / (f * f) as f32;
                    let got = out[y * n + x] as f32;
                    // Full scale is the exact transform, up to rounding.
                    let tolerance = if n == 8 { 1.0 } else { 4.0 };
                    assert!(
                        (got - mean).abs() < tolerance,
                        "n {n} ({x},{y}): {got} vs {mean}"
                    );
                }
            }
        }
    }
}
