//! Encoders:
//! - JPEG: ours (`edgethumb_codecs::jpeg_encode`), 4:2:0 with averaged
//!   chroma; progressive with Huffman tables made for the picture up to
//!   [`PROGRESSIVE_MAX_PIXELS`], baseline with the standard tables above,
//!   which writes a row of MCUs at a time instead of holding every block's
//!   coefficients (3 bytes a pixel: 28 MB at 9 MP) until the end, and
//!   which [`jpeg_rows`] feeds straight from the banded resampler, so a
//!   large output is never held whole;
//! - PNG: `image`'s encoder (pure Rust);
//! - WebP: libwebp's lossy encoder, with lossless alpha (`edgethumb_codecs::
//!   webp`, C, built for wasm32 by `scripts/wasm-cc`);
//! - GIF: `image`'s encoder, one NeuQuant palette a frame;
//! - AVIF: libaom (`edgethumb_codecs::avif_encode`, C) through [`avif`];
//! - animations, in WebP and GIF: [`animated`].

pub mod animated;
pub mod avif;
pub mod jpeg_rows;

use edgethumb_codecs::jpeg_encode::{self, EncodeError, Mode};
use edgethumb_codecs::webp::{self, WebpError};
use image::{DynamicImage, ImageEncoder};

use super::memory::Encode;
use crate::error::Error;
use crate::request::options::Format;

impl From<WebpError> for Error {
    fn from(e: WebpError) -> Self {
        match e {
            // Only reachable when EDGETHUMB_MAX_RESULT_DIMENSION is raised past it.
            WebpError::TooLarge => Error::BadOption {
                option: "format".into(),
                reason: e.to_string(),
            },
            WebpError::Failed(_) => Error::Internal(e.to_string()),
        }
    }
}

impl From<EncodeError> for Error {
    // Sizes are checked against the result limits before any work.
    fn from(e: EncodeError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// The largest JPEG output written progressive. Above it, baseline: the
/// coefficients of a progressive (or Huffman-optimised) encode would be the
/// largest thing the transform holds, and a first pass matters least for
/// a picture that size. libvips writes baseline unless asked.
pub const PROGRESSIVE_MAX_PIXELS: u64 = 5_000_000;

/// Whether a JPEG of this size is written progressive.
pub fn progressive(w: u32, h: u32) -> bool {
    w as u64 * h as u64 <= PROGRESSIVE_MAX_PIXELS
}

/// Encodes made at most for `max_bytes`: the asked quality, then a
/// bisection of the qualities below it.
pub const MAX_BYTES_ENCODES: u32 = 6;

/// `max_bytes`: the highest quality under `first` whose output fits in
/// `max` bytes, found by bisection in at most [`MAX_BYTES_ENCODES`]
/// encodes (the asked quality first: most outputs fit at once). When none
/// fits, the smallest made, as imgproxy answers. `more` is asked before
/// each encode after the first (the transform deadline).
pub fn within_bytes(
    max: u32,
    first: u8,
    mut more: impl FnMut() -> Result<(), Error>,
    mut encode: impl FnMut(u8) -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    let fits = |b: &Vec<u8>| b.len() <= max as usize;
    let mut smallest = encode(first)?;
    if fits(&smallest) {
        return Ok(smallest);
    }
    let (mut lo, mut hi) = (1u8, first.saturating_sub(1));
    let mut best: Option<Vec<u8>> = None;
    for _ in 1..MAX_BYTES_ENCODES {
        if lo > hi {
            break;
        }
        more()?;
        let q = lo + (hi - lo).div_ceil(2);
        let out = encode(q)?;
        if fits(&out) {
            best = Some(out);
            lo = q + 1;
        } else {
            if out.len() < smallest.len() {
                smallest = out;
            }
            hi = q - 1;
        }
    }
    Ok(best.unwrap_or(smallest))
}

/// Whether `max_bytes` can lower this format's size: the lossy ones.
pub fn has_quality(format: Format) -> bool {
    matches!(format, Format::Jpeg | Format::Webp | Format::Avif)
}

/// What encoding to `format` at `size` holds, for the memory estimate.
pub fn memory(format: Format, size: (u32, u32)) -> Encode {
    match format {
        Format::Jpeg if progressive(size.0, size.1) => Encode::ProgressiveJpeg,
        Format::Jpeg => Encode::BaselineJpeg,
        Format::Png => Encode::Png,
        Format::Webp => Encode::Webp,
        Format::Gif => Encode::Gif,
        Format::Avif => Encode::Avif,
    }
}

/// Encodes `img`; a JPEG goes into a buffer of `reserve` bytes
/// ([`super::memory::jpeg_reserve`]).
pub fn encode(
    img: &DynamicImage,
    format: Format,
    quality: u8,
    reserve: usize,
) -> Result<Vec<u8>, Error> {
    let (w, h) = (img.width(), img.height());
    let quality = quality.clamp(1, 100);
    match format {
        Format::Jpeg => {
            let rgb;
            let pixels = match img {
                DynamicImage::ImageRgb8(i) => i.as_raw(),
                other => {
                    rgb = other.to_rgb8();
                    rgb.as_raw()
                }
            };
            let mode = if progressive(w, h) {
                // Two passes, DC then AC: a first picture for the browser
                // at about baseline's bytes.
                Mode::Progressive
            } else {
                Mode::Baseline
            };
            let out = Vec::with_capacity(reserve);
            Ok(jpeg_encode::encode_rgb(pixels, w, h, quality, mode, out)?)
        }
        Format::Png => {
            let mut out = Vec::new();
            let enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Default,
                image::codecs::png::FilterType::Adaptive,
            );
            enc.write_image(img.as_bytes(), w, h, img.color().into())
                .map_err(|e| Error::Internal(format!("PNG encode: {e}")))?;
            Ok(out)
        }
        Format::Webp => Ok(match img {
            DynamicImage::ImageRgb8(i) => webp::encode_lossy(i.as_raw(), w, h, 3, quality),
            DynamicImage::ImageRgba8(i) => webp::encode_lossy(i.as_raw(), w, h, 4, quality),
            other if other.color().has_alpha() => {
                webp::encode_lossy(other.to_rgba8().as_raw(), w, h, 4, quality)
            }
            other => webp::encode_lossy(other.to_rgb8().as_raw(), w, h, 3, quality),
        }?),
        Format::Gif => animated::gif_still(img),
        Format::Avif => avif::encode(img, quality),
    }
}

/// `body` (an encoded `format` image of `size`) carrying the ICC profile
/// `icc`: JPEG APP2 segments after SOI, a PNG `iCCP` chunk after IHDR, a
/// WebP `ICCP` chunk in the extended (VP8X) container. Each is written
/// into the finished file, so every encoder and the streamed path share
/// it; only `strip_color_profile:0` pays for the copy.
pub fn with_icc(body: Vec<u8>, format: Format, icc: &[u8], size: (u32, u32)) -> Vec<u8> {
    match format {
        Format::Jpeg => jpeg_with_icc(body, icc),
        Format::Png => png_with_icc(body, icc),
        Format::Webp => webp_with_icc(body, icc, size),
        // Browsers ignore GIF's rare ICC extension.
        Format::Gif => body,
        // avif_encode writes sRGB's colour description (nclx) and no
        // `colr` profile box; a kept profile is not carried.
        Format::Avif => body,
    }
}

fn jpeg_with_icc(body: Vec<u8>, icc: &[u8]) -> Vec<u8> {
    // 65535 less the length field and the 14-byte "ICC_PROFILE\0" n/m header.
    const PER_SEGMENT: usize = 65535 - 2 - 14;
    let parts: Vec<&[u8]> = icc.chunks(PER_SEGMENT).collect();
    if body.get(..2) != Some(&[0xFF, 0xD8][..]) || parts.is_empty() || parts.len() > 255 {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + icc.len() + 18 * parts.len());
    out.extend_from_slice(&body[..2]);
    for (i, part) in parts.iter().enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((2 + 14 + part.len()) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[i as u8 + 1, parts.len() as u8]);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&body[2..]);
    out
}

fn png_with_icc(body: Vec<u8>, icc: &[u8]) -> Vec<u8> {
    // The signature (8) and IHDR (4 + 4 + 13 + 4) come first.
    const AFTER_IHDR: usize = 33;
    if body.get(12..16) != Some(&b"IHDR"[..]) || body.len() < AFTER_IHDR {
        return body;
    }
    let mut data = b"icc\0\0".to_vec(); // name, then compression method 0
    data.extend_from_slice(&fdeflate::compress_to_vec(icc));
    let mut chunk = b"iCCP".to_vec();
    chunk.extend_from_slice(&data);
    let mut out = Vec::with_capacity(body.len() + data.len() + 12);
    out.extend_from_slice(&body[..AFTER_IHDR]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32fast::hash(&chunk).to_be_bytes());
    out.extend_from_slice(&body[AFTER_IHDR..]);
    out
}

fn webp_with_icc(body: Vec<u8>, icc: &[u8], (w, h): (u32, u32)) -> Vec<u8> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    if body.get(..4) != Some(&b"RIFF"[..]) || body.get(8..12) != Some(&b"WEBP"[..]) {
        return body;
    }
    let chunks = &body[12..];
    let mut iccp = b"ICCP".to_vec();
    iccp.extend_from_slice(&(icc.len() as u32).to_le_bytes());
    iccp.extend_from_slice(icc);
    if icc.len() % 2 == 1 {
        iccp.push(0);
    }
    let mut out = Vec::with_capacity(body.len() + iccp.len() + 18);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    // VP8X: its fourcc, size 10, flags, 3 reserved bytes, width - 1 and
    // height - 1 in 24 bits each; the ICCP chunk must follow it.
    let rest = if chunks.get(..4) == Some(&b"VP8X"[..]) && chunks.len() >= 18 {
        let mut vp8x = chunks[..18].to_vec();
        vp8x[8] |= ICC_FLAG;
        out.extend_from_slice(&vp8x);
        &chunks[18..]
    } else {
        // A simple file has alpha only as a lossless one that says so (the
        // bit after its 14-bit width and height).
        let alpha = chunks.get(..4) == Some(&b"VP8L"[..])
            && chunks.get(9..13).is_some_and(|h| h[3] & 0x10 != 0);
        out.extend_from_slice(b"VP8X");
        out.extend_from_slice(&10u32.to_le_bytes());
        out.push(ICC_FLAG | if alpha { ALPHA_FLAG } else { 0 });
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&(w.saturating_sub(1)).to_le_bytes()[..3]);
        out.extend_from_slice(&(h.saturating_sub(1)).to_le_bytes()[..3]);
        chunks
    };
    out.extend_from_slice(&iccp);
    out.extend_from_slice(rest);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every format carries the profile where its decoders look for it,
    /// and still decodes to the same picture.
    #[test]
    fn outputs_carry_a_kept_profile() {
        use image::ImageDecoder;
        let img = broke_webp_rust();
        let icc: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            for alpha in [false, true] {
                let img = if alpha {
                    let mut rgba = img.to_rgba8();
                    for p in rgba.pixels_mut().step_by(7) {
                        p[3] = 100;
                    }
                    DynamicImage::ImageRgba8(rgba)
                } else {
                    img.clone()
                };
                let plain = encode(&img, format, 80, 0).unwrap();
                let size = (img.width(), img.height());
                let tagged = with_icc(plain.clone(), format, &icc, size);
                let read = |bytes: &[u8]| {
                    let r = image::ImageReader::new(std::io::Cursor::new(bytes))
                        .with_guessed_format()
                        .unwrap();
                    let mut d = r.into_decoder().unwrap();
                    let icc = d.icc_profile().unwrap();
                    (icc, DynamicImage::from_decoder(d).unwrap())
                };
                let (got, pixels) = read(&tagged);
                assert_eq!(got.as_deref(), Some(&icc[..]), "{format:?} alpha {alpha}");
                assert_eq!(pixels, read(&plain).1, "{format:?} alpha {alpha}");
            }
        }
    }

    /// A generated picture that webp-rust 0.3.2, our earlier encoder, wrote
    /// as a corrupt bitstream at quality 30.
    fn broke_webp_rust() -> DynamicImage {
        let (w, h, seed) = (192u32, 128u32, 2u32);
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let t =
                (((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40503) ^ seed.wrapping_mul(97))
                    >> 13)
                    % 64) as f32
                    / 64.0;
            let a = (fx * (3.0 + s % 7.0) + fy * (s % 5.0)).sin();
            let b = ((fx - 0.5) * (fy - 0.3) * (10.0 + s % 13.0)).cos();
            image::Rgb([
                (128.0 + 100.0 * a + 20.0 * t * (s % 3.0)) as u8,
                (128.0 + 90.0 * b) as u8,
                (200.0 * fx * fy + 40.0 * t) as u8,
            ])
        }))
    }

    fn mean_error(a: &DynamicImage, body: &[u8]) -> f64 {
        let back = image::load_from_memory(body).unwrap().to_rgb8();
        let a = a.to_rgb8();
        assert_eq!(a.dimensions(), back.dimensions());
        let sum: u64 = a
            .as_raw()
            .iter()
            .zip(back.as_raw())
            .map(|(x, y)| x.abs_diff(*y) as u64)
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn lossy_webp_is_sound_at_every_quality() {
        let img = broke_webp_rust();
        for q in [1, 30, 80, 100] {
            let body = encode(&img, Format::Webp, q, 0).unwrap();
            let err = mean_error(&img, &body);
            // webp-rust's corrupt output was over 34.
            assert!(err < 13.0, "q{q}: mean error {err}");
        }
    }

    #[test]
    fn webp_keeps_alpha_and_grey_inputs_encode() {
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(64, 40, |x, _| {
            image::Rgba([200, 30, 30, if x < 32 { 255 } else { 0 }])
        }));
        let back = image::load_from_memory(&encode(&rgba, Format::Webp, 80, 0).unwrap())
            .unwrap()
            .to_rgba8();
        assert_eq!(back.get_pixel(5, 5).0[3], 255);
        assert_eq!(back.get_pixel(60, 5).0[3], 0, "alpha is lossless");
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(33, 17, |x, _| {
            image::Luma([(x * 7) as u8])
        }));
        assert!(mean_error(&grey, &encode(&grey, Format::Webp, 90, 0).unwrap()) < 3.0);
    }

    #[test]
    fn max_bytes_takes_the_best_quality_that_fits_in_six_encodes() {
        // A stand-in encoder whose size is 10 bytes a quality point.
        let tried = std::cell::RefCell::new(Vec::new());
        let encode = |q: u8| {
            tried.borrow_mut().push(q);
            Ok(vec![0u8; q as usize * 10])
        };
        let out = within_bytes(455, 80, || Ok(()), encode).unwrap();
        assert_eq!(out.len(), 450);
        assert_eq!(tried.borrow()[..3], [80, 40, 60]);
        assert!(tried.borrow().len() <= MAX_BYTES_ENCODES as usize);
        // Fits at once: one encode.
        tried.borrow_mut().clear();
        assert_eq!(within_bytes(900, 80, || Ok(()), encode).unwrap().len(), 800);
        assert_eq!(tried.borrow().len(), 1);
        // Nothing fits: the smallest made (80, 40, 20, 10, 5, then 3).
        let out = within_bytes(5, 80, || Ok(()), encode).unwrap();
        assert_eq!(out.len(), 30);
        // The deadline stops the search between encodes.
        let stop = || Err(Error::TransformTimeout(1));
        assert!(within_bytes(5, 80, stop, encode).is_err());
    }
}
