//! PNG's row filters undone (PNG spec §9), for 8-bit samples, 1 to 4
//! bytes a pixel.
//!
//! Paeth takes most of a PNG's decode time. Each pixel is predicted from
//! its left neighbour, which was only just computed, so a row is one long
//! dependency chain: it runs at the chain's latency, about ten cycles a
//! pixel, however wide the machine. Two consecutive Paeth rows can run
//! together if the lower one stays a pixel behind: it needs the pixels
//! above and above-left, and both are finished by then. [`paeth_pair`]
//! keeps both rows in one 128-bit vector (the upper row's pixel in lanes
//! 0–3, the lower row's in lanes 4–7, as `i16`), so two chains share each
//! step. A row is not split; a row alone takes [`row`].
//!
//! The kernels are written once (`kernels!`) over three backends: SSE2
//! (x86-64's baseline), simd128 (our wasm builds) and plain arrays
//! elsewhere, which LLVM vectorises as it can. Measured on the corpus
//! PNGs' Paeth rows (3840×2160 RGB): 35 ms a row at a time as the png
//! crate does, 21 ms in pairs natively; under V8 63 ms and 22 ms.

/// The filter types (PNG spec §9.2), by their byte.
const NONE: u8 = 0;
const SUB: u8 = 1;
const UP: u8 = 2;
const AVERAGE: u8 = 3;
pub const PAETH: u8 = 4;

/// An unknown filter type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFilter(pub u8);

/// Undoes `filter` on one row. `x` is the filtered row (without its type
/// byte), `prev` the row above as already unfiltered (zeros for the
/// first), `out` where the row goes; all three are `bpp`-byte pixels and
/// the same length, and `bpp` is 1 to 4.
pub fn row(filter: u8, bpp: usize, prev: &[u8], x: &[u8], out: &mut [u8]) -> Result<(), BadFilter> {
    match bpp {
        1 => row_n::<1>(filter, prev, x, out),
        2 => row_n::<2>(filter, prev, x, out),
        3 => row_n::<3>(filter, prev, x, out),
        _ => row_n::<4>(filter, prev, x, out),
    }
}

/// Two consecutive Paeth rows: `x0` below `prev`, `x1` below `x0`, into
/// `out0` and `out1`. Lengths and `bpp` as for [`row`].
pub fn paeth_pair(bpp: usize, prev: &[u8], x0: &[u8], x1: &[u8], out0: &mut [u8], out1: &mut [u8]) {
    match bpp {
        1 => pair_n::<1>(prev, x0, x1, out0, out1),
        2 => pair_n::<2>(prev, x0, x1, out0, out1),
        3 => pair_n::<3>(prev, x0, x1, out0, out1),
        _ => pair_n::<4>(prev, x0, x1, out0, out1),
    }
}

fn row_n<const B: usize>(
    filter: u8,
    prev: &[u8],
    x: &[u8],
    out: &mut [u8],
) -> Result<(), BadFilter> {
    let n = out.len().min(x.len()).min(prev.len());
    let (prev, x, out) = (&prev[..n], &x[..n], &mut out[..n]);
    match filter {
        NONE => out.copy_from_slice(x),
        SUB => {
            out[..B.min(n)].copy_from_slice(&x[..B.min(n)]);
            for i in B..n {
                out[i] = x[i].wrapping_add(out[i - B]);
            }
        }
        UP => {
            for ((o, &x), &b) in out.iter_mut().zip(x).zip(prev) {
                *o = x.wrapping_add(b);
            }
        }
        AVERAGE => {
            for i in 0..n {
                let a = if i >= B { out[i - B] } else { 0 };
                out[i] = x[i].wrapping_add(((u16::from(a) + u16::from(prev[i])) >> 1) as u8);
            }
        }
        PAETH => paeth_row::<B>(prev, x, out),
        other => return Err(BadFilter(other)),
    }
    Ok(())
}

fn paeth_row<const B: usize>(prev: &[u8], x: &[u8], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64's baseline; every x86-64 CPU has it.
    unsafe {
        sse2::paeth_row::<B>(prev, x, out)
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    simd128::paeth_row::<B>(prev, x, out);
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    lanes::paeth_row::<B>(prev, x, out);
}

fn pair_n<const B: usize>(prev: &[u8], x0: &[u8], x1: &[u8], out0: &mut [u8], out1: &mut [u8]) {
    let n = [x0.len(), x1.len(), out0.len(), out1.len()]
        .into_iter()
        .fold(prev.len(), usize::min);
    if n < B {
        // No pixels (a row is never shorter than one pixel, but the
        // kernel's first step assumes one).
        return;
    }
    let (prev, x0, x1) = (&prev[..n], &x0[..n], &x1[..n]);
    let (out0, out1) = (&mut out0[..n], &mut out1[..n]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64's baseline; every x86-64 CPU has it.
    unsafe {
        sse2::paeth_pair::<B>(prev, x0, x1, out0, out1)
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    simd128::paeth_pair::<B>(prev, x0, x1, out0, out1);
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    lanes::paeth_pair::<B>(prev, x0, x1, out0, out1);
}

/// The two Paeth kernels, over a backend's `V` (8 × i16) and its `load`,
/// `join`, `high`, `predict`, `add` and `bytes`. `$attr` is what each
/// kernel needs to be compiled for the backend (SSE2's feature).
macro_rules! kernels {
    ($(#[$attr:meta])*) => {
        /// One row, a pixel a step (lanes 0–3).
        $(#[$attr])*
        pub fn paeth_row<const B: usize>(prev: &[u8], x: &[u8], out: &mut [u8]) {
            let (mut a, mut c) = (zero(), zero());
            let mut i = 0;
            while i + B <= out.len() {
                let b = load::<B>(prev, i);
                let o = add(load::<B>(x, i), predict(a, b, c));
                out[i..i + B].copy_from_slice(&bytes(o)[..B]);
                (a, c) = (o, b);
                i += B;
            }
        }

        /// Two rows, the lower (lanes 4–7) a pixel behind the upper
        /// (lanes 0–3). Each step's `b` for the lower row is the upper
        /// row's previous output, and its `c` the previous step's `b`.
        $(#[$attr])*
        pub fn paeth_pair<const B: usize>(
            prev: &[u8],
            x0: &[u8],
            x1: &[u8],
            out0: &mut [u8],
            out1: &mut [u8],
        ) {
            let n = out0.len();
            // The upper row's first pixel: a = c = 0 predicts b.
            let b = load::<B>(prev, 0);
            let mut out = add(load::<B>(x0, 0), b);
            out0[..B].copy_from_slice(&bytes(out)[..B]);
            // The lower row's pixel -1 (lanes 4–7 of `out`) and the upper
            // row's pixel -1 (lanes 4–7 of `b`) are zero.
            let mut c = b;
            let mut i = B;
            while i + B <= n {
                let b = join(load::<B>(prev, i), out);
                let x = join(load::<B>(x0, i), load::<B>(x1, i - B));
                out = add(x, predict(out, b, c));
                let done = bytes(out);
                out0[i..i + B].copy_from_slice(&done[..B]);
                out1[i - B..i].copy_from_slice(&done[4..4 + B]);
                c = b;
                i += B;
            }
            // The lower row's last pixel, alone in lanes 0–3.
            let (a, b, c) = (high(out), out, high(c));
            let last = add(load::<B>(x1, i - B), predict(a, b, c));
            out1[i - B..i].copy_from_slice(&bytes(last)[..B]);
        }
    };
}

/// x86-64: SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    type V = __m128i;

    #[target_feature(enable = "sse2")]
    #[inline]
    fn zero() -> V {
        _mm_setzero_si128()
    }

    /// A pixel's `B` bytes into lanes 0..B, the rest zero.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn load<const B: usize>(s: &[u8], at: usize) -> V {
        let mut w = [0u8; 4];
        w[..B].copy_from_slice(&s[at..at + B]);
        _mm_unpacklo_epi8(
            _mm_cvtsi32_si128(i32::from_le_bytes(w)),
            _mm_setzero_si128(),
        )
    }

    /// Lanes 0–3 of `lo`, then lanes 0–3 of `hi`.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn join(lo: V, hi: V) -> V {
        _mm_unpacklo_epi64(lo, hi)
    }

    /// Lanes 4–7 moved to 0–3.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn high(v: V) -> V {
        _mm_unpackhi_epi64(v, v)
    }

    /// Paeth's predictor in stb_image's branch-free form, equal to the
    /// spec's: lanes are `i16`, so `3c - (a + b)` cannot overflow.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn predict(a: V, b: V, c: V) -> V {
        let thresh = _mm_sub_epi16(_mm_add_epi16(c, _mm_add_epi16(c, c)), _mm_add_epi16(a, b));
        let lo = _mm_min_epi16(a, b);
        let hi = _mm_max_epi16(a, b);
        let use_c = _mm_cmpgt_epi16(hi, thresh);
        let t0 = _mm_or_si128(_mm_and_si128(use_c, c), _mm_andnot_si128(use_c, lo));
        let use_t0 = _mm_cmpgt_epi16(thresh, lo);
        _mm_or_si128(_mm_and_si128(use_t0, t0), _mm_andnot_si128(use_t0, hi))
    }

    /// `(x + p) mod 256` per lane.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn add(x: V, p: V) -> V {
        _mm_and_si128(_mm_add_epi16(x, p), _mm_set1_epi16(0xff))
    }

    /// Lanes 0–7 as bytes (each is 0..=255 already).
    #[target_feature(enable = "sse2")]
    #[inline]
    fn bytes(v: V) -> [u8; 8] {
        (_mm_cvtsi128_si64(_mm_packus_epi16(v, v)) as u64).to_le_bytes()
    }

    kernels!(#[target_feature(enable = "sse2")]);
}

/// wasm32 built with simd128 (all our edge builds: `.cargo/config.toml`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use std::arch::wasm32::*;

    type V = v128;

    #[inline(always)]
    fn zero() -> V {
        u16x8_splat(0)
    }

    #[inline(always)]
    fn load<const B: usize>(s: &[u8], at: usize) -> V {
        let mut w = [0u8; 4];
        w[..B].copy_from_slice(&s[at..at + B]);
        u16x8_extend_low_u8x16(u32x4(u32::from_le_bytes(w), 0, 0, 0))
    }

    #[inline(always)]
    fn join(lo: V, hi: V) -> V {
        i64x2_shuffle::<0, 2>(lo, hi)
    }

    #[inline(always)]
    fn high(v: V) -> V {
        i64x2_shuffle::<1, 1>(v, v)
    }

    #[inline(always)]
    fn predict(a: V, b: V, c: V) -> V {
        let thresh = i16x8_sub(i16x8_add(c, i16x8_add(c, c)), i16x8_add(a, b));
        let lo = i16x8_min(a, b);
        let hi = i16x8_max(a, b);
        let t0 = v128_bitselect(c, lo, i16x8_gt(hi, thresh));
        v128_bitselect(t0, hi, i16x8_gt(thresh, lo))
    }

    #[inline(always)]
    fn add(x: V, p: V) -> V {
        v128_and(i16x8_add(x, p), u16x8_splat(0xff))
    }

    #[inline(always)]
    fn bytes(v: V) -> [u8; 8] {
        u64x2_extract_lane::<0>(u8x16_narrow_i16x8(v, v)).to_le_bytes()
    }

    kernels!();
}

/// Plain arrays: other targets, and the tests' check of the vector
/// backends against the same kernels.
#[cfg_attr(
    any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ),
    allow(dead_code)
)]
mod lanes {
    type V = [i16; 8];

    #[inline(always)]
    fn zero() -> V {
        [0; 8]
    }

    #[inline(always)]
    fn load<const B: usize>(s: &[u8], at: usize) -> V {
        let mut v = [0; 8];
        for (l, &byte) in v.iter_mut().zip(&s[at..at + B]) {
            *l = i16::from(byte);
        }
        v
    }

    #[inline(always)]
    fn join(lo: V, hi: V) -> V {
        [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
    }

    #[inline(always)]
    fn high(v: V) -> V {
        [v[4], v[5], v[6], v[7], v[4], v[5], v[6], v[7]]
    }

    #[inline(always)]
    fn predict(a: V, b: V, c: V) -> V {
        std::array::from_fn(|k| {
            let thresh = 3 * c[k] - (a[k] + b[k]);
            let (lo, hi) = (a[k].min(b[k]), a[k].max(b[k]));
            let t0 = if hi <= thresh { lo } else { c[k] };
            if thresh <= lo {
                hi
            } else {
                t0
            }
        })
    }

    #[inline(always)]
    fn add(x: V, p: V) -> V {
        std::array::from_fn(|k| (x[k] + p[k]) & 0xff)
    }

    #[inline(always)]
    fn bytes(v: V) -> [u8; 8] {
        v.map(|l| l as u8)
    }

    kernels!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's own Paeth predictor (§9.4), as written there.
    fn spec_paeth(a: u8, b: u8, c: u8) -> u8 {
        let p = i16::from(a) + i16::from(b) - i16::from(c);
        let (pa, pb, pc) = (
            (p - i16::from(a)).abs(),
            (p - i16::from(b)).abs(),
            (p - i16::from(c)).abs(),
        );
        if pa <= pb && pa <= pc {
            a
        } else if pb <= pc {
            b
        } else {
            c
        }
    }

    /// Every filter undone byte by byte, as the spec states it.
    fn spec_row(filter: u8, bpp: usize, prev: &[u8], x: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; x.len()];
        for i in 0..x.len() {
            let a = if i >= bpp { out[i - bpp] } else { 0 };
            let c = if i >= bpp { prev[i - bpp] } else { 0 };
            let b = prev[i];
            let p = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                _ => spec_paeth(a, b, c),
            };
            out[i] = x[i].wrapping_add(p);
        }
        out
    }

    /// Bytes that reach every branch of Paeth: runs of equal values,
    /// extremes and noise.
    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                match (s >> 28) % 4 {
                    0 => 0,
                    1 => 255,
                    2 => (i / 7) as u8,
                    _ => (s >> 20) as u8,
                }
            })
            .collect()
    }

    #[test]
    fn every_filter_matches_the_spec() {
        for bpp in 1..=4 {
            for pixels in [1, 2, 3, 17, 64] {
                let n = bpp * pixels;
                let prev = bytes(n, 7 * bpp as u32 + pixels as u32);
                let x = bytes(n, 1_000 + n as u32);
                for filter in 0..=4 {
                    let mut out = vec![0u8; n];
                    row(filter, bpp, &prev, &x, &mut out).unwrap();
                    assert_eq!(
                        out,
                        spec_row(filter, bpp, &prev, &x),
                        "filter {filter}, bpp {bpp}, {pixels} px"
                    );
                }
            }
        }
        let mut out = [0u8; 3];
        assert_eq!(row(5, 3, &[0; 3], &[0; 3], &mut out), Err(BadFilter(5)));
    }

    #[test]
    fn a_pair_of_paeth_rows_equals_two_rows_one_after_the_other() {
        for bpp in 1..=4 {
            for pixels in [1, 2, 5, 33] {
                let n = bpp * pixels;
                let prev = bytes(n, 3 + bpp as u32);
                let (x0, x1) = (bytes(n, 11 * n as u32), bytes(n, 13 * n as u32 + 1));
                let want0 = spec_row(PAETH, bpp, &prev, &x0);
                let want1 = spec_row(PAETH, bpp, &want0, &x1);
                let (mut out0, mut out1) = (vec![0u8; n], vec![0u8; n]);
                paeth_pair(bpp, &prev, &x0, &x1, &mut out0, &mut out1);
                assert_eq!((&out0, &out1), (&want0, &want1), "bpp {bpp}, {pixels} px");
                // The portable kernels, which other targets run.
                let (mut out0, mut out1) = (vec![0u8; n], vec![0u8; n]);
                match bpp {
                    1 => lanes::paeth_pair::<1>(&prev, &x0, &x1, &mut out0, &mut out1),
                    2 => lanes::paeth_pair::<2>(&prev, &x0, &x1, &mut out0, &mut out1),
                    3 => lanes::paeth_pair::<3>(&prev, &x0, &x1, &mut out0, &mut out1),
                    _ => lanes::paeth_pair::<4>(&prev, &x0, &x1, &mut out0, &mut out1),
                }
                assert_eq!((&out0, &out1), (&want0, &want1), "portable, bpp {bpp}");
                let mut one = vec![0u8; n];
                match bpp {
                    1 => lanes::paeth_row::<1>(&prev, &x0, &mut one),
                    2 => lanes::paeth_row::<2>(&prev, &x0, &mut one),
                    3 => lanes::paeth_row::<3>(&prev, &x0, &mut one),
                    _ => lanes::paeth_row::<4>(&prev, &x0, &mut one),
                }
                assert_eq!(one, want0, "portable row, bpp {bpp}");
            }
        }
    }

    #[test]
    fn paeth_agrees_with_the_spec_for_every_neighbourhood() {
        // All 2^24 (a, b, c) would be slow in debug; every a, b with a
        // spread of c covers each ordering and tie.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in [
                    0,
                    1,
                    a,
                    b,
                    a.wrapping_add(1),
                    b.wrapping_sub(1),
                    127,
                    128,
                    254,
                    255,
                ] {
                    // Pixel 0 is predicted as c (its b), so it comes out
                    // as a; pixel 1 then has neighbours a, b and c.
                    let (prev, x) = ([c, b], [a.wrapping_sub(c), 0]);
                    let mut out = [0u8; 2];
                    row(PAETH, 1, &prev, &x, &mut out).unwrap();
                    assert_eq!(out[1], spec_paeth(a, b, c), "a {a} b {b} c {c}");
                }
            }
        }
    }
}
