//! What a JPEG costs to decode, from its markers alone, before any decoder
//! runs (ours or jpeg-decoder).
//!
//! Every scan walks all the blocks it covers, however few bytes it has: a
//! scan whose data is missing decodes as zeros. So a few KiB can declare
//! 8192×6096 pixels and hundreds of empty scans, and cost seconds of CPU.
//! A real scan spends at least one bit on almost every block it visits
//! (a Huffman code is never shorter), so the blocks all scans visit are
//! bounded by the file's size ([`Limits`]): 256 visits a byte, plus 2
//! passes over the frame for what end-of-band runs code cheaply, and never
//! more than 32 passes. libjpeg's default progressive
//! script makes about 5 passes; a complete file has at least a byte for
//! every 8 blocks, so it is allowed at least 34.
//!
//! A progressive frame jpeg-decoder takes (CMYK, 12-bit, arithmetic)
//! costs about 90 ns a block visit in its refinement scans, so it is
//! allowed 12 passes rather than 32: a 4000×4000 CMYK file of 65 scans
//! took 1.65 s against 0.31 s for libjpeg's 6-pass script.
//!
//! A sequential frame codes each component in exactly one scan (ITU T.81,
//! 4.10), so one that names a component twice is refused outright: each
//! repeat would decode that component again, and jpeg-decoder, which takes
//! CMYK frames, spends about 200 ns a block on it (an inverse DCT for
//! every visit), so 60 empty repeats in 14 KB cost half a second.

use super::{segments, DecodeError, Limits};

/// Refuses a JPEG whose scans would visit more blocks than its size allows
/// under `limits`, or that has more than `limits.max_scans` scans.
pub fn check(bytes: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    let Limits {
        max_scans,
        free_passes,
        visits_per_byte,
        max_passes,
        max_passes_elsewhere,
        ..
    } = *limits;
    let mut frame: Option<Frame> = None;
    let (mut scans, mut visits) = (0usize, 0u64);
    // Components already coded, in a sequential frame.
    let mut coded: Vec<u8> = Vec::new();
    for (marker, seg) in segments(bytes, 2) {
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                frame = Frame::parse(seg, marker);
                coded.clear();
            }
            0xDA => {
                scans += 1;
                if scans > max_scans {
                    return Err(DecodeError::OverLimit(format!(
                        "JPEG has more than {max_scans} scans"
                    )));
                }
                if let Some(f) = &frame {
                    if f.sequential {
                        for id in scan_components(seg) {
                            if coded.contains(&id) {
                                return Err(DecodeError::Decode(format!(
                                    "JPEG sequential frame codes component {id} in more than one scan"
                                )));
                            }
                            coded.push(id);
                        }
                    }
                    visits = visits.saturating_add(f.visits(seg));
                }
            }
            _ => {}
        }
    }
    let Some(frame) = frame else {
        return Ok(());
    };
    let blocks = frame.blocks();
    let max_passes = match frame.ours {
        true => max_passes,
        false => max_passes.min(max_passes_elsewhere),
    };
    let allowed = free_passes
        .saturating_mul(blocks)
        .saturating_add(visits_per_byte.saturating_mul(bytes.len() as u64))
        .min(max_passes.saturating_mul(blocks));
    if visits > allowed {
        return Err(DecodeError::OverLimit(format!(
            "JPEG scans would decode {visits} blocks, more than its {} bytes allow",
            bytes.len()
        )));
    }
    Ok(())
}

/// The component ids a scan header names.
fn scan_components(sos: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let count = sos.first().copied().unwrap_or(0) as usize;
    let ids = sos.get(1..1 + 2 * count).unwrap_or(&[]);
    ids.chunks_exact(2).map(|p| p[0])
}

/// Block counts of a frame's components.
struct Frame {
    /// (id, blocks of data, blocks padded to whole MCUs).
    components: Vec<(u8, u64, u64)>,
    /// Not progressive: each component has one scan.
    sequential: bool,
    /// Sequential, or a progressive frame our decoder takes (Huffman,
    /// 8-bit, 1 or 3 components); else jpeg-decoder's.
    ours: bool,
}

impl Frame {
    /// The frame header `seg` of SOF marker `marker`.
    fn parse(seg: &[u8], marker: u8) -> Option<Frame> {
        let sequential = !matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
        let head = seg.get(..6)?;
        let ours = sequential || (marker == 0xC2 && head[0] == 8 && matches!(head[5], 1 | 3));
        let height = u16::from_be_bytes([head[1], head[2]]) as u64;
        let width = u16::from_be_bytes([head[3], head[4]]) as u64;
        let specs = seg.get(6..6 + 3 * head[5] as usize)?;
        let sampling: Vec<(u8, u64, u64)> = specs
            .chunks_exact(3)
            .map(|s| (s[0], (s[1] >> 4).max(1) as u64, (s[1] & 0x0F).max(1) as u64))
            .collect();
        let hmax = sampling.iter().map(|c| c.1).max()?;
        let vmax = sampling.iter().map(|c| c.2).max()?;
        let (mcus_x, mcus_y) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
        let components = sampling
            .iter()
            .map(|&(id, h, v)| {
                let data_w = (width * h).div_ceil(hmax).div_ceil(8);
                let data_h = (height * v).div_ceil(vmax).div_ceil(8);
                (id, data_w * data_h, mcus_x * h * mcus_y * v)
            })
            .collect();
        Some(Frame {
            components,
            sequential,
            ours,
        })
    }

    fn blocks(&self) -> u64 {
        self.components.iter().map(|c| c.2).sum()
    }

    /// Blocks one scan visits: a single component's data blocks, or the
    /// whole MCUs of an interleaved scan.
    fn visits(&self, sos: &[u8]) -> u64 {
        let of = |id: u8| self.components.iter().find(|c| c.0 == id);
        let ids: Vec<u8> = scan_components(sos).collect();
        if let [id] = ids[..] {
            return of(id).map_or(0, |c| c.1);
        }
        ids.into_iter().filter_map(of).map(|c| c.2).sum()
    }
}
