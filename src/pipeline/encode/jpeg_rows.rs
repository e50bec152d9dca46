//! Baseline JPEG written as rows arrive, so a large output is never held
//! whole: the banded resampler hands its rows here ([`Rows`]), and each
//! row of MCUs (16 pixel rows at 4:2:0) is encoded by jpeg-encoder as its
//! own small JPEG, whose entropy-coded data is spliced into one file as a
//! restart interval. A restart resets the DC predictors and byte-aligns,
//! just as the start of an image does, so the file is byte for byte what
//! jpeg-encoder writes for the whole image with a restart interval of one
//! MCU row (tested), at two bytes per MCU row.
//!
//! jpeg-encoder pulls rows (`ImageBuffer::fill_buffers`) while our
//! decoders push them; splicing lets both stay as they are.

use edgethumb_codecs::{DecodeError, Rows};

use super::jpeg_encoder_for;

/// Pixels a side of one MCU at 4:2:0 ([`jpeg_encoder_for`]'s sampling).
const MCU: usize = 16;

pub struct JpegRows {
    quality: u8,
    /// Where RGBA rows are blended onto, as the `flatten` effect does.
    background: [u8; 3],
    /// Bytes reserved for the file when the first row arrives.
    reserve: usize,
    width: u16,
    height: u16,
    channels: usize,
    received: usize,
    /// RGB rows of the MCU row being gathered.
    strip: Vec<u8>,
    /// MCU rows written.
    written: usize,
    /// One MCU row's JPEG, reused.
    scratch: Vec<u8>,
    out: Vec<u8>,
}

impl JpegRows {
    /// `reserve`: bytes for the file ([`crate::pipeline::memory::jpeg_reserve`]).
    pub fn new(quality: u8, background: [u8; 3], reserve: usize) -> Self {
        JpegRows {
            reserve,
            quality,
            background,
            width: 0,
            height: 0,
            channels: 0,
            received: 0,
            strip: Vec::new(),
            written: 0,
            scratch: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The file, once every row has arrived.
    pub fn finish(mut self) -> Result<Vec<u8>, DecodeError> {
        if self.height == 0 || self.received != self.height as usize {
            return Err(fail("fewer rows than declared"));
        }
        self.out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(self.out)
    }

    /// Bytes held besides the output: the MCU row gathered and its JPEG.
    pub fn held(width: u32) -> u64 {
        width as u64 * MCU as u64 * 3 * 2
    }

    fn flush(&mut self) -> Result<(), DecodeError> {
        let rows = self.strip.len() / (self.width as usize * 3);
        self.scratch.clear();
        let enc = jpeg_encoder_for(&mut self.scratch, self.quality);
        enc.encode(
            &self.strip,
            self.width,
            rows as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| fail(&format!("{e}")))?;
        let parts = Parts::find(&self.scratch).ok_or_else(|| fail("unexpected layout"))?;
        if self.written == 0 {
            let start = self.out.len();
            self.out.extend_from_slice(&self.scratch[..parts.sos]);
            // The first MCU row's headers, with the whole height.
            let at = start + parts.sof_height;
            self.out[at..at + 2].copy_from_slice(&self.height.to_be_bytes());
            let mcus_per_row = (self.width as usize).div_ceil(MCU) as u16;
            self.out.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
            self.out.extend_from_slice(&mcus_per_row.to_be_bytes());
            self.out
                .extend_from_slice(&self.scratch[parts.sos..parts.data]);
        } else {
            self.out.push(0xFF);
            self.out.push(0xD0 + ((self.written - 1) % 8) as u8);
        }
        self.out
            .extend_from_slice(&self.scratch[parts.data..self.scratch.len() - 2]);
        self.written += 1;
        self.strip.clear();
        Ok(())
    }
}

/// Where the pieces of jpeg-encoder's output are: the frame header's
/// height field, the scan header and the entropy-coded data after it (up
/// to the final EOI).
struct Parts {
    sof_height: usize,
    sos: usize,
    data: usize,
}

impl Parts {
    fn find(jpeg: &[u8]) -> Option<Parts> {
        if !jpeg.ends_with(&[0xFF, 0xD9]) {
            return None;
        }
        let mut pos = 2;
        let mut sof_height = None;
        loop {
            let (ff, marker) = (*jpeg.get(pos)?, *jpeg.get(pos + 1)?);
            let len = u16::from_be_bytes([*jpeg.get(pos + 2)?, *jpeg.get(pos + 3)?]) as usize;
            if ff != 0xFF {
                return None;
            }
            match marker {
                // Length, precision, then the height.
                0xC0 => sof_height = Some(pos + 5),
                0xDA => {
                    return Some(Parts {
                        sof_height: sof_height?,
                        sos: pos,
                        data: pos + 2 + len,
                    })
                }
                _ => {}
            }
            pos += 2 + len;
        }
    }
}

fn fail(what: &str) -> DecodeError {
    DecodeError::Sink(format!("JPEG encode: {what}"))
}

impl Rows for JpegRows {
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError> {
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(fail("over 65535 pixels a side"));
        };
        if w == 0 || h == 0 || !(channels == 3 || channels == 4) {
            return Err(fail("empty image"));
        }
        (self.width, self.height, self.channels) = (w, h, channels);
        self.strip = Vec::with_capacity(width as usize * 3 * MCU);
        self.out = Vec::with_capacity(self.reserve);
        Ok(())
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        if row.len() != self.width as usize * self.channels || self.received >= self.height as usize
        {
            return Err(fail("row of the wrong size, or too many rows"));
        }
        if self.channels == 4 {
            let bg = self.background;
            for p in row.chunks_exact(4) {
                self.strip.extend(super::super::effects::blend(p, bg));
            }
        } else {
            self.strip.extend_from_slice(row);
        }
        self.received += 1;
        let rows = self.strip.len() / (self.width as usize * 3);
        if rows == MCU || self.received == self.height as usize {
            self.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 7 + y) as u8, (y * 3) as u8, ((x ^ y) * 5) as u8]
            })
            .collect()
    }

    fn whole(px: &[u8], w: u16, h: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = jpeg_encoder_for(&mut out, 80);
        enc.set_restart_interval((w as usize).div_ceil(MCU) as u16);
        enc.encode(px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    fn rows(px: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut j = JpegRows::new(80, [255, 255, 255], 0);
        j.start(w, h, 3).unwrap();
        for r in px.chunks_exact(w as usize * 3) {
            j.row(r).unwrap();
        }
        j.finish().unwrap()
    }

    #[test]
    fn spliced_rows_are_jpeg_encoders_file_with_restarts() {
        // One MCU row, a partial last one, more than eight (RST0..7
        // wrap), odd widths.
        for (w, h) in [(16, 16), (33, 9), (100, 150), (257, 17), (40, 16 * 9 + 3)] {
            let px = picture(w, h);
            let ours = rows(&px, w, h);
            assert_eq!(ours, whole(&px, w as u16, h as u16), "{w}x{h}");
            let back = image::load_from_memory(&ours).unwrap();
            assert_eq!((back.width(), back.height()), (w, h));
        }
    }

    #[test]
    fn rgba_rows_are_flattened_and_short_input_is_an_error() {
        let mut j = JpegRows::new(90, [0, 0, 255], 0);
        j.start(20, 20, 4).unwrap();
        for _ in 0..20 {
            j.row(&[255, 0, 0, 0].repeat(20)).unwrap();
        }
        let back = image::load_from_memory(&j.finish().unwrap())
            .unwrap()
            .to_rgb8();
        let p = back.get_pixel(10, 10);
        assert!(p[2] > 240 && p[0] < 15, "{p:?}");

        let mut j = JpegRows::new(90, [0, 0, 0], 0);
        j.start(20, 20, 3).unwrap();
        j.row(&[0; 60]).unwrap();
        assert!(j.finish().is_err());
        let mut j = JpegRows::new(90, [0, 0, 0], 0);
        j.start(20, 20, 3).unwrap();
        assert!(j.row(&[0; 59]).is_err());
    }
}
