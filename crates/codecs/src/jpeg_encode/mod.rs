//! The JPEG encoder for results: RGB rows in, a JFIF file of 4:2:0 YCbCr
//! out, in one of two [`Mode`]s. Rows are pushed as they come
//! ([`JpegWriter::push_rows`]), so a banded pipeline never holds the
//! picture; the whole-image case is [`encode_rgb`].
//!
//! Ours rather than a crate's because the result's encode was half the
//! time of a full-size transform: here the DCT runs eight lanes at a time
//! and each block's symbols are found from a mask of its nonzero
//! coefficients, and a progressive file holds its coefficients at two
//! bytes each (3 bytes a pixel), not planes and blocks of four.

mod entropy;
mod fdct;
pub(crate) mod huffman;
mod strip;

use crate::cpu::{dispatch, v3_copy};
use entropy::{BitWriter, Sink, Table, Tally};
use fdct::{Block, Quantizer};
use huffman::{Codes, Spec};
use strip::{Strip, ROWS};

/// Why no file was written: the caller's mistake, never the picture's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("JPEG encode: {0}×{1} is not a size JPEG can hold")]
    Size(u32, u32),
    #[error("JPEG encode: {0}")]
    Rows(&'static str),
}

/// How the file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sequential, with the standard's example Huffman tables, written as
    /// rows arrive: holds one strip of 16 rows.
    Baseline,
    /// Progressive in two passes, the DC of every component and then each
    /// component's AC (a first picture for the browser at about the bytes
    /// of baseline), with Huffman tables made for the picture: holds every
    /// block's coefficients ([`Mode::held`]) until the end.
    Progressive,
}

impl Mode {
    /// Bytes the writer holds besides the file: the coefficients a
    /// progressive file keeps (two bytes each, 4:2:0 so 3 a pixel, over
    /// whole MCUs), and the strip and rows being gathered.
    pub fn held(self, width: u32, height: u32) -> u64 {
        let strip = (width as u64).next_multiple_of(16) * ROWS as u64 * (4 + 2 + 3);
        match self {
            Mode::Baseline => strip,
            Mode::Progressive => strip + coefficient_bytes(width, height).iter().sum::<u64>(),
        }
    }
}

/// The bytes of Y's, Cb's and Cr's coefficients a progressive file keeps,
/// each allocated whole by [`JpegWriter::new`]: 64 of two bytes a block,
/// over whole MCUs (four Y blocks and one of each chroma).
pub fn coefficient_bytes(width: u32, height: u32) -> [u64; 3] {
    let mcus = (width as u64).div_ceil(16) * (height as u64).div_ceil(16);
    let block = 64 * 2;
    [4 * mcus * block, mcus * block, mcus * block]
}

/// Encodes a whole RGB picture into `out` (its capacity is kept).
pub fn encode_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    mode: Mode,
    out: Vec<u8>,
) -> Result<Vec<u8>, EncodeError> {
    let mut writer = JpegWriter::new(width, height, quality, mode, out)?;
    writer.push_rows(rgb)?;
    writer.finish()
}

/// A file being written, rows at a time.
pub struct JpegWriter {
    width: usize,
    height: usize,
    mode: Mode,
    quant: [Quantizer; 2],
    mcus_x: usize,
    strip: Strip,
    /// Rows waiting for a whole strip.
    pending: Vec<u8>,
    received: usize,
    strips_coded: usize,
    bits: BitWriter,
    /// Baseline: each component's last DC.
    previous_dc: [i16; 3],
    /// Progressive: every block, until the end.
    kept: Coefficients,
}

/// Each component's quantised blocks, row by row over whole MCUs.
struct Coefficients {
    width: usize,
    height: usize,
    mcus_x: usize,
    blocks: [Vec<[i16; 64]>; 3],
}

impl JpegWriter {
    /// Starts a `width`×`height` file at `quality` (1..=100, libjpeg's
    /// scale), written into `out`.
    pub fn new(
        width: u32,
        height: u32,
        quality: u8,
        mode: Mode,
        out: Vec<u8>,
    ) -> Result<JpegWriter, EncodeError> {
        if !(1..=65535).contains(&width) || !(1..=65535).contains(&height) {
            return Err(EncodeError::Size(width, height));
        }
        let (w, h) = (width as usize, height as usize);
        let (mcus_x, mcus_y) = (w.div_ceil(16), h.div_ceil(16));
        let quant = [
            Quantizer::new(false, quality),
            Quantizer::new(true, quality),
        ];
        let standard = [
            huffman::dc_luma(),
            huffman::dc_chroma(),
            huffman::ac_luma(),
            huffman::ac_chroma(),
        ];
        let mut writer = JpegWriter {
            width: w,
            height: h,
            mode,
            mcus_x,
            strip: Strip::new(mcus_x * 16),
            pending: Vec::new(),
            received: 0,
            strips_coded: 0,
            bits: BitWriter::new(out, standard.each_ref().map(Codes::new)),
            previous_dc: [0; 3],
            kept: Coefficients {
                width: w,
                height: h,
                mcus_x,
                blocks: [Vec::new(), Vec::new(), Vec::new()],
            },
            quant,
        };
        match mode {
            Mode::Baseline => {
                let out = &mut writer.bits.out;
                headers(out, &writer.quant, (w, h), 0xC0, &standard);
                scan_header(out, &[(1, 0x00), (2, 0x11), (3, 0x11)], 0, 63);
            }
            Mode::Progressive => {
                let mcus = mcus_x * mcus_y;
                writer.kept.blocks = [
                    vec![[0; 64]; 4 * mcus],
                    vec![[0; 64]; mcus],
                    vec![[0; 64]; mcus],
                ];
            }
        }
        Ok(writer)
    }

    /// The next rows, top to bottom: whole RGB rows, any number at a time.
    pub fn push_rows(&mut self, mut rgb: &[u8]) -> Result<(), EncodeError> {
        let row = self.width * 3;
        if !rgb.len().is_multiple_of(row) {
            return Err(EncodeError::Rows("a row of the wrong length"));
        }
        if self.received + rgb.len() / row > self.height {
            return Err(EncodeError::Rows("more rows than the height"));
        }
        self.received += rgb.len() / row;
        let strip = ROWS * row;
        while !rgb.is_empty() {
            if self.pending.is_empty() && rgb.len() >= strip {
                let (now, rest) = rgb.split_at(strip);
                self.code_strip(now, ROWS);
                rgb = rest;
                continue;
            }
            let take = (strip - self.pending.len()).min(rgb.len());
            self.pending.extend_from_slice(&rgb[..take]);
            rgb = &rgb[take..];
            if self.pending.len() == strip {
                let pending = std::mem::take(&mut self.pending);
                self.code_strip(&pending, ROWS);
                self.pending = pending;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// The file, once every row has been pushed.
    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        if self.received != self.height {
            return Err(EncodeError::Rows("fewer rows than the height"));
        }
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.code_strip(&pending, pending.len() / (self.width * 3));
        }
        if self.mode == Mode::Progressive {
            self.write_progressive();
        } else {
            self.bits.flush();
        }
        self.bits.out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(self.bits.out)
    }

    /// Converts, transforms and quantises one strip; baseline codes it at
    /// once, progressive keeps its blocks.
    fn code_strip(&mut self, rgb: &[u8], rows: usize) {
        dispatch!(
            self.code_strip_v3(rgb, rows),
            self.code_strip_body(rgb, rows)
        )
    }

    v3_copy! {
        fn code_strip_v3(&mut self, rgb: &[u8], rows: usize) {
            self.code_strip_body(rgb, rows)
        }
    }

    #[inline(always)]
    fn code_strip_body(&mut self, rgb: &[u8], rows: usize) {
        self.strip.fill(rgb, self.width, rows);
        let mut samples: Block = [[0.0; 8]; 8];
        let mut block = [0i16; 64];
        let row = self.strips_coded;
        for mx in 0..self.mcus_x {
            for (by, bx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                self.strip.y_block(2 * mx + bx, by, &mut samples);
                self.quantized(0, &mut samples, &mut block);
                let at = (2 * row + by) * 2 * self.mcus_x + 2 * mx + bx;
                self.code_block(0, at, &block);
            }
            for c in 1..3 {
                self.strip.chroma_block(c == 2, mx, &mut samples);
                self.quantized(1, &mut samples, &mut block);
                self.code_block(c, row * self.mcus_x + mx, &block);
            }
        }
        self.strips_coded += 1;
    }

    #[inline(always)]
    fn quantized(&self, table: usize, samples: &mut Block, block: &mut [i16; 64]) {
        fdct::forward(samples);
        self.quant[table].quantize(samples, block);
    }

    #[inline(always)]
    fn code_block(&mut self, component: usize, at: usize, block: &[i16; 64]) {
        match self.mode {
            Mode::Progressive => self.kept.blocks[component][at] = *block,
            Mode::Baseline => {
                let (dc, ac) = tables(component);
                entropy::dc(&mut self.bits, dc, block, &mut self.previous_dc[component]);
                entropy::ac_sequential(&mut self.bits, ac, block);
            }
        }
    }

    /// Counts every symbol, makes the tables, then writes the headers and
    /// the four scans: DC interleaved, then Y, Cb and Cr's AC.
    fn write_progressive(&mut self) {
        dispatch!(self.write_progressive_v3(), self.write_progressive_body())
    }

    v3_copy! {
        fn write_progressive_v3(&mut self) {
            self.write_progressive_body()
        }
    }

    #[inline(always)]
    fn write_progressive_body(&mut self) {
        let kept = &self.kept;
        let mut tally = Tally::default();
        kept.dc_scan(&mut tally);
        for c in 0..3 {
            kept.ac_scan(&mut tally, c);
        }
        let specs = tally.0.each_ref().map(|counts| counts.optimal());
        let bits = &mut self.bits;
        bits.codes = specs.each_ref().map(Codes::new);
        headers(
            &mut bits.out,
            &self.quant,
            (kept.width, kept.height),
            0xC2,
            &specs,
        );
        scan_header(&mut bits.out, &[(1, 0x00), (2, 0x10), (3, 0x10)], 0, 0);
        kept.dc_scan(bits);
        bits.flush();
        for (c, selectors) in [(0, 0x00), (1, 0x01), (2, 0x01)] {
            scan_header(&mut bits.out, &[(c as u8 + 1, selectors)], 1, 63);
            kept.ac_scan(bits, c);
            bits.flush();
        }
    }
}

impl Coefficients {
    fn dc_scan<S: Sink>(&self, sink: &mut S) {
        let mut previous = [0i16; 3];
        let luma_row = 2 * self.mcus_x;
        for my in 0..self.height.div_ceil(16) {
            for mx in 0..self.mcus_x {
                for (by, bx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let block = &self.blocks[0][(2 * my + by) * luma_row + 2 * mx + bx];
                    entropy::dc(sink, Table::DcLuma, block, &mut previous[0]);
                }
                for (blocks, previous) in self.blocks[1..].iter().zip(&mut previous[1..]) {
                    let block = &blocks[my * self.mcus_x + mx];
                    entropy::dc(sink, Table::DcChroma, block, previous);
                }
            }
        }
    }

    /// One component's AC, alone in its scan: so over its own blocks, not
    /// the MCUs' padding (A.2.2).
    fn ac_scan<S: Sink>(&self, sink: &mut S, component: usize) {
        let (w, h, row) = if component == 0 {
            (self.width, self.height, 2 * self.mcus_x)
        } else {
            (self.width.div_ceil(2), self.height.div_ceil(2), self.mcus_x)
        };
        let (_, table) = tables(component);
        let mut run = 0;
        for by in 0..h.div_ceil(8) {
            for block in &self.blocks[component][by * row..][..w.div_ceil(8)] {
                entropy::ac_first(sink, table, block, &mut run);
            }
        }
        entropy::end_of_bands(sink, table, &mut run);
    }
}

/// SOI, JFIF, the quantisation tables, the frame (`sof`: 0xC0 baseline,
/// 0xC2 progressive) and the Huffman tables.
fn headers(
    out: &mut Vec<u8>,
    quant: &[Quantizer; 2],
    size: (usize, usize),
    sof: u8,
    specs: &[Spec; 4],
) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.1, no units, 1:1 pixels, no thumbnail.
    out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
    out.extend_from_slice(b"JFIF\0");
    out.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
    out.extend_from_slice(&[0xFF, 0xDB, 0, 2 + 2 * 65]);
    for (id, q) in quant.iter().enumerate() {
        out.push(id as u8);
        out.extend_from_slice(&q.zigzag);
    }
    out.extend_from_slice(&[0xFF, sof, 0, 17, 8]);
    out.extend_from_slice(&(size.1 as u16).to_be_bytes());
    out.extend_from_slice(&(size.0 as u16).to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    let length: usize = 2 + specs.iter().map(|s| 17 + s.values.len()).sum::<usize>();
    out.extend_from_slice(&[0xFF, 0xC4]);
    out.extend_from_slice(&(length as u16).to_be_bytes());
    for (class_id, spec) in [0x00, 0x01, 0x10, 0x11].into_iter().zip(specs.iter()) {
        out.push(class_id);
        out.extend_from_slice(&spec.bits);
        out.extend_from_slice(&spec.values);
    }
}

/// SOS: each component's id and its tables (DC << 4 | AC), and the band.
fn scan_header(out: &mut Vec<u8>, components: &[(u8, u8)], start: u8, end: u8) {
    out.extend_from_slice(&[0xFF, 0xDA, 0, 6 + 2 * components.len() as u8]);
    out.push(components.len() as u8);
    for &(id, selectors) in components {
        out.extend_from_slice(&[id, selectors]);
    }
    out.extend_from_slice(&[start, end, 0]);
}

/// A component's DC and AC tables.
fn tables(component: usize) -> (Table, Table) {
    if component == 0 {
        (Table::DcLuma, Table::AcLuma)
    } else {
        (Table::DcChroma, Table::AcChroma)
    }
}

#[cfg(test)]
mod tests;
