//! The row-by-row PNG shrink (`edgethumb_codecs::png_shrink`), two ways,
//! chosen by the input's first byte:
//! - arbitrary bytes: never a panic, and an image only of the size the
//!   header and the factor promise;
//! - a valid PNG built from the input (size up to 200 px a side, grey,
//!   grey+alpha, RGB, RGBA or palette, 8 or 16 bits, then the pixels):
//!   each output pixel must be, within rounding, the mean of its block of
//!   a full decode by the png crate (alpha-weighted where there is alpha),
//!   edges and all.
#![no_main]

use edgethumb_codecs::png_shrink::{self, Limits};
use libfuzzer_sys::fuzz_target;

/// The whole image through the png crate, with the same 8-bit expansion.
fn full_decode(bytes: &[u8]) -> Option<(u32, u32, usize, Vec<u8>)> {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(png::Transformations::normalize_to_color8());
    let mut r = d.read_info().ok()?;
    let mut buf = vec![0; r.output_buffer_size()?];
    let info = r.next_frame(&mut buf).ok()?;
    buf.truncate(info.buffer_size());
    Some((info.width, info.height, info.color_type.samples(), buf))
}

/// The mean of each k×k block, as the shrink defines it.
fn reference(w: u32, h: u32, ch: usize, px: &[u8], k: u32) -> Vec<f64> {
    let (ow, oh) = png_shrink::shrunk_size(w, h, k);
    let alpha = ch % 2 == 0;
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            let (mut s, mut a, mut n) = ([0f64; 3], 0f64, 0f64);
            for y in oy * k..((oy + 1) * k).min(h) {
                for x in ox * k..((ox + 1) * k).min(w) {
                    let p = &px[(y as usize * w as usize + x as usize) * ch..][..ch];
                    let (colour, weight) = match ch {
                        1 => ([p[0]; 3], 1.0),
                        2 => ([p[0]; 3], p[1] as f64),
                        3 => ([p[0], p[1], p[2]], 1.0),
                        _ => ([p[0], p[1], p[2]], p[3] as f64),
                    };
                    for (t, c) in s.iter_mut().zip(colour) {
                        *t += c as f64 * weight;
                    }
                    a += weight;
                    n += 1.0;
                }
            }
            for t in s {
                out.push(if a == 0.0 { 0.0 } else { t / a });
            }
            if alpha {
                out.push(a / n);
            }
        }
    }
    out
}

fn build(params: &[u8], pixels: &[u8]) -> Option<Vec<u8>> {
    let [w, h, kind, depth16] = *params else {
        return None;
    };
    let (width, height) = (1 + w as u32 % 200, 1 + h as u32 % 200);
    let color = [
        png::ColorType::Grayscale,
        png::ColorType::GrayscaleAlpha,
        png::ColorType::Rgb,
        png::ColorType::Rgba,
        png::ColorType::Indexed,
    ][kind as usize % 5];
    let sixteen = depth16 & 1 == 1 && color != png::ColorType::Indexed;
    let bytes_per_px = color.samples() * if sixteen { 2 } else { 1 };
    let len = width as usize * height as usize * bytes_per_px;
    if pixels.is_empty() {
        return None;
    }
    let data: Vec<u8> = pixels.iter().cycle().take(len).copied().collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(if sixteen {
        png::BitDepth::Sixteen
    } else {
        png::BitDepth::Eight
    });
    if color == png::ColorType::Indexed {
        enc.set_palette(
            (0..=255u8)
                .flat_map(|i| [i, 255 - i, i / 2])
                .collect::<Vec<_>>(),
        );
    }
    let mut w = enc.write_header().ok()?;
    w.write_image_data(&data).ok()?;
    w.finish().ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let [mode, ref rest @ ..] = *data else {
        return;
    };
    let k = 2 + (mode >> 1) as u32 % 8;
    let limits = Limits::default();
    if mode & 1 == 0 {
        let Ok(img) = png_shrink::decode(rest, k, &limits, &edgethumb_codecs::never) else {
            return;
        };
        let header = png::Decoder::new(std::io::Cursor::new(rest))
            .read_info()
            .unwrap();
        let (w, h) = (header.info().width, header.info().height);
        assert_eq!(
            (img.width(), img.height()),
            png_shrink::shrunk_size(w, h, k)
        );
        return;
    }
    if rest.len() < 4 {
        return;
    }
    let Some(bytes) = build(&rest[..4], &rest[4..]) else {
        return;
    };
    let img = png_shrink::decode(&bytes, k, &limits, &edgethumb_codecs::never)
        .expect("a valid PNG shrinks");
    let (w, h, ch, px) = full_decode(&bytes).expect("a valid PNG decodes");
    assert_eq!(
        (img.width(), img.height()),
        png_shrink::shrunk_size(w, h, k)
    );
    let ours: Vec<u8> = if ch % 2 == 0 {
        img.to_rgba8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    let theirs = reference(w, h, ch, &px, k);
    assert_eq!(ours.len(), theirs.len());
    for (i, (&o, &t)) in ours.iter().zip(&theirs).enumerate() {
        // Integer rounding of the weighted sums: off by at most one.
        assert!(
            (o as f64 - t).abs() <= 1.0,
            "sample {i}: ours {o}, the block mean {t:.2} ({w}x{h}, {ch} channels, k {k})"
        );
    }
});
