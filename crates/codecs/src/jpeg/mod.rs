//! JPEG decoding at reduced scale (1/2, 1/4, 1/8): shrink-on-load; and
//! progressive frames at full scale.
//!
//! A thumbnail needs a fraction of the source's pixels, and the DCT gives
//! them almost for free: an 8×8 block's top-left n×n coefficients make an
//! n×n picture of it ([`idct`]). So this decoder keeps only those (all 64
//! at full scale, for outputs over half the source).
//! - **Sequential (baseline) frames** go block by block straight to
//!   samples at the reduced size, and, when one scan carries every
//!   component (as nearly all do), out in bands: each row of MCUs becomes
//!   RGB rows for the caller's [`Rows`] as soon as it is decoded, and only
//!   two rows of MCUs are held. No coefficient buffer, and no full-size
//!   plane, at any scale.
//! - **Progressive frames** must hold coefficients until the last scan. A
//!   full decoder holds 64 of them a block; this one holds the n×n it needs
//!   and a 64-bit mask of which are nonzero, because refinement scans
//!   interleave correction bits for every nonzero coefficient of their band
//!   with the new ones, so the mask is needed to read them.
//! - **Large progressive frames** (over 24 MiB of coefficients) keep only
//!   the masks through their scans, then replay the scans a band of rows
//!   at a time ([`progressive`]).
//! - **Whole scans are skipped** when no coefficient they carry is needed,
//!   now or by a later refinement scan that must be read ([`plan_scans`]).
//!   At 1/8 that is every AC scan, found by looking for the next marker,
//!   without Huffman decoding: most of the file and of the work. libjpeg's
//!   default script sends AC in refinement scans over 1..63, so at 1/4 and
//!   1/2 its AC scans must all be read.
//!
//! Covers Huffman-coded 8-bit frames (SOF0, SOF1, SOF2) of one (grey) or
//! three (YCbCr, or RGB) components, any sampling factors, restart
//! intervals. For anything else
//! [`decode`] returns `Ok(None)` and the caller uses jpeg-decoder. Every
//! length and index comes from the file, so each is checked; data that
//! ends early decodes as zeros, as libjpeg does with a warning.

mod bits;
mod blocks;
mod color;
pub mod cost;
mod idct;
mod progressive;
#[cfg(test)]
mod tests;

use std::rc::Rc;

use image::RgbImage;

use crate::cpu::{dispatch, v3_copy};
use crate::{DecodeError, Gather, Rows, Stop};

use self::bits::{BitReader, Class, Huffman, Skips};
use self::blocks::Keep;
use self::color::{ColorSpace, Converter, Plane};
use self::progressive::{Coefficients, Geometry, Mark};

fn check(stop: Stop) -> Result<(), DecodeError> {
    if stop() {
        return Err(DecodeError::Stopped);
    }
    Ok(())
}

/// What one JPEG may cost, checked before anything is allocated for it:
/// its pixels ([`decode`]) and its scans ([`cost::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pixels of the frame at full size (a baseline or progressive frame
    /// may declare up to 65535×65535).
    pub max_pixels: u64,
    /// Scans a frame may have. libjpeg's default progressive script has 10
    /// and mozjpeg's stay under 30; libjpeg-turbo leaves the limit to its
    /// caller (`TJPARAM_SCANLIMIT`).
    pub max_scans: usize,
    /// Passes over every block of the frame allowed whatever the file's
    /// size.
    pub free_passes: u64,
    /// Block visits allowed for each byte of the file.
    pub visits_per_byte: u64,
    /// Passes over the frame allowed at most, however large the file.
    pub max_passes: u64,
    /// The same for a progressive frame our decoder does not take (CMYK,
    /// 12-bit, arithmetic): jpeg-decoder's visits cost several times ours.
    /// libjpeg's script for 4 components makes 6 passes.
    pub max_passes_elsewhere: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_scans: 100,
            free_passes: 2,
            visits_per_byte: 256,
            max_passes: 32,
            max_passes_elsewhere: 12,
        }
    }
}

/// Decodes `bytes` at `eighths`/8 scale (1, 2, 4 or 8) into one image:
/// [`decode_rows`], gathered.
pub fn decode(
    bytes: &[u8],
    eighths: u32,
    limits: &Limits,
    stop: Stop,
) -> Result<Option<RgbImage>, DecodeError> {
    let mut gather = Gather::default();
    if !decode_rows(bytes, eighths, limits, stop, &mut gather)? {
        return Ok(None);
    }
    let (w, h) = (gather.width, gather.height);
    RgbImage::from_raw(w, h, gather.pixels)
        .map(Some)
        .ok_or_else(|| corrupt("fewer rows than the frame declares"))
}

/// Decodes `bytes` at `eighths`/8 scale (1, 2, 4 or 8), `ceil(w·n/8)` ×
/// `ceil(h·n/8)`, into `rows` as RGB, top to bottom. Sequential frames
/// arrive a row of MCUs at a time; progressive ones (and sequential ones
/// in one scan per component) after their last scan. `Ok(false)`, with
/// `rows` untouched, if this file is not one this decoder covers. `stop`
/// is asked at every scan and row of blocks; [`cost::check`] must have
/// passed first, to bound the scans.
pub fn decode_rows(
    bytes: &[u8],
    eighths: u32,
    limits: &Limits,
    stop: Stop,
    rows: &mut dyn Rows,
) -> Result<bool, DecodeError> {
    decode_replaying(bytes, eighths, limits, stop, rows, Replay::DEFAULT)
}

/// When a progressive frame is replayed ([`progressive`]): above how many
/// coefficient bytes, and in bands of how many.
#[derive(Debug, Clone, Copy)]
struct Replay {
    above: u64,
    band_bytes: u64,
}

impl Replay {
    const DEFAULT: Replay = Replay {
        above: progressive::REPLAY_ABOVE,
        band_bytes: progressive::BAND_BYTES,
    };

    /// Whether a frame whose `blocks` keep `k` coefficients each is
    /// replayed, and then how many rows of MCUs (of `row_blocks` blocks)
    /// a band holds. Only frames with AC scans to read (`masks`, above
    /// 1/8) are replayed.
    fn band_rows(&self, blocks: u64, k: u64, row_blocks: u64, masks: bool) -> Option<u64> {
        if !masks || blocks * k * 2 <= self.above {
            return None;
        }
        Some((self.band_bytes / (row_blocks * k * 2).max(1)).max(1))
    }
}

/// The coefficient bytes a progressive frame at `eighths`/8 scale holds
/// until its last scan if kept whole, and what it holds instead above
/// [`progressive::REPLAY_ABOVE`] (nonzero masks, and one band); for the
/// memory estimate. `blocks` is the frame's blocks, padded to whole MCUs,
/// and `band_blocks` those in one row of MCUs.
pub fn progressive_coefficient_bytes(blocks: u64, band_blocks: u64, eighths: u64) -> u64 {
    let k = eighths * eighths;
    let mask = if eighths > 1 { 8 } else { 0 };
    match Replay::DEFAULT.band_rows(blocks, k, band_blocks, mask > 0) {
        None => blocks * (k * 2 + mask),
        Some(rows) => blocks * mask + rows * band_blocks.max(1) * (k * 2 + mask),
    }
}

/// [`decode_rows`], with progressive frames replayed as `replay` says.
fn decode_replaying(
    bytes: &[u8],
    eighths: u32,
    limits: &Limits,
    stop: Stop,
    rows: &mut dyn Rows,
    replay: Replay,
) -> Result<bool, DecodeError> {
    if !matches!(eighths, 1 | 2 | 4 | 8) {
        return Ok(false);
    }
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(corrupt("no start marker"));
    }
    let n = eighths as usize;
    let mut st = State {
        n,
        keep: Keep::new(n),
        quant: [None; 4],
        dc_tables: [None, None, None, None],
        ac_tables: [None, None, None, None],
        restart_interval: 0,
        adobe_transform: None,
        frame: None,
        needed: None,
        scan_index: 0,
        band: None,
        coefficients: None,
        replay_at: replay,
        replay: false,
        band_mcus: 1,
        recorded: Vec::new(),
    };
    let mut pos = 2;
    // Without an EOI, what arrived is used.
    while let Some((marker, at)) = next_marker(bytes, pos) {
        pos = at;
        match marker {
            0xD9 => break,
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = match bytes.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => break,
        };
        if len < 2 {
            return Err(corrupt("segment length under 2"));
        }
        let seg = bytes
            .get(pos + 2..pos + len)
            .ok_or_else(|| corrupt("segment runs past the end"))?;
        pos += len;
        match marker {
            0xDB => st.quant_tables(seg)?,
            0xC4 => st.huffman_tables(seg)?,
            0xDD => {
                let b = seg.get(..2).ok_or_else(|| corrupt("short DRI"))?;
                st.restart_interval = u16::from_be_bytes([b[0], b[1]]) as u32;
            }
            0xEE if seg.starts_with(b"Adobe") => st.adobe_transform = seg.get(11).copied(),
            0xC0..=0xC2 => {
                if st.frame.is_some() {
                    return Err(corrupt("two frame headers"));
                }
                match Frame::parse(seg, marker == 0xC2, n, limits.max_pixels)? {
                    Some(f) => st.frame = Some(f),
                    None => return Ok(false),
                }
                st.keep_coefficients();
                if marker == 0xC2 && n > 1 {
                    st.needed = Some(plan_scans(bytes, pos, &st.keep));
                }
            }
            // Lossless, hierarchical or arithmetic-coded frames.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(false),
            0xDA => {
                check(stop)?;
                pos = st.scan(seg, bytes, pos, stop, rows)?;
            }
            _ => {}
        }
    }
    st.finish(rows, stop)?;
    Ok(true)
}

fn corrupt(what: &str) -> DecodeError {
    DecodeError::Decode(format!("JPEG: {what}"))
}

/// Finds the next marker at or after `pos`: its code and the index just
/// past it. Skips entropy-coded bytes, stuffed `FF 00` and fill `FF`s.
fn next_marker(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    while pos + 1 < bytes.len() {
        match memchr::memchr(0xFF, &bytes[pos..]) {
            Some(i) => pos += i,
            None => return None,
        }
        let &code = bytes.get(pos + 1)?;
        match code {
            0x00 | 0xFF => pos += 1,
            _ => return Some((code, pos + 2)),
        }
    }
    None
}

/// The same, but RSTn markers inside a scan are skipped too: where the
/// entropy-coded data of a scan ends.
fn end_of_scan(bytes: &[u8], mut pos: usize) -> usize {
    while let Some((code, at)) = next_marker(bytes, pos) {
        if (0xD0..=0xD7).contains(&code) {
            pos = at;
            continue;
        }
        return at - 2;
    }
    bytes.len()
}

/// The marker segments from `pos` on, as (marker, body), stepping over
/// each scan's entropy-coded data. Stops at EOI or where the file is cut
/// short (the decoders report that); for looking ahead, not decoding.
fn segments(bytes: &[u8], mut pos: usize) -> impl Iterator<Item = (u8, &[u8])> + '_ {
    std::iter::from_fn(move || loop {
        let (marker, at) = next_marker(bytes, pos)?;
        pos = at;
        match marker {
            0xD9 => return None,
            0xD0..=0xD8 | 0x01 => continue,
            _ => {}
        }
        let b = bytes.get(pos..pos + 2)?;
        let len = (u16::from_be_bytes([b[0], b[1]]) as usize).max(2);
        let seg = bytes.get(pos + 2..pos + len)?;
        pos += len;
        if marker == 0xDA {
            pos = end_of_scan(bytes, pos);
        }
        return Some((marker, seg));
    })
}

/// One scan's header fields that decide whether it is needed.
struct ScanBand {
    components: Vec<u8>,
    ss: usize,
    se: usize,
    refinement: bool,
}

fn parse_sos(seg: &[u8]) -> Option<(ScanBand, &[u8], u8)> {
    let count = *seg.first()? as usize;
    let head = seg.get(1..1 + 2 * count + 3)?;
    let (ss, se, ah_al) = (head[2 * count], head[2 * count + 1], head[2 * count + 2]);
    let band = ScanBand {
        components: head[..2 * count].chunks_exact(2).map(|p| p[0]).collect(),
        ss: ss as usize,
        se: se as usize,
        refinement: ah_al >> 4 != 0,
    };
    Some((band, &head[..2 * count], ah_al))
}

/// Which scans of a progressive frame must be read, in order: those that
/// carry a kept coefficient, and, going backwards, those whose band a
/// later refinement scan that is read overlaps (it needs to know which of
/// their coefficients are nonzero). DC scans are always read. A first AC
/// scan reads nothing earlier, so it needs nothing before it.
fn plan_scans(bytes: &[u8], pos: usize, keep: &Keep) -> Vec<bool> {
    let mut bands = Vec::new();
    for (marker, seg) in segments(bytes, pos) {
        if marker == 0xDA {
            match parse_sos(seg) {
                Some((band, _, _)) => bands.push(band),
                None => break,
            }
        }
    }
    let mut needed = vec![false; bands.len()];
    // Per component id: the zigzag positions a later read refinement needs.
    let mut history = [0u64; 256];
    for (i, band) in bands.iter().enumerate().rev() {
        let mask = blocks::band(band.ss, band.se);
        let wanted = band.ss == 0
            || keep.any(band.ss, band.se)
            || band
                .components
                .iter()
                .any(|&c| history[c as usize] & mask != 0);
        needed[i] = wanted;
        if wanted && band.refinement {
            for &c in &band.components {
                history[c as usize] |= mask;
            }
        }
    }
    needed
}

struct State<'a> {
    n: usize,
    keep: Keep,
    /// Quantisation tables, in zigzag order.
    quant: [Option<[u16; 64]>; 4],
    dc_tables: [Option<Rc<Huffman>>; 4],
    ac_tables: [Option<Rc<Huffman>>; 4],
    restart_interval: u32,
    adobe_transform: Option<u8>,
    frame: Option<Frame>,
    /// Progressive frames above 1/8: whether each scan, in order, must be
    /// read. At 1/8 only DC scans are.
    needed: Option<Vec<bool>>,
    scan_index: usize,
    /// A sequential frame in one scan: RGB rows go out as they are ready.
    band: Option<Band>,
    /// A progressive frame's coefficients: all of them, or (replaying)
    /// their nonzero masks alone.
    coefficients: Option<Coefficients>,
    /// When a progressive frame is replayed.
    replay_at: Replay,
    /// Replaying, and the rows of MCUs in each band replayed.
    replay: bool,
    band_mcus: usize,
    /// Replaying: every scan read, with its marks.
    recorded: Vec<progressive::Scan<'a>>,
}

/// The output side of a banded sequential frame.
struct Band {
    converter: Converter,
    /// The next output row, and how many there are.
    next: usize,
    height: usize,
}

impl Band {
    /// Sends every output row whose plane rows are decoded: `decoded(i)`
    /// is how many rows of plane `i` are.
    fn send(
        &mut self,
        planes: &[Plane],
        decoded: impl Fn(usize) -> usize,
        rows: &mut dyn Rows,
    ) -> Result<(), DecodeError> {
        while self.next < self.height {
            let ready =
                (0..planes.len()).all(|i| self.converter.last_read(i, self.next) < decoded(i));
            if !ready {
                break;
            }
            rows.row(self.converter.row(planes, self.next))?;
            self.next += 1;
        }
        Ok(())
    }
}

impl<'a> State<'a> {
    /// Sets up a progressive frame's coefficients: whole, or, above
    /// `replay_above` bytes (and above 1/8), masks alone, to be replayed.
    fn keep_coefficients(&mut self) {
        let Some(frame) = self.frame.as_ref().filter(|f| f.progressive) else {
            return;
        };
        let geometry = frame.geometry();
        let k = self.keep.count;
        let blocks: usize = geometry.iter().map(|g| g.stride * g.rows).sum();
        // At 1/8 no AC scan is read, so no mask is needed.
        let masks = self.n > 1;
        let row: usize = geometry.iter().map(|g| g.stride * g.v).sum();
        let band = self
            .replay_at
            .band_rows(blocks as u64, k as u64, row as u64, masks);
        let replay = band.is_some();
        self.band_mcus = band.unwrap_or(1).clamp(1, frame.mcus_y as u64) as usize;
        self.coefficients = Some(if replay {
            Coefficients::new(&geometry, 0, |g| g.rows, true)
        } else {
            Coefficients::new(&geometry, k, |g| g.rows, masks)
        });
        self.replay = replay;
    }

    fn quant_tables(&mut self, mut seg: &[u8]) -> Result<(), DecodeError> {
        while let Some((&pq_tq, rest)) = seg.split_first() {
            let (precision, id) = (pq_tq >> 4, (pq_tq & 0x0F) as usize);
            let size = if precision == 0 { 64 } else { 128 };
            let raw = rest.get(..size).ok_or_else(|| corrupt("short DQT"))?;
            let mut table = [0u16; 64];
            for (i, q) in table.iter_mut().enumerate() {
                *q = if precision == 0 {
                    raw[i] as u16
                } else {
                    u16::from_be_bytes([raw[2 * i], raw[2 * i + 1]])
                };
            }
            *self
                .quant
                .get_mut(id)
                .ok_or_else(|| corrupt("quantisation table id over 3"))? = Some(table);
            seg = &rest[size..];
        }
        Ok(())
    }

    fn huffman_tables(&mut self, mut seg: &[u8]) -> Result<(), DecodeError> {
        while let Some((&tc_th, rest)) = seg.split_first() {
            let (class, id) = (tc_th >> 4, (tc_th & 0x0F) as usize);
            let counts: [u8; 16] = rest
                .get(..16)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| corrupt("short DHT"))?;
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let symbols = rest
                .get(16..16 + total)
                .ok_or_else(|| corrupt("short DHT"))?;
            if id > 3 || class > 1 {
                return Err(corrupt("bad Huffman table class or id"));
            }
            let kind = if class == 0 { Class::Dc } else { Class::Ac };
            let table = Some(Rc::new(Huffman::new(kind, &counts, symbols)?));
            if class == 0 {
                self.dc_tables[id] = table;
            } else {
                self.ac_tables[id] = table;
            }
            seg = &rest[16 + total..];
        }
        Ok(())
    }

    /// Decodes one scan, or skips it if nothing in it is needed. `data` is
    /// where its entropy-coded bytes start; returns where to look for the
    /// next marker.
    fn scan(
        &mut self,
        seg: &[u8],
        bytes: &'a [u8],
        data: usize,
        stop: Stop,
        rows: &mut dyn Rows,
    ) -> Result<usize, DecodeError> {
        let index = self.scan_index;
        self.scan_index += 1;
        let n = self.n;
        let State {
            band: out,
            keep,
            quant,
            dc_tables,
            ac_tables,
            restart_interval,
            adobe_transform,
            frame,
            needed,
            coefficients,
            replay,
            band_mcus,
            recorded,
            ..
        } = self;
        let frame = frame
            .as_mut()
            .ok_or_else(|| corrupt("scan before the frame header"))?;
        let (band, pairs, ah_al) = parse_sos(seg).ok_or_else(|| corrupt("short SOS"))?;
        let (ah, al) = ((ah_al >> 4) as u32, (ah_al & 0x0F) as u32);
        let count = band.components.len();
        if count == 0 || count > frame.components.len() {
            return Err(corrupt("bad scan component count"));
        }
        if frame.progressive {
            let dc = band.ss == 0;
            if (dc && band.se != 0) || (!dc && (band.se < band.ss || band.se > 63 || count != 1)) {
                return Err(corrupt("bad progressive scan band"));
            }
            if al > 13 {
                return Err(corrupt("bad successive approximation"));
            }
            let wanted = match needed {
                Some(plan) => plan.get(index).copied().unwrap_or(false),
                None => dc,
            };
            if !wanted {
                return Ok(end_of_scan(bytes, data));
            }
        }
        let mut members = Vec::with_capacity(count);
        for pair in pairs.chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == pair[0])
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            let (td, ta) = ((pair[1] >> 4) as usize, (pair[1] & 0x0F) as usize);
            let dc = dc_tables.get(td).and_then(|t| t.as_ref());
            let ac = ac_tables.get(ta).and_then(|t| t.as_ref());
            members.push((index, dc, ac));
        }
        // The reader stops at the first marker other than RSTn.
        let reader = BitReader::new(&bytes[data..]);
        let interleaved = count > 1;
        if frame.progressive {
            let scan = progressive::Scan {
                members: members
                    .iter()
                    .map(|&(i, dc, ac)| (i, dc.cloned(), ac.cloned()))
                    .collect(),
                ss: band.ss,
                se: band.se,
                ah,
                al,
                restart_interval: *restart_interval,
                interleaved,
                marks: Vec::new(),
            };
            let geometry = frame.geometry();
            let store = coefficients
                .as_mut()
                .ok_or_else(|| corrupt("scan before the frame header"))?;
            let units_y = scan.rows(&geometry, 0..frame.mcus_y as usize).end;
            let mut at = Mark {
                reader,
                eobrun: 0,
                predictors: [0; 4],
                unit: 0,
            };
            if !*replay {
                scan.run(&geometry, keep, &mut at, 0..units_y, store, stop, |_, _| {})?;
                return Ok(data + at.reader.position());
            }
            // Masks alone, and a mark where each band's rows start.
            let step = scan.rows(&geometry, 0..*band_mcus).len().max(1);
            let mut marks = Vec::new();
            let none = Keep::new(0);
            scan.run(
                &geometry,
                &none,
                &mut at,
                0..units_y,
                store,
                stop,
                |y, m| {
                    if y % step == 0 {
                        marks.push(*m);
                    }
                },
            )?;
            recorded.push(progressive::Scan { marks, ..scan });
            return Ok(data + at.reader.position());
        }
        // Units: MCUs when interleaved, single blocks otherwise.
        let (units_x, units_y) = if interleaved {
            (frame.mcus_x, frame.mcus_y)
        } else {
            let c = &frame.components[members[0].0];
            (c.blocks_w, c.blocks_h)
        };
        // Sequential frames dequantise as they go: their tables must be
        // there now.
        if index == 0 {
            // One scan with every component streams; one scan per
            // component must hold whole planes until the last.
            let banded = count == frame.components.len();
            for c in &mut frame.components {
                let held = if !banded {
                    c.rows
                } else if interleaved {
                    2 * c.v as usize
                } else {
                    2
                };
                c.hold(held.min(c.rows));
            }
            if banded {
                *out = Some(frame.band(n, *adobe_transform, rows)?);
            }
        } else if out.is_some() {
            // Every component has been sent: nothing more to read.
            return Ok(end_of_scan(bytes, data));
        }
        let mut sequential = Vec::with_capacity(count);
        for &(index, dc, ac) in &members {
            let dc = table(dc.map(|t| &**t), "DC")?;
            let ac = table(ac.map(|t| &**t), "AC")?;
            sequential.push(SequentialMember {
                index,
                dc,
                ac,
                // Blocks past the last kept position are only skipped.
                skips: (keep.last < 63).then(|| ac.skips()),
                dequant: frame.components[index].dequantiser(quant, keep)?,
            });
        }
        let mut units = SequentialUnits {
            reader,
            predictors: [0; 4],
            unit: 0,
            restart_interval: *restart_interval,
            interleaved,
            units_x,
        };
        for uy in 0..units_y {
            check(stop)?;
            let components = &mut frame.components;
            match keep.count {
                1 => units.row::<1>(uy, &sequential, components, keep)?,
                4 => units.row::<4>(uy, &sequential, components, keep)?,
                16 => units.row::<16>(uy, &sequential, components, keep)?,
                _ => units.row::<64>(uy, &sequential, components, keep)?,
            }
            if let Some(band) = out {
                let units = uy as usize + 1;
                let planes = frame.planes(n);
                let decoded = |i: usize| {
                    let v = if interleaved {
                        frame.components[i].v as usize
                    } else {
                        1
                    };
                    units * v * n
                };
                band.send(&planes, decoded, rows)?;
            }
        }
        Ok(data + units.reader.position())
    }

    /// Sends what is left: a banded frame's last rows; a progressive
    /// frame's every row, made from its coefficients a row of MCUs at a
    /// time (so only two rows of MCUs of samples are held besides them);
    /// or a frame sent one scan per component, from its whole planes.
    fn finish(self, rows: &mut dyn Rows, stop: Stop) -> Result<(), DecodeError> {
        let mut frame = self.frame.ok_or_else(|| corrupt("no frame header"))?;
        let n = self.n;
        if let Some(mut band) = self.band {
            return band.send(&frame.planes(n), |_| usize::MAX, rows);
        }
        if !frame.progressive {
            if frame.components.iter().any(|c| c.plane.is_empty()) {
                return Err(corrupt("no scan for every component"));
            }
            let mut band = frame.band(n, self.adobe_transform, rows)?;
            return band.send(&frame.planes(n), |_| usize::MAX, rows);
        }
        let geometry = frame.geometry();
        let mut dequant = Vec::with_capacity(frame.components.len());
        for c in &mut frame.components {
            dequant.push(c.dequantiser(&self.quant, &self.keep)?);
            c.hold(2 * c.v as usize);
        }
        let mut band = frame.band(n, self.adobe_transform, rows)?;
        let mcus_y = frame.mcus_y as usize;
        // Replaying: the scans again, a band of rows of MCUs at a time,
        // into a band's worth of coefficients. Otherwise all of them, kept.
        let step = if self.replay { self.band_mcus } else { mcus_y };
        let mut store = if self.replay {
            drop(self.coefficients);
            Coefficients::new(&geometry, self.keep.count, |g| step * g.v, true)
        } else {
            self.coefficients
                .ok_or_else(|| corrupt("no coefficients"))?
        };
        for (i, from) in (0..mcus_y).step_by(step).enumerate() {
            let mcus = from..(from + step).min(mcus_y);
            if self.replay {
                store.reset(|c| from * geometry[c].v);
                for scan in &self.recorded {
                    let units = scan.rows(&geometry, mcus.clone());
                    if units.is_empty() {
                        continue;
                    }
                    let mut at = *scan
                        .marks
                        .get(i)
                        .ok_or_else(|| corrupt("scan ended before the band"))?;
                    scan.run(
                        &geometry,
                        &self.keep,
                        &mut at,
                        units,
                        &mut store,
                        stop,
                        |_, _| {},
                    )?;
                }
            }
            for my in mcus {
                check(stop)?;
                for (i, c) in frame.components.iter_mut().enumerate() {
                    let v = c.v as usize;
                    for by in my * v..(my + 1) * v {
                        for bx in 0..c.stride {
                            let Some(block) = store.get(i, bx, by) else {
                                return Err(corrupt("block outside the frame"));
                            };
                            c.put_block(&dequant[i], block, bx, by);
                        }
                    }
                }
                let planes = frame.planes(n);
                let decoded = |i: usize| (my + 1) * frame.components[i].v as usize * n;
                band.send(&planes, decoded, rows)?;
            }
        }
        band.send(&frame.planes(n), |_| usize::MAX, rows)
    }
}

/// One component of a sequential scan: its tables and dequantiser.
struct SequentialMember<'t> {
    index: usize,
    dc: &'t Huffman,
    ac: &'t Huffman,
    skips: Option<&'t Skips>,
    dequant: [i32; 64],
}

/// Where a sequential scan stands.
struct SequentialUnits<'a> {
    reader: BitReader<'a>,
    predictors: [i32; 4],
    /// Units decoded so far (restart intervals count them).
    unit: u32,
    restart_interval: u32,
    interleaved: bool,
    units_x: u32,
}

impl SequentialUnits<'_> {
    /// Decodes row `uy` of units into the components' planes, `K` (n×n)
    /// coefficients kept a block. Generic over `K` so that clearing,
    /// dequantising and the IDCT are fixed-size: at 1/8 scale, the work
    /// around each block's entropy decoding had cost as much as it.
    fn row<const K: usize>(
        &mut self,
        uy: u32,
        members: &[SequentialMember],
        components: &mut [Component],
        keep: &Keep,
    ) -> Result<(), DecodeError> {
        dispatch!(
            self.row_v3::<K>(uy, members, components, keep),
            self.row_body::<K>(uy, members, components, keep)
        )
    }

    v3_copy! {
        fn row_v3<const K: usize>(
            &mut self,
            uy: u32,
            members: &[SequentialMember],
            components: &mut [Component],
            keep: &Keep,
        ) -> Result<(), DecodeError> {
            self.row_body::<K>(uy, members, components, keep)
        }
    }

    #[inline(always)]
    fn row_body<const K: usize>(
        &mut self,
        uy: u32,
        members: &[SequentialMember],
        components: &mut [Component],
        keep: &Keep,
    ) -> Result<(), DecodeError> {
        // Each member's block rows in this row of units, as held rows:
        // the same for every unit, so worked out (a division each) once.
        // A frame has at most 4 components and 4 block rows a unit.
        let mut held = [[0usize; 4]; 4];
        for (member, held) in members.iter().zip(&mut held) {
            let c = components
                .get(member.index)
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            let bh = if self.interleaved { c.v as u32 } else { 1 };
            for (by, held) in (0..bh).zip(held.iter_mut()) {
                let y = (uy * bh + by) as usize;
                if y >= c.rows {
                    return Err(corrupt("block outside the frame"));
                }
                *held = y % c.held;
            }
        }
        for ux in 0..self.units_x {
            if bits::restart_due(self.restart_interval, self.unit) {
                self.reader.restart();
                self.predictors = [0; 4];
            }
            self.unit += 1;
            for (m, (member, held)) in members.iter().zip(&held).enumerate() {
                let c = components
                    .get_mut(member.index)
                    .ok_or_else(|| corrupt("scan names an unknown component"))?;
                let (bw, bh) = if self.interleaved {
                    (c.h as u32, c.v as u32)
                } else {
                    (1, 1)
                };
                for &held in &held[..bh as usize] {
                    for bx in 0..bw {
                        let x = (ux * bw + bx) as usize;
                        if x >= c.stride {
                            return Err(corrupt("block outside the frame"));
                        }
                        let mut coef = [0i32; K];
                        blocks::sequential(
                            &mut self.reader,
                            member.dc,
                            member.ac,
                            member.skips,
                            &mut self.predictors[m],
                            keep,
                            &mut coef,
                        )?;
                        c.put::<K, i32>(&member.dequant, &coef, x, held);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A coefficient times its quantiser, bounded so hostile values cannot
/// overflow the IDCT's sums (anything past ±2^20 is far off the 8-bit
/// scale anyway).
#[inline(always)]
fn dequantise(q: i32, v: i32) -> i32 {
    // |v| ≤ 2^15 and q < 2^16, so the product fits in i32; all in i32 so
    // the 16 of a block vectorise.
    (v.clamp(-(1 << 15), 1 << 15) * q).clamp(-(1 << 20), 1 << 20)
}

fn table<'t>(t: Option<&'t Huffman>, class: &str) -> Result<&'t Huffman, DecodeError> {
    t.ok_or_else(|| corrupt(&format!("scan uses an undefined {class} table")))
}

struct Frame {
    width: u32,
    height: u32,
    progressive: bool,
    components: Vec<Component>,
    hmax: u8,
    vmax: u8,
    mcus_x: u32,
    mcus_y: u32,
}

struct Component {
    id: u8,
    h: u8,
    v: u8,
    quant: usize,
    /// Samples of this component at full scale.
    width: u32,
    height: u32,
    /// Blocks that hold image data (a non-interleaved scan covers these).
    blocks_w: u32,
    blocks_h: u32,
    /// Blocks a row and rows, padded to whole MCUs.
    stride: usize,
    rows: usize,
    /// Samples at the reduced scale, n×n a block: filled as sequential
    /// scans decode, or from `coefs` after the last progressive scan.
    /// Holds `held` rows of blocks: block row y is at `y % held`.
    plane: Vec<u8>,
    held: usize,
    n: usize,
}

impl Component {
    fn plane_stride(&self) -> usize {
        self.stride * self.n
    }

    /// Allocates the plane for `held` rows of blocks.
    fn hold(&mut self, held: usize) {
        self.held = held.max(1);
        self.plane = vec![0u8; self.plane_stride() * self.held * self.n];
    }

    /// Dequantises the kept coefficients of block (x, y) and writes its
    /// n×n samples into the plane: as a sequential scan decodes it, or
    /// after the last progressive scan.
    #[inline(always)]
    fn put_block<T: Copy + Into<i32>>(
        &mut self,
        dequant: &[i32; 64],
        coefs: &[T],
        x: usize,
        y: usize,
    ) {
        // The scratch sized for the scale: zeroing 64 entries a block when
        // 1 or 4 are used showed in the time at 1/8.
        let y = y % self.held;
        match self.n {
            1 => self.put::<1, T>(dequant, coefs, x, y),
            2 => self.put::<4, T>(dequant, coefs, x, y),
            4 => self.put::<16, T>(dequant, coefs, x, y),
            _ => self.put::<64, T>(dequant, coefs, x, y),
        }
    }

    /// [`Component::put_block`] with K = n×n, `y` counted in the held
    /// rows of blocks.
    #[inline(always)]
    fn put<const K: usize, T: Copy + Into<i32>>(
        &mut self,
        dequant: &[i32; 64],
        coefs: &[T],
        x: usize,
        y: usize,
    ) {
        let mut samples = [0i32; K];
        for (s, (&q, &v)) in samples.iter_mut().zip(dequant.iter().zip(coefs)) {
            *s = dequantise(q, v.into());
        }
        let stride = self.plane_stride();
        idct::block(
            &samples,
            &mut self.plane[(y * stride + x) * self.n..],
            stride,
        );
    }

    /// The quantiser of each kept coefficient, in the IDCT's order.
    fn dequantiser(
        &self,
        quant: &[Option<[u16; 64]>; 4],
        keep: &Keep,
    ) -> Result<[i32; 64], DecodeError> {
        let table = quant[self.quant]
            .as_ref()
            .ok_or_else(|| corrupt("component uses an undefined quantisation table"))?;
        let mut out = [0i32; 64];
        for (z, &q) in table.iter().enumerate() {
            if let Some(s) = keep.slot(z) {
                out[s] = q as i32;
            }
        }
        Ok(out)
    }
}

impl Frame {
    /// The shape of each component's blocks.
    fn geometry(&self) -> Vec<Geometry> {
        self.components
            .iter()
            .map(|c| Geometry {
                h: c.h as usize,
                v: c.v as usize,
                stride: c.stride,
                rows: c.rows,
                blocks_w: c.blocks_w as usize,
                blocks_h: c.blocks_h as usize,
            })
            .collect()
    }

    /// A side of the frame at n/8 scale.
    fn scaled(len: u32, n: usize) -> usize {
        (len as usize * n).div_ceil(8).max(1)
    }

    /// The planes as they are held now, for the colour converter.
    fn planes(&self, n: usize) -> Vec<Plane<'_>> {
        self.components
            .iter()
            .map(|c| Plane {
                samples: &c.plane,
                stride: c.plane_stride(),
                ring: c.held * n,
                width: Self::scaled(c.width, n),
                height: Self::scaled(c.height, n),
                h: c.h,
                v: c.v,
                hmax: self.hmax,
                vmax: self.vmax,
            })
            .collect()
    }

    /// Starts the output: tells `rows` the size, and sets up conversion.
    fn band(
        &self,
        n: usize,
        adobe_transform: Option<u8>,
        rows: &mut dyn Rows,
    ) -> Result<Band, DecodeError> {
        let space = match self.components.len() {
            1 => ColorSpace::Grey,
            _ => {
                let rgb_ids = self.components.iter().map(|c| c.id).eq(*b"RGB");
                let rgb = match adobe_transform {
                    Some(t) => t == 0,
                    None => rgb_ids,
                };
                if rgb {
                    ColorSpace::Rgb
                } else {
                    ColorSpace::YCbCr
                }
            }
        };
        let (w, h) = (Self::scaled(self.width, n), Self::scaled(self.height, n));
        rows.start(w as u32, h as u32, 3)?;
        Ok(Band {
            converter: Converter::new(&self.planes(n), space, w as u32, h as u32),
            next: 0,
            height: h,
        })
    }

    /// `Ok(None)` for frames this path does not cover.
    fn parse(
        seg: &[u8],
        progressive: bool,
        n: usize,
        max_pixels: u64,
    ) -> Result<Option<Frame>, DecodeError> {
        let head = seg.get(..6).ok_or_else(|| corrupt("short frame header"))?;
        let precision = head[0];
        let height = u16::from_be_bytes([head[1], head[2]]) as u32;
        let width = u16::from_be_bytes([head[3], head[4]]) as u32;
        let count = head[5] as usize;
        // Height 0 (set later by a DNL marker) is left to jpeg-decoder.
        if precision != 8 || !(count == 1 || count == 3) || height == 0 || width == 0 {
            return Ok(None);
        }
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(DecodeError::OverLimit(format!(
                "JPEG is {width}x{height}, more than {max_pixels} pixels"
            )));
        }
        let specs = seg
            .get(6..6 + 3 * count)
            .ok_or_else(|| corrupt("short frame header"))?;
        let mut components = Vec::with_capacity(count);
        for s in specs.chunks_exact(3) {
            let (h, v) = (s[1] >> 4, s[1] & 0x0F);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || s[2] > 3 {
                return Err(corrupt("bad component sampling or table"));
            }
            if components.iter().any(|c: &Component| c.id == s[0]) {
                return Err(corrupt("two components with one id"));
            }
            components.push(Component {
                id: s[0],
                h,
                v,
                quant: s[2] as usize,
                width: 0,
                height: 0,
                blocks_w: 0,
                blocks_h: 0,
                stride: 0,
                rows: 0,
                plane: Vec::new(),
                held: 0,
                n,
            });
        }
        let hmax = components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcus_x = width.div_ceil(8 * hmax as u32);
        let mcus_y = height.div_ceil(8 * vmax as u32);
        for c in &mut components {
            c.width = (width * c.h as u32).div_ceil(hmax as u32);
            c.height = (height * c.v as u32).div_ceil(vmax as u32);
            c.blocks_w = c.width.div_ceil(8);
            c.blocks_h = c.height.div_ceil(8);
            c.stride = (mcus_x * c.h as u32) as usize;
            c.rows = (mcus_y * c.v as u32) as usize;
        }
        Ok(Some(Frame {
            width,
            height,
            progressive,
            components,
            hmax,
            vmax,
            mcus_x,
            mcus_y,
        }))
    }
}
