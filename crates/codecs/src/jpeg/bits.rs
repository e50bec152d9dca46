//! Entropy-coded bits: the bit reader and Huffman tables (JPEG F.2.2).
//!
//! Both are on the hot path of every JPEG decode (Huffman decoding is most
//! of a baseline decode's time), so:
//! - the reader keeps a 64-bit window, refilled eight bytes at a time when
//!   no `FF` is among them, and only when under 32 bits are left (enough
//!   for any code and its value);
//! - its slow paths take and return plain values, so the window can stay
//!   in registers in the loops that use it;
//! - tables resolve codes of up to [`LOOKUP_BITS`] bits in one lookup
//!   (almost every code), and also the coefficient's value (an AC value or
//!   a DC difference) when it fits in the same bits (libjpeg-turbo and
//!   stb_image do the same for AC);
//! - AC tables also skip several whole coefficients (codes and values)
//!   in one lookup of [`SKIP_BITS`], for the part of a block a reduced
//!   scale drops: there only where the block ends matters.

use std::cell::OnceCell;

use super::{corrupt, DecodeError};

/// Codes up to this long decode in one table lookup.
const LOOKUP_BITS: u32 = 10;

/// Dropped coefficients are skipped this many bits at a time. The
/// corpus's 5120×2880 baseline JPEG to 400 px, natively: 23.7 ms at 10
/// bits, 21.3 at 11, 20.6 at 12 (16 KiB a table), 20.3 at 13 (32 KiB).
pub const SKIP_BITS: u32 = 12;

/// What a table codes (its DHT class): DC differences, a size then that
/// many bits; or AC run/size pairs, where size 0 is an end of block or a
/// run of 16 zeros, not a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    Dc,
    Ac,
}

/// A canonical Huffman table.
pub struct Huffman {
    /// By the next `LOOKUP_BITS` bits: `(length << 8) | symbol`, or 0 when
    /// the code is longer.
    lookup: Box<[u16; 1 << LOOKUP_BITS]>,
    /// By the same bits: a whole coefficient when its code and value fit,
    /// `value << 16 | run << 8 | bits used`, or 0. DC tables: run 0, and a
    /// difference of 0 (size 0) is one. AC tables: never an end of block
    /// or a run of 16 zeros.
    fast: Box<[i32; 1 << LOOKUP_BITS]>,
    /// Made on first use (only reduced-scale sequential scans use it).
    skips: OnceCell<Skips>,
    /// Largest code of each length (1..=16), or -1.
    max_code: [i32; 17],
    /// Index into `symbols` of the first code of each length, minus it.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    pub fn new(class: Class, counts: &[u8; 16], symbols: &[u8]) -> Result<Huffman, DecodeError> {
        let mut max_code = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut lookup = Box::new([0u16; 1 << LOOKUP_BITS]);
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            if n > 0 {
                offset[len as usize] = k as i32 - code;
                for i in 0..n {
                    let c = code + i as i32;
                    if c >= 1 << len {
                        return Err(corrupt("Huffman table has too many codes"));
                    }
                    if len <= LOOKUP_BITS {
                        // Every window that starts with this code.
                        let first = (c as usize) << (LOOKUP_BITS - len);
                        let entry = ((len as u16) << 8) | symbols[k + i] as u16;
                        lookup[first..first + (1 << (LOOKUP_BITS - len))].fill(entry);
                    }
                }
                code += n as i32;
                k += n;
                max_code[len as usize] = code - 1;
            }
            code <<= 1;
        }
        // Codes whose value bits also fit in the window.
        let mut fast = Box::new([0i32; 1 << LOOKUP_BITS]);
        for (window, (&entry, fast)) in lookup.iter().zip(fast.iter_mut()).enumerate() {
            if entry == 0 {
                continue;
            }
            let (len, symbol) = ((entry >> 8) as u32, entry as u8);
            let (run, size) = match class {
                // Sizes over 11 are refused by the slow path.
                Class::Dc if symbol <= 11 => (0, symbol as u32),
                Class::Ac if symbol & 15 != 0 => ((symbol >> 4) as i32, (symbol & 15) as u32),
                _ => continue,
            };
            if len + size > LOOKUP_BITS {
                continue;
            }
            let bits = (window as u32 >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
            let value = extend(bits, size);
            *fast = (value << 16) | (run << 8) | (len + size) as i32;
        }
        Ok(Huffman {
            lookup,
            fast,
            skips: OnceCell::new(),
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }

    /// This table, read as an AC table, as a skip lookup (made once).
    pub fn skips(&self) -> &Skips {
        self.skips.get_or_init(|| {
            let mut by_window = Box::new([0u32; 1 << SKIP_BITS]);
            for (window, entry) in by_window.iter_mut().enumerate() {
                *entry = self.skip_entry(window as u32);
            }
            Skips(by_window)
        })
    }

    /// The whole AC symbols at the start of a `SKIP_BITS` window, up to
    /// and including an end of block.
    fn skip_entry(&self, window: u32) -> u32 {
        let (mut used, mut advance, mut eob, mut symbols) = (0u32, 0u32, false, 0);
        while used < SKIP_BITS {
            let rest = SKIP_BITS - used;
            // The rest of the window, left-aligned in 16 bits (zeros after
            // it, which a code that fits in `rest` never reaches).
            let bits = ((window << used) & ((1 << SKIP_BITS) - 1)) << (16 - SKIP_BITS);
            let entry = self.lookup[(bits >> (16 - LOOKUP_BITS)) as usize];
            let (len, rs) = if entry != 0 {
                ((entry >> 8) as u32, entry as u8)
            } else {
                match self.decode_long(bits) {
                    Ok(code) => code,
                    Err(_) => break,
                }
            };
            let (run, size) = ((rs >> 4) as u32, (rs & 15) as u32);
            if len + size > rest {
                break;
            }
            used += len + size;
            symbols += 1;
            if size == 0 && run != 15 {
                eob = true;
                break;
            }
            advance += if size == 0 { 16 } else { run + 1 };
        }
        if symbols == 0 {
            return 0;
        }
        Skip::pack(used, advance, eob)
    }

    /// The next symbol. The reader must hold at least 16 bits (refilled).
    #[inline(always)]
    pub fn decode(&self, r: &mut BitReader) -> Result<u8, BadData> {
        let entry = self.lookup[r.peek(LOOKUP_BITS) as usize];
        if entry != 0 {
            r.consume((entry >> 8) as u32);
            return Ok(entry as u8);
        }
        let (len, symbol) = self.decode_long(r.peek(16))?;
        r.consume(len);
        Ok(symbol)
    }

    /// An AC coefficient decoded whole from the window, as `(run, value)`,
    /// if its code and value fit in [`LOOKUP_BITS`]. Needs 16 bits.
    #[inline(always)]
    pub fn fast_ac(&self, r: &mut BitReader) -> Option<(usize, i32)> {
        let fast = self.fast[r.peek(LOOKUP_BITS) as usize];
        if fast == 0 {
            return None;
        }
        r.consume((fast & 0xFF) as u32);
        Some((((fast >> 8) & 0xFF) as usize, fast >> 16))
    }

    /// A DC difference decoded whole from the window, if its code and
    /// value fit in [`LOOKUP_BITS`]: at reduced scales a block is little
    /// more than its DC, and the lookup, shift and sign extension that
    /// this one lookup replaces were 6–11 % of a baseline decode. Needs 16
    /// bits.
    /// The same entries as [`Self::fast_ac`], whose run is 0 in a DC table.
    #[inline(always)]
    pub fn fast_dc(&self, r: &mut BitReader) -> Option<i32> {
        self.fast_ac(r).map(|(_, value)| value)
    }

    /// A code longer than the lookup: its length and symbol, from the
    /// next 16 bits.
    #[cold]
    #[inline(never)]
    fn decode_long(&self, window: u32) -> Result<(u32, u8), BadData> {
        let window = window as i32;
        for len in LOOKUP_BITS + 1..=16 {
            let code = window >> (16 - len);
            if code <= self.max_code[len as usize] {
                let i = (code + self.offset[len as usize]) as usize;
                return self
                    .symbols
                    .get(i)
                    .map(|&s| (len, s))
                    .ok_or(BadData("bad Huffman code"));
            }
        }
        Err(BadData("bad Huffman code"))
    }
}

/// By the next [`SKIP_BITS`] bits: the whole AC symbols (codes and
/// values) there, as a [`Skip`] entry, or 0 if not even one fits.
pub struct Skips(Box<[u32; 1 << SKIP_BITS]>);

impl Skips {
    #[inline(always)]
    pub fn get(&self, r: &BitReader) -> u32 {
        self.0[r.peek(SKIP_BITS) as usize]
    }
}

/// Bad entropy-coded data, with its reason. Small (a static string) so
/// the per-block decoders return it in registers: returning a
/// [`DecodeError`] (a `String` inside) went through memory at every block.
#[derive(Debug, Clone, Copy)]
pub struct BadData(pub &'static str);

impl From<BadData> for DecodeError {
    fn from(e: BadData) -> DecodeError {
        corrupt(e.0)
    }
}

/// A skip entry's fields, packed in a `u32`: bits used (0..8), zigzag
/// positions advanced (8..16), positions needed before the end of the
/// block (16..24: the advance, plus one if an end of block follows, which
/// must itself start inside the block), end of block (24).
pub struct Skip;

impl Skip {
    fn pack(used: u32, advance: u32, eob: bool) -> u32 {
        used | (advance << 8) | ((advance + eob as u32) << 16) | ((eob as u32) << 24)
    }

    #[inline(always)]
    pub fn used(e: u32) -> u32 {
        e & 0xFF
    }

    #[inline(always)]
    pub fn advance(e: u32) -> usize {
        ((e >> 8) & 0xFF) as usize
    }

    #[inline(always)]
    pub fn needed(e: u32) -> usize {
        ((e >> 16) & 0xFF) as usize
    }

    #[inline(always)]
    pub fn end_of_block(e: u32) -> bool {
        e >> 24 != 0
    }
}

/// JPEG's EXTEND: `size` bits as a signed coefficient.
#[inline(always)]
fn extend(v: u32, size: u32) -> i32 {
    let v = v as i32;
    if size == 0 {
        0
    } else if v < 1 << (size - 1) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// Reads entropy-coded bits: `FF 00` is a data `FF`; any other marker ends
/// the data (RSTn markers are stepped over by [`BitReader::restart`]), and
/// past the end every bit is 0, as libjpeg does with a warning.
#[derive(Clone, Copy)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Valid bits are the top `bits` of `acc`.
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
        }
    }

    /// Bytes read so far (the window may hold some not yet consumed).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Makes sure the window holds at least 32 bits (any code and its
    /// value); when it refills, it fills to at least 57.
    #[inline(always)]
    pub fn refill(&mut self) {
        if self.bits >= 32 {
            return;
        }
        // Fast path: eight bytes with no `FF` among them.
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let x = u64::from_be_bytes(word);
            let has_ff = (!x).wrapping_sub(0x0101_0101_0101_0101) & x & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let n = (64 - self.bits) / 8;
                let take = if n == 8 { x } else { x >> (64 - 8 * n) };
                self.acc |= take << (64 - self.bits - 8 * n);
                self.bits += 8 * n;
                self.pos += n as usize;
                return;
            }
        }
        (self.pos, self.acc, self.bits) = refill_slow(self.data, self.pos, self.acc, self.bits);
    }

    /// The next `n` (1..=16) bits, not consumed.
    #[inline(always)]
    pub fn peek(&self, n: u32) -> u32 {
        (self.acc >> (64 - n)) as u32
    }

    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.bits = self.bits.saturating_sub(n);
    }

    /// `n` (0..=16) bits as an unsigned number; the window must hold them.
    #[inline(always)]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// Skips `n` bits, refilling as needed.
    #[inline(always)]
    pub fn skip(&mut self, mut n: u32) {
        while n > 0 {
            self.refill();
            let step = n.min(32);
            self.consume(step);
            n -= step;
        }
    }

    /// One bit, refilling as needed.
    #[inline(always)]
    pub fn bit(&mut self) -> u32 {
        self.refill();
        self.bits(1)
    }

    /// `size` (0..=15) bits as a signed coefficient (JPEG's EXTEND).
    #[inline(always)]
    pub fn receive_extend(&mut self, size: u32) -> i32 {
        let v = self.bits(size);
        extend(v, size)
    }

    /// At a restart interval: drop what is left of the window (the padding
    /// bits of the interval) and step over the RSTn marker and any fill
    /// bytes before it.
    pub fn restart(&mut self) {
        self.acc = 0;
        self.bits = 0;
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        if self.data.get(self.pos) == Some(&0xFF)
            && self
                .data
                .get(self.pos + 1)
                .is_some_and(|m| (0xD0..=0xD7).contains(m))
        {
            self.pos += 2;
        }
    }
}

/// Byte by byte, across stuffed bytes, to at least 57 bits; at a marker or
/// the end, zeros without moving. Takes and returns the reader's state
/// (position, window, bit count) so the reader itself never escapes.
#[cold]
#[inline(never)]
fn refill_slow(data: &[u8], mut pos: usize, mut acc: u64, mut bits: u32) -> (usize, u64, u32) {
    while bits <= 56 {
        let byte = match data.get(pos) {
            Some(&0xFF) if data.get(pos + 1) == Some(&0x00) => {
                pos += 2;
                0xFF
            }
            Some(&0xFF) | None => 0,
            Some(&b) => {
                pos += 1;
                b
            }
        };
        acc |= (byte as u64) << (56 - bits);
        bits += 8;
    }
    (pos, acc, bits)
}

/// Whether a restart marker comes before coding unit `unit` (counted from
/// 0 in its scan), with a restart every `interval` units (0: none).
#[inline(always)]
pub fn restart_due(interval: u32, unit: u32) -> bool {
    interval > 0 && unit > 0 && unit.is_multiple_of(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_stuffed_bytes_and_stops_at_markers() {
        // 0xA5, a stuffed FF, 0x3C, then a marker: zeros after it.
        let data = [0xA5, 0xFF, 0x00, 0x3C, 0xFF, 0xD9, 0x12];
        let mut r = BitReader::new(&data);
        r.refill();
        assert_eq!(r.bits(8), 0xA5);
        assert_eq!(r.bits(8), 0xFF);
        assert_eq!(r.bits(4), 0x3);
        assert_eq!(r.bits(4), 0xC);
        assert_eq!(r.bits(16), 0);
        // Fast path: eight plain bytes at once, in order.
        let data: Vec<u8> = (1..=20).collect();
        let mut r = BitReader::new(&data);
        for want in 1..=20u32 {
            r.refill();
            assert_eq!(r.bits(8), want);
        }
    }

    #[test]
    fn long_and_short_codes_decode() {
        // One code of each length 1..=12 (the last two share length 12).
        let mut counts = [0u8; 16];
        counts[..11].fill(1);
        counts[11] = 2;
        let symbols: Vec<u8> = (0..13).collect();
        let h = Huffman::new(Class::Ac, &counts, &symbols).unwrap();
        // Canonical codes: 0, 10, 110, ..., 11111111110 (11 bits), then
        // 111111111110 and 111111111111 (12 bits).
        let mut stream = Vec::new();
        let mut acc: u64 = 0;
        let mut n = 0;
        let codes: Vec<(u64, u32)> = (1..=11u32)
            .map(|len| (((1u64 << len) - 2), len))
            .chain([(0xFFE, 12), (0xFFF, 12)])
            .collect();
        for &(code, len) in &codes {
            acc = (acc << len) | code;
            n += len;
            while n >= 8 {
                let b = (acc >> (n - 8)) as u8;
                stream.push(b);
                if b == 0xFF {
                    stream.push(0);
                }
                n -= 8;
            }
        }
        // Padded with 1s, as encoders do; an FF is stuffed there too.
        stream.extend([((acc << (8 - n)) as u8) | ((1 << (8 - n)) - 1), 0]);
        let mut r = BitReader::new(&stream);
        for want in 0..13u8 {
            r.refill();
            assert_eq!(h.decode(&mut r).unwrap(), want);
        }
    }

    /// The one-lookup DC difference is what the symbol and then its bits
    /// read, with the same bits consumed, for every 16-bit window.
    #[test]
    fn fast_dc_reads_what_the_symbol_and_its_bits_read() {
        use crate::jpeg_encode::huffman::{dc_chroma, dc_luma};
        for spec in [dc_luma(), dc_chroma()] {
            let h = Huffman::new(Class::Dc, &spec.bits, &spec.values).unwrap();
            let mut fast_ones = 0;
            for window in 0..=u16::MAX {
                let mut data = Vec::new();
                for b in window.to_be_bytes() {
                    data.push(b);
                    if b == 0xFF {
                        data.push(0);
                    }
                }
                data.extend([0x5A, 0x3C, 0x00]);
                let mut fast = BitReader::new(&data);
                fast.refill();
                let mut slow = fast;
                let Some(v) = h.fast_dc(&mut fast) else {
                    continue;
                };
                fast_ones += 1;
                let size = h.decode(&mut slow).unwrap() as u32;
                assert_eq!(slow.receive_extend(size), v, "window {window:#06x}");
                assert_eq!((fast.acc, fast.bits), (slow.acc, slow.bits));
            }
            // All but the codes whose value runs past the window.
            assert!(fast_ones > 60_000, "{fast_ones}");
        }
    }

    #[test]
    fn over_full_tables_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes
        assert!(Huffman::new(Class::Dc, &counts, &[1, 2, 3]).is_err());
    }
}
