//! Non-interlaced PNGs decode row by row into the caller's [`Rows`], and
//! shrink on load: each band of `k` rows is box-averaged into one row as
//! it arrives (k = 1 passes rows through), so the full-size image is never
//! resident (a 5120×2880 RGBA PNG is 59 MB decoded, more than the rest of a
//! thumbnail's work together). The resize then takes the remaining factor,
//! at least 2×, with Lanczos3: a box shrink followed by a proper filter, as
//! libvips' `thumbnail` does.
//!
//! Rows come from `stream` for the common PNG (8-bit, no palette, no
//! `tRNS`), which undoes the filters itself (`unfilter`: two Paeth rows
//! at once), and from `png::Reader` for the rest.
//!
//! Interlaced PNGs arrive as seven Adam7 passes, not rows, so the caller
//! decodes them whole.

use std::io::Cursor;

use image::DynamicImage;

use crate::{DecodeError, Gather, Rows, Stop};
use stream::{Header, Stream};

mod stream;
mod unfilter;

/// The most a box shrink may take at once (keeps the sums in `u32`).
pub const MAX_FACTOR: u32 = 64;

/// What one decode may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pixels of the source (width × height from its header), checked
    /// before the output and the band are allocated.
    pub max_pixels: u64,
    /// Bytes the decoder may allocate for its buffers (rows, the inflate
    /// window, ancillary chunks): ours are checked before they are
    /// allocated, the png crate's by its own limit; past it,
    /// [`DecodeError::OverLimit`].
    pub max_decoder_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_decoder_bytes: 64 << 20,
        }
    }
}

/// The box factor for a non-interlaced PNG shrunk by `scale` (output ÷
/// source): the largest whole factor that leaves at least 2× for the
/// resize, at most [`MAX_FACTOR`]; 1 (decode whole) when there is none.
pub fn factor(scale: f64) -> u32 {
    if scale.is_nan() || scale <= 0.0 {
        return 1;
    }
    ((1.0 / (2.0 * scale)).floor() as u32).clamp(1, MAX_FACTOR)
}

/// The size [`decode`] produces for factor `k`.
pub fn shrunk_size(width: u32, height: u32, k: u32) -> (u32, u32) {
    (width.div_ceil(k.max(1)), height.div_ceil(k.max(1)))
}

/// [`decode_rows`], gathered into one image.
pub fn decode(
    bytes: &[u8],
    k: u32,
    limits: &Limits,
    stop: Stop,
) -> Result<DynamicImage, DecodeError> {
    let mut gather = Gather::default();
    decode_rows(bytes, k, limits, stop, &mut gather)?;
    gather.into_image()
}

/// Decodes a non-interlaced PNG shrunk by `k` (1 for none), to 8-bit RGB,
/// or RGBA if it has an alpha channel or transparency, a row at a time
/// into `rows`. `stop` is asked after every output row.
pub fn decode_rows(
    bytes: &[u8],
    k: u32,
    limits: &Limits,
    stop: Stop,
    rows: &mut dyn Rows,
) -> Result<(), DecodeError> {
    let k = k.clamp(1, MAX_FACTOR);
    if let Some((mut stream, header)) = Stream::open(bytes, limits)? {
        return shrink(&mut stream, &header, k, stop, rows);
    }
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: limits.max_decoder_bytes,
        },
    );
    // Colour management is not done yet: the profile is not inflated.
    decoder.set_ignore_iccp_chunk(true);
    // Palette and low bit depths expand, 16-bit strips, to 8-bit samples.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let reader = decoder.read_info().map_err(png_error)?;
    let (width, height) = (reader.info().width, reader.info().height);
    check_pixels(width, height, limits)?;
    let channels: usize = match reader.output_color_type().0 {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(DecodeError::Decode("PNG palette not expanded".into()))
        }
    };
    let header = Header {
        width,
        height,
        channels,
    };
    shrink(&mut Reading(reader), &header, k, stop, rows)
}

/// Refuses a source past `limits.max_pixels`, from its header, before the
/// output and the band are allocated.
fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), DecodeError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::OverLimit(format!(
            "PNG is {width}x{height}, more than {} pixels",
            limits.max_pixels
        )));
    }
    Ok(())
}

/// Decoded rows of 8-bit samples, `channels` to a pixel.
trait Source {
    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError>;
}

impl Source for Stream<'_> {
    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        Stream::next_row(self)
    }
}

/// `png::Reader`, for the PNGs [`Stream`] does not take.
struct Reading<'a>(png::Reader<Cursor<&'a [u8]>>);

impl Source for Reading<'_> {
    fn next_row(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        Ok(self.0.next_row().map_err(png_error)?.map(|row| row.data()))
    }
}

/// Box-shrinks `source`'s rows by `k` into `rows`.
fn shrink(
    source: &mut impl Source,
    header: &Header,
    k: u32,
    stop: Stop,
    rows: &mut dyn Rows,
) -> Result<(), DecodeError> {
    let &Header {
        width,
        height,
        channels,
    } = header;
    let alpha = channels.is_multiple_of(2);
    let (ow, oh) = shrunk_size(width, height, k);
    let out_channels = if alpha { 4 } else { 3 };
    rows.start(ow, oh, out_channels)?;
    let mut line = vec![0u8; ow as usize * out_channels];
    // Column sums of the current band of rows, in the source's own
    // channel layout (colour premultiplied by alpha where there is alpha).
    let mut band = vec![0u32; if k > 1 { width as usize * channels } else { 0 }];
    let (mut band_rows, mut read) = (0u32, 0u32);
    while let Some(row) = source.next_row()? {
        if read == height {
            return Err(DecodeError::Decode(
                "PNG has more rows than its header".into(),
            ));
        }
        read += 1;
        if k == 1 {
            // Nothing to average: the row as it is, grey made RGB.
            expand(row, channels, &mut line);
            rows.row(&line)?;
            if stop() {
                return Err(DecodeError::Stopped);
            }
            continue;
        }
        add_row(&mut band, row, channels);
        band_rows += 1;
        if band_rows == k || read == height {
            flush(&mut band, &mut line, k as usize, band_rows, channels);
            rows.row(&line)?;
            band_rows = 0;
            if stop() {
                return Err(DecodeError::Stopped);
            }
        }
    }
    if read != height {
        return Err(DecodeError::Decode(format!(
            "PNG ended after {read} of {height} rows"
        )));
    }
    Ok(())
}

/// One row of 8-bit samples as RGB (1 or 3 channels) or RGBA (2 or 4).
fn expand(row: &[u8], channels: usize, line: &mut [u8]) {
    match channels {
        1 => {
            for (o, &v) in line.chunks_exact_mut(3).zip(row) {
                o.fill(v);
            }
        }
        2 => {
            for (o, p) in line.chunks_exact_mut(4).zip(row.chunks_exact(2)) {
                o.copy_from_slice(&[p[0], p[0], p[0], p[1]]);
            }
        }
        _ => {
            let n = line.len().min(row.len());
            line[..n].copy_from_slice(&row[..n]);
        }
    }
}

/// Adds one decoded row to the band's column sums. Without alpha this is
/// an element-wise widening add, which the compiler vectorises; with alpha,
/// colour is premultiplied by it, so transparent pixels add no colour.
fn add_row(band: &mut [u32], row: &[u8], channels: usize) {
    match channels {
        2 => {
            for (s, p) in band.chunks_exact_mut(2).zip(row.chunks_exact(2)) {
                let a = p[1] as u32;
                s[0] += p[0] as u32 * a;
                s[1] += a;
            }
        }
        4 => {
            for (s, p) in band.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                let a = p[3] as u32;
                s[0] += p[0] as u32 * a;
                s[1] += p[1] as u32 * a;
                s[2] += p[2] as u32 * a;
                s[3] += a;
            }
        }
        _ => {
            for (s, &v) in band.iter_mut().zip(row) {
                *s += v as u32;
            }
        }
    }
}

/// Writes one output row, RGB or RGBA, from a band of `band_rows` rows:
/// each block of `k` columns summed and divided by the pixels it covered
/// (fewer at the right and bottom edges); then clears the band.
fn flush(band: &mut [u32], out: &mut [u8], k: usize, band_rows: u32, channels: usize) {
    let out_channels = if channels.is_multiple_of(2) { 4 } else { 3 };
    for (block, o) in band
        .chunks(k * channels)
        .zip(out.chunks_exact_mut(out_channels))
    {
        let mut s = [0u32; 4];
        for px in block.chunks_exact(channels) {
            for (t, &v) in s.iter_mut().zip(px) {
                *t += v;
            }
        }
        let n = (block.len() / channels) as u32 * band_rows;
        let divide = |v: u32, by: u32| ((v + by / 2) / by.max(1)) as u8;
        // Premultiplied colour divides by the alpha it was weighted with.
        let unweight = |v: u32, a: u32| if a == 0 { 0 } else { divide(v, a) };
        match channels {
            1 => o.fill(divide(s[0], n)),
            2 => {
                let v = unweight(s[0], s[1]);
                o.copy_from_slice(&[v, v, v, divide(s[1], n)]);
            }
            3 => o.copy_from_slice(&[divide(s[0], n), divide(s[1], n), divide(s[2], n)]),
            _ => o.copy_from_slice(&[
                unweight(s[0], s[3]),
                unweight(s[1], s[3]),
                unweight(s[2], s[3]),
                divide(s[3], n),
            ]),
        }
    }
    band.fill(0);
}

fn png_error(e: png::DecodingError) -> DecodeError {
    match e {
        png::DecodingError::LimitsExceeded => {
            DecodeError::OverLimit("PNG decoder memory limit".into())
        }
        other => DecodeError::Decode(format!("PNG: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_decoder_bytes: 1 << 20,
            ..Limits::default()
        }
    }

    fn encode_png(
        width: u32,
        height: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(data).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn averages_blocks_with_partial_edges() {
        // 5×3 grey, k = 2: output 3×2; the right column and bottom row
        // average fewer pixels.
        let grey: Vec<u8> = (0..15).map(|i| i * 10).collect();
        let bytes = encode_png(5, 3, png::ColorType::Grayscale, png::BitDepth::Eight, &grey);
        let img = decode(&bytes, 2, &small(), &crate::never)
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (3, 2));
        let at = |x, y| img.get_pixel(x, y).0[0];
        assert_eq!(at(0, 0), ((10 + 50 + 60) as f64 / 4.0).round() as u8);
        assert_eq!(at(2, 0), ((40 + 90) as f64 / 2.0).round() as u8);
        assert_eq!(at(0, 1), ((100 + 110) as f64 / 2.0).round() as u8);
        assert_eq!(at(2, 1), 140);
    }

    #[test]
    fn transparent_pixels_add_no_colour() {
        // One opaque red pixel beside three transparent green ones.
        let rgba = [
            255, 0, 0, 255, 0, 255, 0, 0, //
            0, 255, 0, 0, 0, 255, 0, 0,
        ];
        let bytes = encode_png(2, 2, png::ColorType::Rgba, png::BitDepth::Eight, &rgba);
        let img = decode(&bytes, 2, &small(), &crate::never)
            .unwrap()
            .to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0, 64]);
        // The same in grey with alpha.
        let grey_alpha = [200, 255, 50, 0, 50, 0, 50, 0];
        let bytes = encode_png(
            2,
            2,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            &grey_alpha,
        );
        let img = decode(&bytes, 2, &small(), &crate::never)
            .unwrap()
            .to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0, [200, 200, 200, 64]);
    }

    #[test]
    fn sixteen_bit_and_palette_decode_to_8_bit() {
        let be16: Vec<u8> = (0..4 * 4 * 3).flat_map(|i| [(i * 5) as u8, 0]).collect();
        let bytes = encode_png(4, 4, png::ColorType::Rgb, png::BitDepth::Sixteen, &be16);
        let img = decode(&bytes, 2, &small(), &crate::never).unwrap();
        assert_eq!((img.width(), img.height()), (2, 2));

        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Indexed);
        enc.set_palette(vec![0, 0, 0, 255, 255, 255]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0])
            .unwrap();
        w.finish().unwrap();
        let img = decode(&out, 2, &small(), &crate::never).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128]);
    }

    #[test]
    fn cut_files_are_errors_not_panics() {
        // Noise, so the image data is most of the file.
        let grey: Vec<u8> = (0..64u32 * 64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let bytes = encode_png(
            64,
            64,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &grey,
        );
        // IDAT's CRC and the 12-byte IEND close the file.
        let data_end = bytes.len() - 16;
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut], 4, &small(), &crate::never);
            if cut < data_end {
                assert!(result.is_err(), "cut at {cut} of {}", bytes.len());
            }
        }
    }

    /// A PNG of `raw` (filter bytes and rows, as inflated), made by hand
    /// so a test can choose every filter byte.
    fn raw_png(width: u32, height: u32, color_type: u8, interlaced: bool, raw: &[u8]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        };
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, color_type, 0, 0, u8::from(interlaced)]);
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &fdeflate::compress_to_vec(raw));
        chunk(b"IEND", &[]);
        out
    }

    /// Every row as the fast path gives it, or `None` if it declines.
    fn stream_rows(bytes: &[u8]) -> Option<Result<Vec<u8>, DecodeError>> {
        let (mut stream, _) = Stream::open(bytes, &Limits::default()).unwrap()?;
        let mut all = Vec::new();
        Some(loop {
            match stream.next_row() {
                Ok(Some(row)) => all.extend_from_slice(row),
                Ok(None) => break Ok(all),
                Err(e) => break Err(e),
            }
        })
    }

    /// Every row as `png::Reader` gives it, unexpanded.
    fn reader_rows(bytes: &[u8]) -> Vec<u8> {
        let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
        let mut all = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            all.extend_from_slice(row.data());
        }
        all
    }

    /// Smooth gradients with noise and flat runs, so the adaptive encoder
    /// picks every filter, often Paeth twice in a row.
    fn picture(width: u32, height: u32, channels: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                for c in 0..channels as u32 {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = if (x / 16 + y / 8) % 3 == 0 {
                        (s >> 27) as u8
                    } else {
                        0
                    };
                    data.push(((x * (c + 1) + y * 2) as u8).wrapping_add(noise));
                }
            }
        }
        data
    }

    #[test]
    fn the_fast_path_gives_the_png_crates_rows() {
        use png::{ColorType, Filter};
        let kinds = [
            (ColorType::Grayscale, 1),
            (ColorType::GrayscaleAlpha, 2),
            (ColorType::Rgb, 3),
            (ColorType::Rgba, 4),
        ];
        let filters = [
            Filter::NoFilter,
            Filter::Sub,
            Filter::Up,
            Filter::Avg,
            Filter::Paeth,
            Filter::Adaptive,
        ];
        // Small sizes, one larger than the buffer's growth step (so the
        // buffer is compacted under the inflate window many times), and
        // rows longer than that step.
        let sizes = [
            (1, 1),
            (1, 6),
            (2, 3),
            (7, 5),
            (33, 9),
            (600, 300),
            (20_000, 4),
        ];
        for (color, channels) in kinds {
            for filter in filters {
                for (w, h) in sizes {
                    if w * h > 1_000 && !matches!(filter, Filter::Paeth | Filter::Adaptive) {
                        continue;
                    }
                    let data = picture(w, h, channels, w + h);
                    let mut bytes = Vec::new();
                    {
                        let mut enc = png::Encoder::new(&mut bytes, w, h);
                        enc.set_color(color);
                        enc.set_filter(filter);
                        let mut writer = enc.write_header().unwrap();
                        // Many small IDAT chunks.
                        let mut stream = writer.stream_writer_with_size(977).unwrap();
                        std::io::Write::write_all(&mut stream, &data).unwrap();
                        stream.finish().unwrap();
                    }
                    let ours = stream_rows(&bytes)
                        .expect("taken by the fast path")
                        .unwrap();
                    assert!(ours == reader_rows(&bytes), "{color:?} {filter:?} {w}x{h}");
                    assert!(ours == data, "{color:?} {filter:?} {w}x{h}");
                }
            }
        }
    }

    #[test]
    fn the_fast_path_leaves_other_pngs_to_the_png_crate() {
        let rgb = picture(4, 4, 3, 1);
        let with_trns = {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, 4, 4);
            enc.set_color(png::ColorType::Rgb);
            enc.set_trns(vec![0, 0, 0, 0, 0, 0]);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&rgb).unwrap();
            w.finish().unwrap();
            out
        };
        let sixteen = encode_png(
            2,
            2,
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            &[0; 8],
        );
        let two_bit = encode_png(4, 1, png::ColorType::Grayscale, png::BitDepth::Two, &[0x1b]);
        // (Its image data does not matter: the header decides.)
        let interlaced = raw_png(1, 1, 2, true, &[0, 1, 2, 3]);
        for bytes in [with_trns, sixteen, two_bit, interlaced] {
            assert!(stream_rows(&bytes).is_none());
        }
    }

    #[test]
    fn a_bad_filter_byte_or_missing_rows_are_errors() {
        // Two RGB rows of one pixel: filter 5 does not exist.
        let bytes = raw_png(1, 2, 2, false, &[0, 1, 2, 3, 5, 4, 5, 6]);
        let err = stream_rows(&bytes).unwrap().unwrap_err();
        assert!(err.to_string().contains("filter 5"), "{err}");
        // The header says three rows; the data has two.
        let bytes = raw_png(1, 3, 2, false, &[0, 1, 2, 3, 4, 4, 5, 6]);
        let err = stream_rows(&bytes).unwrap().unwrap_err();
        assert!(err.to_string().contains("2 of 3 rows"), "{err}");
        // Extra data after the rows is ignored, as libpng does.
        let bytes = raw_png(1, 1, 2, false, &[0, 1, 2, 3, 4, 4, 5, 6]);
        assert_eq!(stream_rows(&bytes).unwrap().unwrap(), [1, 2, 3]);
    }

    fn grey_png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![128; (width * height) as usize])
            .unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn the_factor_leaves_at_least_2x_for_the_resize() {
        assert_eq!(factor(0.5), 1);
        assert_eq!(factor(0.25), 2);
        assert_eq!(factor(0.1), 5);
        assert_eq!(factor(0.0001), MAX_FACTOR);
        for bad in [0.0, -1.0, f64::NAN] {
            assert_eq!(factor(bad), 1);
        }
    }

    #[test]
    fn the_decoder_allocation_limit_and_stop_are_kept() {
        let bytes = grey_png(4096, 8);
        let tiny = Limits {
            max_decoder_bytes: 1024,
            ..Limits::default()
        };
        assert!(matches!(
            decode(&bytes, 2, &tiny, &crate::never),
            Err(DecodeError::OverLimit(_))
        ));
        assert_eq!(
            decode(&bytes, 2, &Limits::default(), &|| true).unwrap_err(),
            DecodeError::Stopped
        );
        let img = decode(&bytes, 2, &Limits::default(), &crate::never).unwrap();
        assert_eq!((img.width(), img.height()), (2048, 4));
    }

    /// The `png` fuzz target's finding: 530 bytes whose header declares
    /// 257×3,405,775,048 pixels, which allocated 657 GB of output (an
    /// abort) before the first row. Now refused before any allocation.
    #[test]
    fn a_source_past_the_pixel_limit_is_refused_before_anything_is_allocated() {
        let bytes = include_bytes!("../../testdata/png-declares-3-gigapixels.png");
        let err = decode(bytes, 3, &Limits::default(), &crate::never).unwrap_err();
        assert!(
            matches!(&err, DecodeError::OverLimit(m) if m.contains("257x3405775048")),
            "{err}"
        );
        let few = Limits {
            max_pixels: 257 * 199,
            ..Limits::default()
        };
        let err = decode(&grey_png(257, 200), 2, &few, &crate::never).unwrap_err();
        assert!(matches!(err, DecodeError::OverLimit(_)), "{err}");
    }
}
