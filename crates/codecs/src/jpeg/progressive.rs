//! Progressive scans, and where their coefficients are kept.
//!
//! A progressive frame's coefficients are only complete after its last
//! scan, so a decoder holds them all until then: 2 bytes each, 94 MB for
//! a 5120×2880 4:4:4 photo at full scale. Above [`REPLAY_ABOVE`] this
//! decoder holds only which coefficients are nonzero (8 bytes a block),
//! which is all a scan's bits depend on, and notes where each scan's
//! data for each band of rows starts ([`Mark`]). After the last scan it
//! decodes the scans again one band at a time from those marks, so only a
//! band's coefficients are ever held, for a second pass over the
//! entropy-coded data.

use std::ops::Range;
use std::rc::Rc;

use super::bits::{restart_due, BitReader, Huffman};
use super::blocks::{self, AcScan, Keep};
use super::{check, corrupt, table, DecodeError, Stop};

/// Coefficient bytes above which a progressive frame is decoded in two
/// passes: a few times the band and marks the second pass holds.
pub const REPLAY_ABOVE: u64 = 24 << 20;

/// Coefficient bytes one band of the second pass holds, at least one row
/// of MCUs.
pub const BAND_BYTES: u64 = 2 << 20;

/// The shape of one component's blocks.
#[derive(Clone, Copy)]
pub struct Geometry {
    pub h: usize,
    pub v: usize,
    /// Blocks a row and rows, padded to whole MCUs.
    pub stride: usize,
    pub rows: usize,
    /// Blocks that hold image data (a non-interleaved scan covers these).
    pub blocks_w: usize,
    pub blocks_h: usize,
}

/// Where a scan stands: replayed from here, it decodes the same.
#[derive(Clone, Copy)]
pub struct Mark<'a> {
    pub reader: BitReader<'a>,
    pub eobrun: u32,
    pub predictors: [i32; 4],
    pub unit: u32,
}

/// A scan's component (by index) and its DC and AC tables.
pub type Member = (usize, Option<Rc<Huffman>>, Option<Rc<Huffman>>);

/// One progressive scan: what it carries and how it is coded.
pub struct Scan<'a> {
    /// (component index, DC table, AC table).
    pub members: Vec<Member>,
    pub ss: usize,
    pub se: usize,
    pub ah: u32,
    pub al: u32,
    pub restart_interval: u32,
    /// Units are MCUs (several components), else one component's blocks.
    pub interleaved: bool,
    /// Replaying: where each band's rows of units start.
    pub marks: Vec<Mark<'a>>,
}

/// Kept coefficients and nonzero masks of some rows of each component's
/// blocks: all of them, a band of them, or (keeping none) masks alone.
pub struct Coefficients {
    /// Kept per block (0: masks only).
    k: usize,
    parts: Vec<Part>,
    scratch: [i16; 1],
}

struct Part {
    stride: usize,
    first_row: usize,
    coefs: Vec<i16>,
    masks: Vec<u64>,
}

impl Part {
    /// Where block (`x`, `y`) of the frame is held, if its row is.
    fn index(&self, x: usize, y: usize) -> Option<usize> {
        Some(y.checked_sub(self.first_row)? * self.stride + x)
    }
}

impl Coefficients {
    /// `rows` block rows of each component (with `masks`, or, at 1/8 where
    /// no AC scan is read, without), keeping `k` coefficients a block.
    pub fn new(
        geometry: &[Geometry],
        k: usize,
        rows: impl Fn(&Geometry) -> usize,
        masks: bool,
    ) -> Self {
        let parts = geometry
            .iter()
            .map(|g| {
                let blocks = g.stride * rows(g);
                Part {
                    stride: g.stride,
                    first_row: 0,
                    coefs: vec![0; blocks * k],
                    masks: if masks { vec![0; blocks] } else { Vec::new() },
                }
            })
            .collect();
        Coefficients {
            k,
            parts,
            scratch: [0; 1],
        }
    }

    /// Zeroes a band's store for the rows from `first_row(component)`.
    pub fn reset(&mut self, first_row: impl Fn(usize) -> usize) {
        for (i, p) in self.parts.iter_mut().enumerate() {
            p.first_row = first_row(i);
            p.coefs.fill(0);
            p.masks.fill(0);
        }
    }

    /// The DC coefficient of block (x, y) of component `c` (a scratch
    /// one when none are kept).
    #[inline(always)]
    fn dc(&mut self, c: usize, x: usize, y: usize) -> Option<&mut i16> {
        let p = self.parts.get_mut(c)?;
        if self.k == 0 {
            return Some(&mut self.scratch[0]);
        }
        let b = p.index(x, y)?;
        p.coefs.get_mut(b * self.k)
    }

    /// Row `y` of component `c`, `width` blocks: the kept coefficients
    /// (empty when none are kept), the masks, and coefficients a block.
    /// For an AC scan, which needs masks.
    #[inline(always)]
    fn row(&mut self, c: usize, y: usize, width: usize) -> Option<(&mut [i16], &mut [u64], usize)> {
        let k = self.k;
        let p = self.parts.get_mut(c)?;
        let b = p.index(0, y)?;
        let masks = p.masks.get_mut(b..b + width)?;
        let coefs = if k == 0 {
            &mut [][..]
        } else {
            p.coefs.get_mut(b * k..(b + width) * k)?
        };
        Some((coefs, masks, k))
    }

    /// Block (x, y) of component `c`'s kept coefficients, to read.
    pub fn get(&self, c: usize, x: usize, y: usize) -> Option<&[i16]> {
        let p = self.parts.get(c)?;
        let b = p.index(x, y)?;
        p.coefs.get(b * self.k..(b + 1) * self.k)
    }
}

impl<'a> Scan<'a> {
    /// Decodes rows `rows` of this scan's units from `at` into `store`,
    /// keeping `keep`; `mark(row, at)` is told where each row starts.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        geometry: &[Geometry],
        keep: &Keep,
        at: &mut Mark<'a>,
        rows: Range<usize>,
        store: &mut Coefficients,
        stop: Stop,
        mut mark: impl FnMut(usize, &Mark<'a>),
    ) -> Result<(), DecodeError> {
        let first = self.members.first().ok_or_else(|| corrupt("empty scan"))?;
        let units_x = if self.interleaved {
            geometry.first().map_or(0, |g| g.stride / g.h.max(1))
        } else {
            geometry.get(first.0).map_or(0, |g| g.blocks_w)
        };
        let mut ac = AcScan::new(first.2.as_deref(), self.ss, self.se, self.al, at.eobrun);
        // Each member's blocks and DC table, looked up once.
        let mut dc_members = Vec::with_capacity(self.members.len());
        for (index, dc, _) in &self.members {
            let g = *geometry
                .get(*index)
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            dc_members.push((*index, g, dc.as_deref()));
        }
        // Locals, not fields behind `at`, so they can stay in registers.
        let (mut reader, mut predictors, mut unit) = (at.reader, at.predictors, at.unit);
        let restart = self.restart_interval;
        for y in rows {
            check(stop)?;
            let here = Mark {
                reader,
                eobrun: ac.eobrun,
                predictors,
                unit,
            };
            mark(y, &here);
            if self.ss > 0 {
                // An AC scan: one component, block by block. Most blocks
                // sit in end-of-band runs, so this loop is kept lean.
                let (coefs, masks, k) = store
                    .row(first.0, y, units_x)
                    .ok_or_else(|| corrupt("AC scan outside the frame"))?;
                for (x, mask) in masks.iter_mut().enumerate() {
                    if restart_due(restart, unit) {
                        reader.restart();
                        ac.eobrun = 0;
                    }
                    unit += 1;
                    if self.ah == 0 && ac.eobrun > 0 {
                        ac.eobrun -= 1;
                        continue;
                    }
                    let block = coefs.get_mut(x * k..(x + 1) * k).unwrap_or_default();
                    if self.ah == 0 {
                        ac.first(&mut reader, keep, block, mask)?;
                    } else {
                        ac.refine(&mut reader, keep, block, mask)?;
                    }
                }
                continue;
            }
            for x in 0..units_x {
                if restart_due(restart, unit) {
                    reader.restart();
                    predictors = [0; 4];
                }
                unit += 1;
                for (m, &(index, g, dc)) in dc_members.iter().enumerate() {
                    let (bw, bh) = if self.interleaved { (g.h, g.v) } else { (1, 1) };
                    for by in 0..bh {
                        for bx in 0..bw {
                            let (bx, by) = (x * bw + bx, y * bh + by);
                            if bx >= g.stride || by >= g.rows {
                                return Err(corrupt("block outside the frame"));
                            }
                            let coef = store
                                .dc(index, bx, by)
                                .ok_or_else(|| corrupt("block outside the frame"))?;
                            if self.ah == 0 {
                                let dc = table(dc, "DC")?;
                                blocks::dc_first(
                                    &mut reader,
                                    dc,
                                    &mut predictors[m],
                                    self.al,
                                    coef,
                                )?;
                            } else {
                                blocks::dc_refine(&mut reader, self.al, coef);
                            }
                        }
                    }
                }
            }
        }
        *at = Mark {
            reader,
            eobrun: ac.eobrun,
            predictors,
            unit,
        };
        Ok(())
    }

    /// The rows of units that MCU rows `mcus` cover.
    pub fn rows(&self, geometry: &[Geometry], mcus: Range<usize>) -> Range<usize> {
        if self.interleaved {
            return mcus;
        }
        let Some(g) = self.members.first().and_then(|m| geometry.get(m.0)) else {
            return 0..0;
        };
        (mcus.start * g.v).min(g.blocks_h)..(mcus.end * g.v).min(g.blocks_h)
    }
}
