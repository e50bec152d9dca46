//! Entropy coding: each block's symbols, for the sequential scans of
//! baseline JPEG and the first scans of progressive JPEG (DC, then AC with
//! runs of empty blocks), and where they go: into a [`Tally`] that counts
//! them for optimal tables, or a [`BitWriter`] that writes them.
//!
//! Coded coefficients are found from a bit mask of the nonzero ones, so a
//! block costs a step per nonzero coefficient, not one per coefficient.

use super::huffman::{Codes, Counts};

/// Which of the four tables a symbol is coded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    DcLuma = 0,
    DcChroma = 1,
    AcLuma = 2,
    AcChroma = 3,
}

/// Where symbols go.
pub trait Sink {
    /// `symbol` in `table`'s code, then `extra` in its low `extra_len` bits.
    fn emit(&mut self, table: Table, symbol: u8, extra: u32, extra_len: u32);
}

/// Counts symbols, for [`Counts::optimal`].
#[derive(Debug, Default)]
pub struct Tally(pub [Counts; 4]);

impl Sink for Tally {
    #[inline(always)]
    fn emit(&mut self, table: Table, symbol: u8, _: u32, _: u32) {
        self.0[table as usize].0[symbol as usize] += 1;
    }
}

/// Writes the entropy-coded segment: most significant bit first, a zero
/// byte stuffed after every 0xFF.
pub struct BitWriter {
    pub out: Vec<u8>,
    /// Bits not yet written, in the low `pending` bits.
    acc: u64,
    pending: u32,
    pub codes: [Codes; 4],
}

impl BitWriter {
    pub fn new(out: Vec<u8>, codes: [Codes; 4]) -> Self {
        BitWriter {
            out,
            acc: 0,
            pending: 0,
            codes,
        }
    }

    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        // At most 31 pending plus 16 + 14 here: 61 bits.
        self.acc = (self.acc << len) | bits as u64;
        self.pending += len;
        if self.pending >= 32 {
            self.pending -= 32;
            let word = (self.acc >> self.pending) as u32;
            self.word(word);
        }
    }

    #[inline(always)]
    fn word(&mut self, word: u32) {
        // Whether a byte is 0xFF: a zero byte of !word.
        let inverted = !word;
        if inverted.wrapping_sub(0x0101_0101) & !inverted & 0x8080_8080 == 0 {
            self.out.extend_from_slice(&word.to_be_bytes());
        } else {
            for byte in word.to_be_bytes() {
                self.byte(byte);
            }
        }
    }

    #[inline(always)]
    fn byte(&mut self, byte: u8) {
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
    }

    /// Pads the last byte with ones and writes what is pending, as a scan
    /// must end.
    pub fn flush(&mut self) {
        let pad = (8 - self.pending % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.pending >= 8 {
            self.pending -= 8;
            self.byte((self.acc >> self.pending) as u8);
        }
        self.acc = 0;
    }
}

impl Sink for BitWriter {
    #[inline(always)]
    fn emit(&mut self, table: Table, symbol: u8, extra: u32, extra_len: u32) {
        let (code, len) = self.codes[table as usize].get(symbol);
        self.put(((code as u32) << extra_len) | extra, len as u32 + extra_len);
    }
}

/// The size category of every magnitude a coefficient can have.
static SIZES: [u8; 2048] = sizes();

const fn sizes() -> [u8; 2048] {
    let mut t = [0u8; 2048];
    let mut v = 1;
    while v < 2048 {
        t[v] = (32 - (v as u32).leading_zeros()) as u8;
        v += 1;
    }
    t
}

/// A value's size category and its bits as JPEG codes them (negative
/// values as their one's complement).
#[inline(always)]
fn category(value: i32) -> (u32, u32) {
    let magnitude = value.unsigned_abs() as usize;
    // Coefficients are within ±1023 and DC differences ±2046; the table
    // is a load where counting bits is three dependent instructions.
    let size = match SIZES.get(magnitude) {
        Some(&s) => s as u32,
        None => 32 - (magnitude as u32).leading_zeros(),
    };
    let bits = if value < 0 { value - 1 } else { value } as u32 & ((1u32 << size) - 1);
    (size, bits)
}

/// The DC difference from the previous block of the same component.
#[inline(always)]
pub fn dc<S: Sink>(sink: &mut S, table: Table, block: &[i16; 64], previous: &mut i16) {
    let (size, bits) = category(block[0] as i32 - *previous as i32);
    sink.emit(table, size as u8, bits, size);
    *previous = block[0];
}

/// Bit k set where AC coefficient k (zigzag) is nonzero.
#[inline(always)]
fn nonzero_ac(block: &[i16; 64]) -> u64 {
    let mut mask = 0u64;
    // Sixteen at a time, a shape the compiler turns into one compare and
    // a move-mask.
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let mut m = 0u16;
        for (k, &c) in chunk.iter().enumerate() {
            m |= ((c != 0) as u16) << k;
        }
        mask |= (m as u64) << (16 * i);
    }
    mask & !1
}

/// Codes the nonzero AC coefficients in `mask`: each as a run of zeros
/// before it (sixteen at a time as ZRL) and its size. Returns the last
/// coded position, 0 if none.
#[inline(always)]
fn ac_runs<S: Sink>(sink: &mut S, table: Table, block: &[i16; 64], mut mask: u64) -> u32 {
    let mut last = 0;
    while mask != 0 {
        let k = mask.trailing_zeros();
        let mut run = k - last - 1;
        while run > 15 {
            sink.emit(table, 0xF0, 0, 0);
            run -= 16;
        }
        let (size, bits) = category(block[k as usize] as i32);
        sink.emit(table, (run << 4 | size) as u8, bits, size);
        last = k;
        mask &= mask - 1;
    }
    last
}

/// The AC coefficients of a sequential scan: an end-of-block after the
/// last nonzero one, unless that is the 63rd.
#[inline(always)]
pub fn ac_sequential<S: Sink>(sink: &mut S, table: Table, block: &[i16; 64]) {
    if ac_runs(sink, table, block, nonzero_ac(block)) != 63 {
        sink.emit(table, 0x00, 0, 0);
    }
}

/// The most blocks one end-of-band run codes (EOB14 with 14 bits).
const EOB_RUN_MAX: u32 = 0x7FFF;

/// The AC coefficients of a progressive first scan over the whole band
/// (1..=63): a block that ends in zeros joins a run of such blocks, coded
/// once when the run ends (G.1.2.2).
#[inline(always)]
pub fn ac_first<S: Sink>(sink: &mut S, table: Table, block: &[i16; 64], eob_run: &mut u32) {
    let mask = nonzero_ac(block);
    if mask != 0 {
        end_of_bands(sink, table, eob_run);
        if ac_runs(sink, table, block, mask) == 63 {
            return;
        }
    }
    *eob_run += 1;
    if *eob_run == EOB_RUN_MAX {
        end_of_bands(sink, table, eob_run);
    }
}

/// Codes a pending run of blocks that ended early: EOBn, n = ⌊log2 run⌋,
/// then the run's low n bits.
#[inline(always)]
pub fn end_of_bands<S: Sink>(sink: &mut S, table: Table, eob_run: &mut u32) {
    if *eob_run == 0 {
        return;
    }
    let n = 31 - eob_run.leading_zeros();
    sink.emit(table, (n << 4) as u8, *eob_run & ((1 << n) - 1), n);
    *eob_run = 0;
}

#[cfg(test)]
mod tests {
    use super::super::huffman;
    use super::*;

    fn standard() -> [Codes; 4] {
        [
            Codes::new(&huffman::dc_luma()),
            Codes::new(&huffman::dc_chroma()),
            Codes::new(&huffman::ac_luma()),
            Codes::new(&huffman::ac_chroma()),
        ]
    }

    #[test]
    fn categories_are_the_standards() {
        assert_eq!(category(0), (0, 0));
        assert_eq!(category(1), (1, 1));
        assert_eq!(category(-1), (1, 0));
        assert_eq!(category(-3), (2, 0));
        assert_eq!(category(5), (3, 5));
        assert_eq!(category(-1023), (10, 0));
        assert_eq!(category(1023), (10, 1023));
    }

    #[test]
    fn ff_bytes_are_stuffed_and_the_end_padded_with_ones() {
        let mut w = BitWriter::new(Vec::new(), standard());
        w.put(0xFFFF_FF00, 32);
        w.put(0b101, 3);
        w.flush();
        assert_eq!(w.out, [0xFF, 0, 0xFF, 0, 0xFF, 0, 0x00, 0b1011_1111]);
    }

    #[test]
    fn runs_of_sixteen_zeros_and_end_of_block() {
        let mut block = [0i16; 64];
        block[20] = 3;
        let mut tally = Tally::default();
        ac_sequential(&mut tally, Table::AcLuma, &block);
        let counts = &tally.0[Table::AcLuma as usize].0;
        // 19 zeros: one ZRL, a run of 3 before a size-2 value, then EOB.
        assert_eq!((counts[0xF0], counts[0x32], counts[0x00]), (1, 1, 1));
        // A block full to the 63rd has no EOB.
        block[63] = -1;
        let mut tally = Tally::default();
        ac_sequential(&mut tally, Table::AcLuma, &block);
        assert_eq!(tally.0[Table::AcLuma as usize].0[0x00], 0);
    }

    #[test]
    fn empty_blocks_join_one_end_of_band_run() {
        let mut tally = Tally::default();
        let mut run = 0;
        let empty = [0i16; 64];
        for _ in 0..5 {
            ac_first(&mut tally, Table::AcLuma, &empty, &mut run);
        }
        let mut one = [0i16; 64];
        one[1] = 1;
        // The run of 5 is coded (EOB2) before this block's coefficient;
        // its own end starts the next run.
        ac_first(&mut tally, Table::AcLuma, &one, &mut run);
        assert_eq!(run, 1);
        end_of_bands(&mut tally, Table::AcLuma, &mut run);
        let counts = &tally.0[Table::AcLuma as usize].0;
        assert_eq!((counts[0x20], counts[0x01], counts[0x00]), (1, 1, 1));
    }
}
