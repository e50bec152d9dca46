//! The encoder's files, read back by jpeg-decoder (an independent
//! decoder) and by ours, against the pictures they came from.

use super::*;

/// A photo-like picture: gradients, a few edges and some texture.
fn picture(w: u32, h: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let edge = if (x / 13 + y / 17) % 3 == 0 { 60 } else { 0 };
            let grain = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 28;
            rgb.push(((x * 255 / w.max(1)) + edge + grain).min(255) as u8);
            rgb.push(((y * 255 / h.max(1)) + grain) as u8 / 2 + 40);
            rgb.push((((x + y) * 3) % 256) as u8 / 2 + edge as u8);
        }
    }
    rgb
}

fn decoded(jpeg: &[u8]) -> (u16, u16, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (info.width, info.height, px)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// jpeg-encoder's file of the same picture, sampled as ours.
fn jpeg_encoders(rgb: &[u8], w: u32, h: u32, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    enc.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

#[test]
fn files_decode_to_the_picture_in_both_modes_at_every_size() {
    // Sizes on and off the MCU grid, one pixel, one row, one column.
    for (w, h) in [
        (1, 1),
        (1, 40),
        (40, 1),
        (17, 9),
        (33, 47),
        (64, 64),
        (250, 131),
    ] {
        let rgb = picture(w, h);
        // As faithful as jpeg-encoder (29-53 dB here: 4:2:0 blurs the
        // picture's colour edges): 0.1 dB above it at every size but one
        // row alone, where its padding scores 0.4 dB more.
        let bar = psnr(&rgb, &decoded(&jpeg_encoders(&rgb, w, h, 95)).2) - 0.5;
        for mode in [Mode::Baseline, Mode::Progressive] {
            let jpeg = encode_rgb(&rgb, w, h, 95, mode, Vec::new()).unwrap();
            let (dw, dh, px) = decoded(&jpeg);
            assert_eq!((dw as u32, dh as u32), (w, h), "{mode:?}");
            let quality = psnr(&rgb, &px);
            assert!(
                quality > bar,
                "{w}×{h} {mode:?}: {quality:.2} dB, bar {bar:.2}"
            );
        }
    }
}

#[test]
fn our_decoder_reads_them_too() {
    let (w, h) = (250, 131);
    let rgb = picture(w, h);
    for mode in [Mode::Baseline, Mode::Progressive] {
        let jpeg = encode_rgb(&rgb, w, h, 90, mode, Vec::new()).unwrap();
        let limits = crate::jpeg::Limits::default();
        let ours = crate::jpeg::decode(&jpeg, 8, &limits, &crate::never)
            .unwrap()
            .unwrap();
        let (_, _, theirs) = decoded(&jpeg);
        assert_eq!(ours.dimensions(), (w, h));
        assert!(psnr(ours.as_raw(), &theirs) > 45.0, "{mode:?}");
    }
}

#[test]
fn rows_pushed_in_any_pieces_make_the_same_file() {
    let (w, h) = (70, 53);
    let rgb = picture(w, h);
    for mode in [Mode::Baseline, Mode::Progressive] {
        let whole = encode_rgb(&rgb, w, h, 80, mode, Vec::new()).unwrap();
        for rows in [1, 3, 16, 17] {
            let mut writer = JpegWriter::new(w, h, 80, mode, Vec::new()).unwrap();
            for piece in rgb.chunks(rows * w as usize * 3) {
                writer.push_rows(piece).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), whole, "{mode:?} by {rows}");
        }
    }
}

#[test]
fn progressive_tables_fit_the_picture() {
    // Optimal tables and runs of empty blocks: smaller than baseline with
    // the standard's tables, at every quality.
    let (w, h) = (256, 192);
    let rgb = picture(w, h);
    for quality in [30, 80, 95] {
        let baseline = encode_rgb(&rgb, w, h, quality, Mode::Baseline, Vec::new()).unwrap();
        let progressive = encode_rgb(&rgb, w, h, quality, Mode::Progressive, Vec::new()).unwrap();
        assert!(
            progressive.len() < baseline.len(),
            "q{quality}: {} against {}",
            progressive.len(),
            baseline.len()
        );
    }
    // A flat picture is nearly all end-of-band runs.
    let flat = vec![128u8; 512 * 512 * 3];
    let jpeg = encode_rgb(&flat, 512, 512, 80, Mode::Progressive, Vec::new()).unwrap();
    assert!(jpeg.len() < 1200, "{} bytes", jpeg.len());
    assert_eq!(decoded(&jpeg).2, flat);
}

/// Each (class and id, code lengths, symbols) of a file's DHT segments.
fn huffman_tables(jpeg: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    let mut tables = Vec::new();
    let mut pos = 2;
    while jpeg[pos + 1] != 0xDA {
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        if jpeg[pos + 1] == 0xC4 {
            let mut at = pos + 4;
            while at < pos + 2 + len {
                let bits = jpeg[at + 1..at + 17].to_vec();
                let n: usize = bits.iter().map(|&b| b as usize).sum();
                tables.push((jpeg[at], bits, jpeg[at + 17..at + 17 + n].to_vec()));
                at += 17 + n;
            }
        }
        pos += 2 + len;
    }
    tables.sort();
    tables
}

#[test]
fn baseline_writes_the_standards_tables_as_libjpeg_does() {
    // jpeg-encoder without optimisation writes the standard's tables.
    let rgb = picture(32, 32);
    let theirs = jpeg_encoders(&rgb, 32, 32, 80);
    let ours = encode_rgb(&rgb, 32, 32, 80, Mode::Baseline, Vec::new()).unwrap();
    assert_eq!(huffman_tables(&ours), huffman_tables(&theirs));
}

#[test]
fn sizes_and_row_counts_that_cannot_be_are_refused() {
    for (w, h) in [(0, 10), (10, 0), (65536, 1)] {
        assert_eq!(
            JpegWriter::new(w, h, 80, Mode::Baseline, Vec::new()).err(),
            Some(EncodeError::Size(w, h))
        );
    }
    let rgb = picture(8, 4);
    let mut writer = JpegWriter::new(8, 4, 80, Mode::Progressive, Vec::new()).unwrap();
    assert!(writer.push_rows(&rgb[..5]).is_err());
    writer.push_rows(&rgb[..48]).unwrap();
    assert!(writer.finish().is_err());
    let mut writer = JpegWriter::new(8, 2, 80, Mode::Baseline, Vec::new()).unwrap();
    assert!(writer.push_rows(&rgb).is_err());
}
