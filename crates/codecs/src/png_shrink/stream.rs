//! Rows of the common PNG (8-bit grey, grey with alpha, RGB or RGBA, no
//! `tRNS`, not interlaced): chunks, checksums and inflate by the png
//! crate's `StreamingDecoder`, filters undone by [`super::unfilter`],
//! whose paired Paeth rows `png::Reader` cannot give (it unfilters a row
//! at a time, and that was half of a PNG's decode). Other PNGs take
//! `png::Reader`, which expands palettes, bit depths and `tRNS`.

use png::{BitDepth, ColorType, Decoded, StreamingDecoder, UnfilterRegion};

use super::unfilter::{self, PAETH};
use super::{png_error, Limits};
use crate::DecodeError;

/// The inflate window: the last 32 KiB inflated stay put for back
/// references (PNG spec §10.1).
const WINDOW: usize = 32 * 1024;

/// How much the buffer grows at a time when it has no room.
const GROW: usize = 64 * 1024;

/// A PNG decoding to filtered rows, unfiltered one or two at a time.
pub struct Stream<'a> {
    bytes: &'a [u8],
    /// Input consumed.
    pos: usize,
    decoder: StreamingDecoder,
    /// Inflated bytes: `buf[start..region.filled]` are rows not yet
    /// unfiltered, each a filter byte and `stride` bytes.
    buf: Vec<u8>,
    /// The size past which `buf` is compacted rather than grown.
    cap: usize,
    region: UnfilterRegion,
    start: usize,
    /// Inflated bytes the image still needs (the buffer never grows past
    /// them, which is how the decoder knows the image data is complete).
    needed: u64,
    /// The image data ended (or failed to progress): no more bytes come.
    ended: bool,
    bpp: usize,
    stride: usize,
    /// The row above the next one (zeros before the first), the row being
    /// made, and the second row of a Paeth pair.
    prev: Vec<u8>,
    cur: Vec<u8>,
    next: Vec<u8>,
    /// `next` holds a row not yet handed out.
    pending: bool,
    /// Rows not yet handed out, and all of them.
    left: u32,
    height: u32,
}

/// The header's facts the caller needs.
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// Samples a pixel: 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    pub channels: usize,
}

impl<'a> Stream<'a> {
    /// Reads up to the image data. `None` if this PNG is not one this path
    /// takes (the caller uses `png::Reader`).
    pub fn open(bytes: &'a [u8], limits: &Limits) -> Result<Option<(Self, Header)>, DecodeError> {
        let mut options = png::DecodeOptions::default();
        // Colour management is not done yet: the profile is not inflated.
        // Nor is text, which nothing here reads.
        options.set_ignore_iccp_chunk(true);
        options.set_ignore_text_chunk(true);
        let mut decoder = StreamingDecoder::new_with_options(options);
        // Chunks before the image data, kept by the decoder as it reads
        // them: at most the input's own bytes.
        let mut pos = 0;
        loop {
            let (used, event) = decoder.update(&bytes[pos..], None).map_err(png_error)?;
            pos += used;
            match event {
                Decoded::ChunkBegin(_, png::chunk::IDAT) => break,
                Decoded::ChunkComplete(png::chunk::IEND) => {
                    return Err(DecodeError::Decode("PNG has no image data".into()))
                }
                _ if used == 0 => {
                    return Err(DecodeError::Decode(
                        "PNG ended before its image data".into(),
                    ))
                }
                _ => {}
            }
        }
        let Some(info) = decoder.info() else {
            return Err(DecodeError::Decode("PNG has no header".into()));
        };
        let channels = match info.color_type {
            ColorType::Grayscale => 1,
            ColorType::GrayscaleAlpha => 2,
            ColorType::Rgb => 3,
            ColorType::Rgba => 4,
            ColorType::Indexed => return Ok(None),
        };
        if info.bit_depth != BitDepth::Eight || info.interlaced || info.trns.is_some() {
            return Ok(None);
        }
        let (width, height) = (info.width, info.height);
        super::check_pixels(width, height, limits)?;
        let stride = width as usize * channels;
        let row_bytes = stride as u64 + 1;
        // The buffer reaches `cap` and one step past it (or, when it cannot
        // drop anything, the window or two rows and a step); with the three
        // rows, checked before anything is allocated.
        let cap = 4 * (WINDOW + 2 * (stride + 1));
        let most = cap + GROW + 3 * stride;
        if most > limits.max_decoder_bytes {
            return Err(DecodeError::OverLimit("PNG decoder memory limit".into()));
        }
        Ok(Some((
            Stream {
                bytes,
                pos,
                decoder,
                buf: Vec::new(),
                cap,
                region: UnfilterRegion::default(),
                start: 0,
                needed: row_bytes * u64::from(height),
                ended: false,
                bpp: channels,
                stride,
                prev: vec![0; stride],
                cur: vec![0; stride],
                next: vec![0; stride],
                pending: false,
                left: height,
                height,
            },
            Header {
                width,
                height,
                channels,
            },
        )))
    }

    /// The next row, unfiltered; `None` after the last.
    pub fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.pending {
            // The pair's second row; it is the next one's `prev`.
            self.pending = false;
            std::mem::swap(&mut self.prev, &mut self.next);
            return Ok(Some(&self.prev));
        }
        if self.left == 0 {
            self.finish()?;
            return Ok(None);
        }
        let row = self.stride + 1;
        if !self.inflate_until(row)? {
            return Err(DecodeError::Decode(format!(
                "PNG ended after {} of {} rows",
                self.height - self.left,
                self.height
            )));
        }
        let filter = self.buf[self.start];
        // (Inflating may move the rows to the front of the buffer.)
        let pair = filter == PAETH
            && self.left >= 2
            && self.inflate_until(2 * row)?
            && self.buf[self.start + row] == PAETH;
        let at = self.start;
        if pair {
            unfilter::paeth_pair(
                self.bpp,
                &self.prev,
                &self.buf[at + 1..at + row],
                &self.buf[at + row + 1..at + 2 * row],
                &mut self.cur,
                &mut self.next,
            );
            self.start += 2 * row;
            self.left -= 2;
            self.pending = true;
        } else {
            unfilter::row(
                filter,
                self.bpp,
                &self.prev,
                &self.buf[at + 1..at + row],
                &mut self.cur,
            )
            .map_err(|bad| {
                DecodeError::Decode(format!("PNG row filter {} is not one of 0-4", bad.0))
            })?;
            self.start += row;
            self.left -= 1;
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
        Ok(Some(&self.prev))
    }

    /// Reads to the end of the image data, as `png::Reader` does after
    /// its last row, so a file cut short is an error even when every row
    /// arrived: the chunks must be whole and their checksums right.
    /// What is still to inflate is skipped, not inflated.
    fn finish(&mut self) -> Result<(), DecodeError> {
        while !self.ended {
            let (used, event) = self
                .decoder
                .update(&self.bytes[self.pos..], None)
                .map_err(png_error)?;
            self.pos += used;
            match event {
                Decoded::ImageDataFlushed | Decoded::ChunkComplete(png::chunk::IEND) => {
                    self.ended = true
                }
                _ if used == 0 => {
                    return Err(DecodeError::Decode(
                        "PNG ended inside its image data".into(),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Inflates until `n` bytes past `start` are there; false if the image
    /// data ends first.
    fn inflate_until(&mut self, n: usize) -> Result<bool, DecodeError> {
        // Steps that neither took input nor gave output, in a row.
        let mut idle = 0;
        while self.region.filled - self.start < n {
            if self.ended {
                return Ok(false);
            }
            self.make_room();
            let before = self.region.filled;
            let (used, event) = self
                .decoder
                .update(
                    &self.bytes[self.pos..],
                    Some(&mut self.region.as_buf(&mut self.buf)),
                )
                .map_err(png_error)?;
            self.pos += used;
            let made = self.region.filled - before;
            self.needed = self.needed.saturating_sub(made as u64);
            match event {
                Decoded::ImageDataFlushed | Decoded::ChunkComplete(png::chunk::IEND) => {
                    self.ended = true
                }
                _ if used == 0 && made == 0 => {
                    idle += 1;
                    // The input is spent, or the decoder is stuck (it asks
                    // for more room only when the buffer is full, and
                    // make_room gives it room while rows are owed).
                    if self.pos == self.bytes.len() || idle > 2 {
                        self.ended = true;
                    }
                }
                _ => idle = 0,
            }
        }
        Ok(true)
    }

    /// Gives the decoder room for its next step: the buffer grows up to
    /// `cap`; past that, rows already unfiltered and out of the inflate
    /// window are dropped from the front. Compacting only at the cap keeps
    /// the copying to a small share of what is inflated (each compaction
    /// moves at most the window or two rows). The buffer never reaches
    /// past the bytes the image still needs.
    fn make_room(&mut self) {
        let needed = usize::try_from(self.needed).unwrap_or(usize::MAX);
        let step = needed.min(GROW);
        let UnfilterRegion { available, filled } = self.region;
        // Bytes before `available` are out of the window; those before
        // `start` are unfiltered already.
        let drop = self.start.min(available);
        if self.buf.len() - filled < step && filled + step > self.cap && drop > 0 {
            self.buf.copy_within(drop..filled, 0);
            self.start -= drop;
            self.region = UnfilterRegion {
                available: available - drop,
                filled: filled - drop,
            };
        }
        let filled = self.region.filled;
        if self.buf.len() < filled + step {
            self.buf.resize(filled + step, 0);
        } else if self.buf.len() - filled > needed {
            // The decoder takes a full buffer at the end of the image data
            // as all of it: room past the image would hide a cut stream.
            self.buf.truncate(filled + needed);
        }
    }
}
