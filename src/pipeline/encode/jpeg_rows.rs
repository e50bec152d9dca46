//! Baseline JPEG written as rows arrive, so a large output is never held
//! whole: the banded resampler hands its rows here ([`Rows`]), and our
//! encoder codes each row of MCUs as soon as it has one
//! (`edgethumb_codecs::jpeg_encode`, [`Mode::Baseline`]).

use edgethumb_codecs::jpeg_encode::{JpegWriter, Mode};
use edgethumb_codecs::{DecodeError, Rows};

pub struct JpegRows {
    quality: u8,
    /// Where RGBA rows are blended onto, as the `flatten` effect does.
    background: [u8; 3],
    /// Bytes reserved for the file when the first row arrives.
    reserve: usize,
    /// Bytes a row must have: width × channels.
    row_bytes: usize,
    channels: usize,
    /// An RGBA row, flattened.
    flat: Vec<u8>,
    writer: Option<JpegWriter>,
}

impl JpegRows {
    /// `reserve`: bytes for the file ([`crate::pipeline::memory::jpeg_reserve`]).
    pub fn new(quality: u8, background: [u8; 3], reserve: usize) -> Self {
        JpegRows {
            reserve,
            quality,
            background,
            row_bytes: 0,
            channels: 0,
            flat: Vec::new(),
            writer: None,
        }
    }

    /// The file, once every row has arrived.
    pub fn finish(self) -> Result<Vec<u8>, DecodeError> {
        self.writer
            .ok_or_else(|| fail("no rows"))?
            .finish()
            .map_err(|e| fail(&e.to_string()))
    }

    /// Bytes held besides the output: the encoder's strip, and a
    /// flattened row.
    pub fn held(width: u32) -> u64 {
        Mode::Baseline.held(width, 16) + width as u64 * 3
    }
}

fn fail(what: &str) -> DecodeError {
    DecodeError::Sink(what.to_string())
}

impl Rows for JpegRows {
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError> {
        if !(channels == 3 || channels == 4) {
            return Err(fail("JPEG encode: neither RGB nor RGBA"));
        }
        self.channels = channels;
        self.row_bytes = width as usize * channels;
        let out = Vec::with_capacity(self.reserve);
        let writer = JpegWriter::new(width, height, self.quality, Mode::Baseline, out)
            .map_err(|e| fail(&e.to_string()))?;
        self.writer = Some(writer);
        Ok(())
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| fail("row before start"))?;
        // One row a call, as `Rows` promises: the writer alone would take
        // two rows' bytes as two rows.
        if row.len() != self.row_bytes {
            return Err(fail("JPEG encode: a row of the wrong length"));
        }
        let rgb = if self.channels == 4 {
            self.flat.clear();
            let bg = self.background;
            for p in row.chunks_exact(4) {
                self.flat.extend(super::super::effects::blend(p, bg));
            }
            &self.flat
        } else {
            row
        };
        writer.push_rows(rgb).map_err(|e| fail(&e.to_string()))
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

    #[test]
    fn rows_make_the_whole_images_file() {
        for (w, h) in [(16, 16), (33, 9), (257, 17), (40, 16 * 9 + 3)] {
            let px = picture(w, h);
            let mut j = JpegRows::new(80, [255, 255, 255], 0);
            j.start(w, h, 3).unwrap();
            for r in px.chunks_exact(w as usize * 3) {
                j.row(r).unwrap();
            }
            let ours = j.finish().unwrap();
            let whole = edgethumb_codecs::jpeg_encode::encode_rgb(
                &px,
                w,
                h,
                80,
                Mode::Baseline,
                Vec::new(),
            )
            .unwrap();
            assert_eq!(ours, whole, "{w}x{h}");
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
        assert!(j.row(&[0; 120]).is_err());
        let mut j = JpegRows::new(90, [0, 0, 0], 0);
        assert!(j.start(70_000, 20, 3).is_err());
        assert!(j.start(20, 20, 2).is_err());
    }
}
