//! Entropy decoding of one block (JPEG F.2.2 for sequential frames, G.1.2
//! for progressive ones), keeping only the coefficients the scaled IDCT
//! needs. Every symbol is still read (the format leaves no other way to
//! find where the next one starts), but nothing else is stored.

use super::bits::{BadData, BitReader, Huffman, Skip, Skips};
use super::{corrupt, DecodeError};
use crate::cpu::v3_copy;

/// The natural (row-major 8×8) index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

const DROPPED: u8 = u8::MAX;

/// Which coefficients a scale keeps: the top-left n×n, stored in rows of
/// n, by zigzag position.
pub struct Keep {
    slot: [u8; 64],
    /// The kept zigzag positions, as a mask.
    mask: u64,
    /// The last kept zigzag position (0 if none is kept): past it a block
    /// is only skipped.
    pub last: usize,
    /// n × n.
    pub count: usize,
}

impl Keep {
    pub fn new(n: usize) -> Keep {
        let mut slot = [DROPPED; 64];
        let mut mask = 0u64;
        for (z, &nat) in ZIGZAG.iter().enumerate() {
            let (v, u) = (nat as usize / 8, nat as usize % 8);
            if v < n && u < n {
                slot[z] = (v * n + u) as u8;
                mask |= 1 << z;
            }
        }
        Keep {
            slot,
            mask,
            last: 63usize.saturating_sub(mask.leading_zeros() as usize),
            count: n * n,
        }
    }

    /// Where zigzag position `k` is kept, if it is.
    #[inline(always)]
    pub fn slot(&self, k: usize) -> Option<usize> {
        match self.slot.get(k) {
            Some(&s) if s != DROPPED => Some(s as usize),
            _ => None,
        }
    }

    /// Whether any position in `ss..=se` is kept.
    pub fn any(&self, ss: usize, se: usize) -> bool {
        self.mask & band(ss, se) != 0
    }
}

/// A DC difference, added to the component's predictor.
#[inline(always)]
fn dc_difference(r: &mut BitReader, dc: &Huffman, pred: &mut i32) -> Result<i32, BadData> {
    r.refill();
    let difference = match dc.fast_dc(r) {
        Some(v) => v,
        None => {
            let size = dc.decode(r)? as u32;
            if size > 11 {
                return Err(BadData("DC difference over 11 bits"));
            }
            r.receive_extend(size)
        }
    };
    *pred = pred.wrapping_add(difference);
    Ok(*pred)
}

/// A sequential (baseline) block: its `K` kept coefficients, quantised,
/// into `out` (which the caller zeroes). Past the last kept position the rest
/// of the block is skipped with `skips` (`ac`'s, needed when the scale
/// drops any position). Not inlined: in its own small frame the reader's
/// window stays in registers (inlined into the scan loop it was spilled
/// to the stack at every coefficient: +30% time).
#[inline(never)]
pub fn sequential<const K: usize>(
    reader: &mut BitReader,
    dc: &Huffman,
    ac: &Huffman,
    skips: Option<&Skips>,
    pred: &mut i32,
    keep: &Keep,
    out: &mut [i32; K],
) -> Result<(), BadData> {
    // A copy whose address never escapes, so it lives in registers.
    let mut r = *reader;
    out[0] = dc_difference(&mut r, dc, pred)?;
    let mut k = 1;
    while k <= keep.last {
        r.refill();
        if let Some((run, v)) = ac.fast_ac(&mut r) {
            k += run;
            if let Some(o) = keep.slot(k).and_then(|s| out.get_mut(s)) {
                *o = v;
            }
            k += 1;
            continue;
        }
        let rs = ac.decode(&mut r)?;
        let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
        if size == 0 {
            if run != 15 {
                *reader = r;
                return Ok(()); // end of block
            }
            k += 16;
            continue;
        }
        k += run;
        let v = r.receive_extend(size);
        // A run past 63 is tolerated as libjpeg does: the value is dropped.
        if let Some(o) = keep.slot(k).and_then(|s| out.get_mut(s)) {
            *o = v;
        }
        k += 1;
    }
    if let (Some(skips), true) = (skips, k < 64) {
        skip_rest(&mut r, ac, skips, k)?;
    }
    *reader = r;
    Ok(())
}

/// Skips a sequential block's symbols from zigzag position `k` to its
/// end, several at a time where the block's end cannot be among them
/// (only then is each read exactly as one at a time would read it).
#[inline(always)]
fn skip_rest(r: &mut BitReader, ac: &Huffman, skips: &Skips, mut k: usize) -> Result<(), BadData> {
    while k < 64 {
        r.refill();
        // A refill leaves at least 32 bits: room for two lookups.
        let mut taken = false;
        for _ in 0..2 {
            let e = skips.get(r);
            if e == 0 || k + Skip::needed(e) > 64 {
                break;
            }
            r.consume(Skip::used(e));
            if Skip::end_of_block(e) {
                return Ok(());
            }
            k += Skip::advance(e);
            taken = true;
        }
        if taken {
            continue;
        }
        let rs = ac.decode(r)?;
        let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
        if size == 0 {
            if run != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        r.consume(size);
        k += run + 1;
    }
    Ok(())
}

fn to_i16(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// Progressive DC, first scan: the difference, shifted by `al`.
#[inline(always)]
pub fn dc_first(
    r: &mut BitReader,
    dc: &Huffman,
    pred: &mut i32,
    al: u32,
    coef: &mut i16,
) -> Result<(), DecodeError> {
    let v = dc_difference(r, dc, pred)?;
    *coef = to_i16(v.wrapping_shl(al));
    Ok(())
}

/// Progressive DC, refinement: one more bit.
#[inline(always)]
pub fn dc_refine(r: &mut BitReader, al: u32, coef: &mut i16) {
    if r.bit() == 1 {
        *coef |= 1 << al;
    }
}

/// The band of one progressive AC scan, and where the scan stands.
pub struct AcScan<'a> {
    pub huffman: Option<&'a Huffman>,
    pub ss: usize,
    pub se: usize,
    pub al: u32,
    /// Blocks still to skip inside an end-of-band run.
    pub eobrun: u32,
    /// `cpu::fast_pdep()` (asked once a scan, not once a block): private,
    /// so only [`AcScan::new`] sets it, from the CPU.
    #[cfg(target_arch = "x86_64")]
    pdep: bool,
}

impl<'a> AcScan<'a> {
    pub fn new(huffman: Option<&'a Huffman>, ss: usize, se: usize, al: u32, eobrun: u32) -> Self {
        AcScan {
            huffman,
            ss,
            se,
            al,
            eobrun,
            #[cfg(target_arch = "x86_64")]
            pdep: crate::cpu::fast_pdep(),
        }
    }
}

impl AcScan<'_> {
    /// Reads an end-of-band run length (`r` extra bits).
    #[inline(always)]
    fn band_run(r: &mut BitReader, run: u32) -> u32 {
        r.refill();
        (1 << run) + r.bits(run)
    }

    fn table(&self) -> Result<&Huffman, DecodeError> {
        self.huffman
            .ok_or_else(|| corrupt("scan uses an undefined AC table"))
    }

    /// A first AC scan of one block: new coefficients, shifted by `al`.
    pub fn first(
        &mut self,
        reader: &mut BitReader,
        keep: &Keep,
        coefs: &mut [i16],
        nonzero: &mut u64,
    ) -> Result<(), DecodeError> {
        if self.eobrun > 0 {
            self.eobrun -= 1;
            return Ok(());
        }
        let ac = self.table()?;
        // A copy whose address never escapes, so it lives in registers.
        let mut r = *reader;
        let mut k = self.ss;
        while k <= self.se {
            r.refill();
            let (run, v) = match ac.fast_ac(&mut r) {
                Some(coefficient) => coefficient,
                None => {
                    let rs = ac.decode(&mut r)?;
                    let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
                    if size == 0 {
                        if run < 15 {
                            self.eobrun = Self::band_run(&mut r, run as u32) - 1;
                            break;
                        }
                        k += 16;
                        continue;
                    }
                    (run, r.receive_extend(size))
                }
            };
            k += run;
            if k < 64 {
                *nonzero |= 1 << k;
                if let Some(s) = keep.slot(k) {
                    coefs[s] = to_i16(v.wrapping_shl(self.al));
                }
            }
            k += 1;
        }
        *reader = r;
        Ok(())
    }

    /// An AC refinement scan of one block: one more bit of every nonzero
    /// coefficient in the band (whether kept or not: the bits are
    /// interleaved with the rest), and coefficients that become ±1.
    /// Most of a progressive decode's time (63 % of a 2560×1600 photo's),
    /// so compiled twice: the v3 copy finds each new coefficient with
    /// PDEP where the CPU runs it fast, and counts bits with POPCNT.
    #[inline(always)]
    pub fn refine(
        &mut self,
        reader: &mut BitReader,
        keep: &Keep,
        coefs: &mut [i16],
        nonzero: &mut u64,
    ) -> Result<(), DecodeError> {
        #[cfg(target_arch = "x86_64")]
        if self.pdep {
            // SAFETY: `pdep` is `cpu::fast_pdep()`, which implies
            // `cpu::v3()`: the CPU has every feature the v3 copy uses.
            return unsafe { self.refine_v3(reader, keep, coefs, nonzero) };
        }
        self.refine_baseline(reader, keep, coefs, nonzero)
    }

    #[inline(never)]
    fn refine_baseline(
        &mut self,
        reader: &mut BitReader,
        keep: &Keep,
        coefs: &mut [i16],
        nonzero: &mut u64,
    ) -> Result<(), DecodeError> {
        self.refine_body::<false>(reader, keep, coefs, nonzero)
    }

    v3_copy! {
        #[inline(never)]
        fn refine_v3(
            &mut self,
            reader: &mut BitReader,
            keep: &Keep,
            coefs: &mut [i16],
            nonzero: &mut u64,
        ) -> Result<(), DecodeError> {
            self.refine_body::<true>(reader, keep, coefs, nonzero)
        }
    }

    /// Each copy is not inlined into the scan loop, for the same reason
    /// as [`sequential`]. `PDEP`: only in the v3 copy.
    #[inline(always)]
    fn refine_body<const PDEP: bool>(
        &mut self,
        reader: &mut BitReader,
        keep: &Keep,
        coefs: &mut [i16],
        nonzero: &mut u64,
    ) -> Result<(), DecodeError> {
        // A copy whose address never escapes, so it lives in registers.
        let mut r = *reader;
        let p1: i16 = 1 << self.al;
        let se = self.se.min(63);
        let mut k = self.ss;
        if self.eobrun == 0 {
            let ac = self.table()?;
            while k <= se {
                r.refill();
                let rs = ac.decode(&mut r)?;
                let (run, size) = ((rs >> 4) as u32, rs & 15);
                let mut value: i16 = 0;
                if size != 0 {
                    value = if r.bit() == 1 { p1 } else { -p1 };
                } else if run != 15 {
                    self.eobrun = Self::band_run(&mut r, run);
                    break;
                }
                // The coefficient that becomes `value`: the (run+1)th still
                // zero from k (past the band if there are not enough).
                let target = nth_zero::<PDEP>(*nonzero, k, se, run);
                // Nonzero ones on the way get their correction bit.
                let passed = if target > k { band(k, target - 1) } else { 0 };
                correct(&mut r, *nonzero & passed, keep, coefs, p1);
                k = target;
                if value != 0 && k <= se {
                    *nonzero |= 1 << k;
                    if let Some(s) = keep.slot(k) {
                        coefs[s] = value;
                    }
                }
                k += 1;
            }
        }
        if self.eobrun > 0 {
            if k <= se {
                correct(&mut r, *nonzero & band(k, se), keep, coefs, p1);
            }
            self.eobrun -= 1;
        }
        *reader = r;
        Ok(())
    }
}

/// The zigzag position of the (`run`+1)th coefficient in `k..=se` that is
/// not in `nonzero`, or `se + 1` if there are fewer. Counted off one at a
/// time, a loop whose length mispredicts on most symbols; with `PDEP`, in
/// one instruction (the caller must be the v3 copy, on a CPU with BMI2).
#[inline(always)]
fn nth_zero<const PDEP: bool>(nonzero: u64, k: usize, se: usize, run: u32) -> usize {
    let zeros = !nonzero & band(k, se);
    // Bits whose lowest is the wanted zero (none if there are too few).
    let nth = match () {
        // SAFETY: only the v3 copy sets `PDEP`, and it runs only where
        // `cpu::v3()` found BMI2.
        #[cfg(target_arch = "x86_64")]
        () if PDEP => unsafe { std::arch::x86_64::_pdep_u64(1u64 << run, zeros) },
        () => (0..run).fold(zeros, |z, _| z & z.wrapping_sub(1)),
    };
    if nth == 0 {
        se + 1
    } else {
        nth.trailing_zeros() as usize
    }
}

/// Zigzag positions `from..=to` as a mask (past 63 is left out).
#[inline(always)]
pub fn band(from: usize, to: usize) -> u64 {
    let to = to.min(63);
    if from > to {
        return 0;
    }
    (u64::MAX >> (63 - (to - from))) << from
}

/// Reads one correction bit for each coefficient in `live` (all nonzero,
/// in zigzag order) and applies those of kept coefficients: a bit sets
/// the next magnitude bit `p1` if not set yet. Bits of coefficients not
/// kept are skipped in bulk.
#[inline(always)]
fn correct(r: &mut BitReader, live: u64, keep: &Keep, coefs: &mut [i16], p1: i16) {
    let mut done = 0u32;
    let mut kept = live & keep.mask;
    while kept != 0 {
        let p = kept.trailing_zeros();
        kept &= kept - 1;
        // Bits for the live coefficients before p.
        let before = (live & ((1u64 << p) - 1)).count_ones();
        r.skip(before - done);
        done = before + 1;
        if r.bit() == 1 {
            if let Some(s) = keep.slot(p as usize) {
                let c = &mut coefs[s];
                if *c & p1 == 0 {
                    *c = if *c >= 0 {
                        c.saturating_add(p1)
                    } else {
                        c.saturating_sub(p1)
                    };
                }
            }
        }
    }
    r.skip(live.count_ones() - done);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::bits::Class;
    use crate::jpeg_encode::huffman::{ac_luma, dc_luma, Codes, Spec};

    /// xorshift64*: reproducible streams without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Mostly small numbers up to `max`, as real coefficients are.
        fn small(&mut self, max: u64) -> u64 {
            (self.below(max + 1)).min(self.below(max + 1))
        }
    }

    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Writer {
        fn put(&mut self, v: u64, len: u32) {
            self.acc = (self.acc << len) | (v & ((1 << len) - 1));
            self.n += len;
            while self.n >= 8 {
                let b = (self.acc >> (self.n - 8)) as u8;
                self.bytes.push(b);
                if b == 0xFF {
                    self.bytes.push(0);
                }
                self.n -= 8;
            }
        }

        fn finish(mut self) -> Vec<u8> {
            let pad = (8 - self.n % 8) % 8;
            self.put((1 << pad) - 1, pad);
            self.bytes
        }
    }

    /// `blocks` blocks of random symbols: long and short runs, zero runs
    /// (ZRL), blocks ended early and blocks that fill all 63 positions.
    fn random_blocks(rng: &mut Rng, blocks: usize) -> Vec<u8> {
        let (dc, ac) = (Codes::new(&dc_luma()), Codes::new(&ac_luma()));
        let mut w = Writer::default();
        for _ in 0..blocks {
            let size = rng.small(11) as u8;
            let (code, len) = dc.get(size);
            w.put(code as u64, len as u32);
            w.put(rng.next(), size as u32);
            let ends_early = rng.below(8) != 0;
            let mut k = 1;
            while k < 64 {
                if ends_early && rng.below(12) == 0 {
                    let (code, len) = ac.get(0x00);
                    w.put(code as u64, len as u32);
                    break;
                }
                if k + 16 < 64 && rng.below(30) == 0 {
                    let (code, len) = ac.get(0xF0);
                    w.put(code as u64, len as u32);
                    k += 16;
                    continue;
                }
                let run = (rng.small(15) as usize).min(63 - k) as u8;
                let size = 1 + rng.small(9) as u8;
                let (code, len) = ac.get(run << 4 | size);
                w.put(code as u64, len as u32);
                w.put(rng.next(), size as u32);
                k += run as usize + 1;
            }
        }
        w.finish()
    }

    fn table(class: Class, spec: &Spec) -> Huffman {
        Huffman::new(class, &spec.bits, &spec.values).unwrap()
    }

    /// Each block's DC and kept coefficients (natural order, n×n), until
    /// the first error.
    fn decode(data: &[u8], blocks: usize, n: usize) -> (Vec<[i32; 64]>, bool) {
        let (dc, ac) = (table(Class::Dc, &dc_luma()), table(Class::Ac, &ac_luma()));
        let keep = Keep::new(n);
        let skips = (keep.last < 63).then(|| ac.skips());
        let mut r = BitReader::new(data);
        let (mut pred, mut out) = (0, Vec::new());
        for _ in 0..blocks {
            let mut coef = [0i32; 64];
            if sequential(&mut r, &dc, &ac, skips, &mut pred, &keep, &mut coef).is_err() {
                return (out, true);
            }
            // Back to natural 8×8 positions.
            let mut natural = [0i32; 64];
            for v in 0..n {
                for u in 0..n {
                    natural[v * 8 + u] = coef[v * n + u];
                }
            }
            out.push(natural);
        }
        (out, false)
    }

    /// What a full decode gives, cut to the top-left n×n.
    fn cut(full: &[[i32; 64]], n: usize) -> Vec<[i32; 64]> {
        full.iter()
            .map(|block| {
                let mut kept = [0i32; 64];
                for v in 0..n {
                    for u in 0..n {
                        kept[v * 8 + u] = block[v * 8 + u];
                    }
                }
                kept
            })
            .collect()
    }

    #[test]
    fn skipping_reads_every_block_as_one_symbol_at_a_time_does() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..60 {
            let blocks = 200;
            let data = if round % 3 == 2 {
                // Noise: invalid codes, markers and all.
                (0..3000).map(|_| rng.next() as u8).collect()
            } else {
                random_blocks(&mut rng, blocks)
            };
            let (full, full_failed) = decode(&data, blocks, 8);
            if round % 3 != 2 {
                assert!(!full_failed && full.len() == blocks, "round {round}");
            }
            for n in [1, 2, 4] {
                let (ours, failed) = decode(&data, blocks, n);
                assert_eq!(failed, full_failed, "round {round}, n {n}");
                assert!(ours == cut(&full, n), "round {round}, n {n}");
            }
        }
    }

    /// PDEP finds the same coefficient as counting zeros off one at a
    /// time, dense and sparse histories, runs past the band's end included.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn pdep_finds_the_zero_that_counting_finds() {
        if !crate::cpu::v3() {
            eprintln!("no BMI2 on this CPU: only the counting form runs here");
            return;
        }
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..200_000 {
            let nonzero = match rng.below(3) {
                0 => rng.next(),
                1 => rng.next() | rng.next(),
                _ => rng.next() & rng.next(),
            };
            let k = rng.below(64) as usize;
            let se = k + rng.below(64 - k as u64) as usize;
            let run = rng.below(16) as u32;
            assert_eq!(
                nth_zero::<true>(nonzero, k, se, run),
                nth_zero::<false>(nonzero, k, se, run),
                "nonzero {nonzero:#x}, k {k}, se {se}, run {run}"
            );
        }
    }

    #[test]
    fn the_last_kept_position_follows_the_scale() {
        assert_eq!(Keep::new(8).last, 63);
        assert_eq!(Keep::new(4).last, 24);
        assert_eq!(Keep::new(2).last, 4);
        assert_eq!(Keep::new(1).last, 0);
        assert_eq!(Keep::new(0).last, 0);
    }
}
