//! The banded resample: a decoder's rows go in top to bottom, and only the
//! band of them the next output rows need is held, so a transform's memory
//! follows the output, not the source (as libvips streams its pipelines).
//! Output rows go on to another [`Rows`]: gathered into an image, or
//! straight into the JPEG encoder (`encode::jpeg_rows`).
//!
//! Each batch of output rows is one `fast_image_resize` call over the
//! source rows its kernel reaches, with the crop shifted to them: the same
//! Lanczos3 weights as one resize of the whole image (the resizer
//! computes them from the crop), so the output is the same. Batches are as
//! large as [`BAND_BYTES`] of source rows allow: the per-call cost
//! (horizontal weights) is paid a few times per image, not per row.

use edgethumb_codecs::{DecodeError, Rows};
use fast_image_resize as fr;

use super::resize::Region;

/// Source rows held at once, in bytes (more when one output row's kernel
/// needs more): a few megabytes keep batches few without weighing on the
/// 128 MB isolate.
pub const BAND_BYTES: usize = 4 << 20;

/// Output rows made per resize call, in bytes at most (one row if it is
/// larger): a full-size output would otherwise take as many rows as the
/// band, and its sink (an image, or the JPEG encoder) copies them anyway.
const OUT_BYTES: usize = 1 << 20;

/// Lanczos3's reach, in source pixels per unit of scale.
const SUPPORT: f64 = 3.0;

/// Receives rows as [`Rows`] and resamples `region` of them (in the
/// decoded image's pixels) to `dst`, whose rows go to `sink`.
pub struct Banded<S: Rows> {
    region: Region,
    dst: (u32, u32),
    expect: (u32, u32),
    /// A crop at whole pixels to the same size: rows are copied, and alpha
    /// left as it is (premultiplying and back would lose low-alpha colour).
    copy: bool,
    channels: usize,
    row_bytes: usize,
    /// Source rows per output row, and the kernel's reach in source rows.
    scale: f64,
    reach: f64,
    /// Output rows per resize call.
    batch: usize,
    /// Held source rows, `capacity` at most; `buf` row 0 is source row
    /// `base`.
    buf: Vec<u8>,
    capacity: usize,
    base: usize,
    held: usize,
    received: usize,
    next_out: usize,
    /// The source rows the next batch reads ([`Self::window`]).
    needs: (usize, usize),
    /// One batch of output rows.
    out: Vec<u8>,
    resizer: fr::Resizer,
    sink: S,
}

impl<S: Rows> Banded<S> {
    /// `expect` is the size the decoder is to deliver; anything else is an
    /// error, not a resample of the wrong region.
    pub fn new(expect: (u32, u32), region: Region, dst: (u32, u32), sink: S) -> Self {
        let region = region.within(expect.0, expect.1);
        let dst = (dst.0.max(1), dst.1.max(1));
        let scale = region.h / dst.1 as f64;
        let whole = |v: f64| v == v.round();
        let copy = (region.w, region.h) == (dst.0 as f64, dst.1 as f64)
            && whole(region.x)
            && whole(region.y);
        Banded {
            region,
            dst,
            expect,
            copy,
            channels: 0,
            row_bytes: 0,
            scale,
            reach: SUPPORT * scale.max(1.0),
            batch: 1,
            buf: Vec::new(),
            capacity: 0,
            base: 0,
            held: 0,
            received: 0,
            next_out: 0,
            needs: (0, 0),
            out: Vec::new(),
            resizer: fr::Resizer::new(),
            sink,
        }
    }

    /// The source rows output rows `[from, to)` read: the first and one
    /// past the last, with a row of margin each side, so the resizer
    /// never clamps its kernel at the edge of the band.
    fn window(&self, from: usize, to: usize) -> (usize, usize) {
        let height = self.expect.1 as f64;
        let centre = |j: usize| self.region.y + (j as f64 + 0.5) * self.scale;
        let lo = (centre(from) - self.reach).floor() - 1.0;
        let hi = (centre(to - 1) + self.reach).ceil() + 1.0;
        (
            lo.clamp(0.0, height) as usize,
            hi.clamp(0.0, height) as usize,
        )
    }

    /// [`Self::window`] of the next batch.
    fn batch_window(&self) -> (usize, usize) {
        let dh = self.dst.1 as usize;
        if self.next_out >= dh {
            return (0, 0);
        }
        self.window(self.next_out, (self.next_out + self.batch).min(dh))
    }

    fn pixel_type(&self) -> fr::PixelType {
        if self.channels == 4 {
            fr::PixelType::U8x4
        } else {
            fr::PixelType::U8x3
        }
    }

    /// Resamples every batch whose rows have all arrived.
    fn drain(&mut self) -> Result<(), DecodeError> {
        let dh = self.dst.1 as usize;
        while self.next_out < dh {
            let (from, to) = (self.next_out, (self.next_out + self.batch).min(dh));
            let (lo, hi) = self.needs;
            if self.received < hi {
                return Ok(());
            }
            if lo < self.base || hi > self.base + self.held {
                return Err(internal("band does not hold the rows a batch needs"));
            }
            let pixel = self.pixel_type();
            let rb = self.row_bytes;
            let rows = &self.buf[(lo - self.base) * rb..(hi - self.base) * rb];
            let src = fr::images::ImageRef::new(self.expect.0, (hi - lo) as u32, rows, pixel)
                .map_err(|e| internal(&format!("band: {e}")))?;
            let out_row = self.dst.0 as usize * self.channels;
            let out = &mut self.out[..(to - from) * out_row];
            let mut dst =
                fr::images::Image::from_slice_u8(self.dst.0, (to - from) as u32, out, pixel)
                    .map_err(|e| internal(&format!("band output: {e}")))?;
            let top = self.region.y + from as f64 * self.scale - lo as f64;
            let height = ((to - from) as f64 * self.scale).min((hi - lo) as f64 - top);
            let opts = fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
                .crop(self.region.x, top, self.region.w, height)
                // Rows are premultiplied as they arrive (`row`).
                .use_alpha(false);
            self.resizer
                .resize(&src, &mut dst, &opts)
                .map_err(|e| internal(&format!("band resize: {e}")))?;
            if self.channels == 4 && !self.copy {
                fr::MulDiv::default()
                    .divide_alpha_inplace(&mut dst)
                    .map_err(|e| internal(&format!("alpha: {e}")))?;
            }
            for row in out.chunks_exact(out_row) {
                self.sink.row(row)?;
            }
            self.next_out = to;
            self.needs = self.batch_window();
        }
        Ok(())
    }

    /// The sink, once every row has arrived and gone on to it.
    pub fn finish(self) -> Result<S, DecodeError> {
        if self.received != self.expect.1 as usize || self.next_out != self.dst.1 as usize {
            return Err(DecodeError::Decode(format!(
                "decoder gave {} of {} rows",
                self.received, self.expect.1
            )));
        }
        Ok(self.sink)
    }
}

/// The bytes a [`Banded`] holds at its peak for a `width`×`height` source of
/// `channels`: the band, the resizer's scratch (a batch's vertical
/// pass at source width, and the weights) and a batch of output rows;
/// for the memory estimate. What the sink holds is its own.
pub fn peak(width: u32, height: u32, dst: (u32, u32), channels: usize) -> u64 {
    let row = width as usize * channels;
    let (capacity, batch) = sizes(row, height as f64 / dst.1.max(1) as f64, dst, channels);
    let band = capacity.min(height as usize) * row;
    // Rows at their own size are copied, not resized.
    let scratch = if dst == (width, height) {
        0
    } else {
        batch * row + dst.0 as usize * 64
    };
    let out = batch * dst.0 as usize * channels;
    (band + scratch + out) as u64
}

/// Rows held and output rows per batch, for rows of `row` bytes at
/// `scale` source rows per output row.
fn sizes(row: usize, scale: f64, dst: (u32, u32), channels: usize) -> (usize, usize) {
    let reach = SUPPORT * scale.max(1.0);
    // One output row's kernel and margins, at the least.
    let least = (2.0 * reach + scale).ceil() as usize + 4;
    let capacity = (BAND_BYTES / row.max(1)).max(least);
    let out_row = (dst.0 as usize * channels).max(1);
    let batch = (((capacity - least) as f64 / scale.max(f64::MIN_POSITIVE)) as usize + 1)
        .min(OUT_BYTES / out_row)
        .clamp(1, dst.1.max(1) as usize);
    (capacity, batch)
}

fn internal(what: &str) -> DecodeError {
    DecodeError::Decode(format!("banded resize: {what}"))
}

impl<S: Rows> Rows for Banded<S> {
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError> {
        if (width, height) != self.expect || !(channels == 3 || channels == 4) {
            return Err(internal(&format!(
                "decoder declared {width}x{height}x{channels}, expected {:?}",
                self.expect
            )));
        }
        self.channels = channels;
        self.row_bytes = width as usize * channels;
        let (capacity, batch) = sizes(self.row_bytes, self.scale, self.dst, channels);
        // Never more rows than the source has.
        self.capacity = capacity.min(height as usize);
        self.batch = batch;
        self.needs = self.batch_window();
        self.buf = vec![0u8; self.capacity * self.row_bytes];
        self.out = vec![0u8; self.dst.0 as usize * batch * channels];
        self.sink.start(self.dst.0, self.dst.1, channels)
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        let r = self.received;
        if row.len() != self.row_bytes || r >= self.expect.1 as usize {
            return Err(internal("row of the wrong size, or too many rows"));
        }
        self.received += 1;
        let dh = self.dst.1 as usize;
        if self.next_out >= dh {
            return Ok(());
        }
        let (lo, _) = self.needs;
        if r < lo {
            // Above the region (or a crop): never read.
            return Ok(());
        }
        if self.held == 0 {
            self.base = r;
        }
        if self.held == self.capacity {
            // Drop the rows no batch still needs.
            let drop = lo.saturating_sub(self.base).min(self.held);
            let rb = self.row_bytes;
            self.buf.copy_within(drop * rb..self.held * rb, 0);
            self.base += drop;
            self.held -= drop;
            if self.held == self.capacity {
                return Err(internal("band full"));
            }
        }
        let at = self.held * self.row_bytes;
        let slot = &mut self.buf[at..at + self.row_bytes];
        slot.copy_from_slice(row);
        if self.channels == 4 && !self.copy {
            // As the resizer premultiplies a whole image, so transparent
            // pixels do not bleed colour into their neighbours.
            let mut view =
                fr::images::Image::from_slice_u8(self.expect.0, 1, slot, fr::PixelType::U8x4)
                    .map_err(|e| internal(&format!("row: {e}")))?;
            fr::MulDiv::default()
                .multiply_alpha_inplace(&mut view)
                .map_err(|e| internal(&format!("alpha: {e}")))?;
        }
        self.held += 1;
        self.drain()
    }
}
