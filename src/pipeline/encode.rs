//! Encoders, all pure Rust so they build for wasm32:
//! - JPEG: `jpeg-encoder`, progressive (two scans) with optimised Huffman
//!   tables and averaged 4:2:0 chroma;
//! - PNG: `image`'s encoder;
//! - WebP: `webp-rust`'s lossy VP8 encoder (lossy WebP in pure Rust: see
//!   the README's "Formats" section for what exists and why this one).

use image::{DynamicImage, ImageEncoder};

use crate::error::Error;
use crate::options::Format;

pub fn encode(img: &DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, Error> {
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
            let (w16, h16) = (
                u16::try_from(w).map_err(|_| Error::Internal("JPEG width over 65535".into()))?,
                u16::try_from(h).map_err(|_| Error::Internal("JPEG height over 65535".into()))?,
            );
            let mut out = Vec::with_capacity((w * h / 4) as usize);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
            // Progressive in two scans (DC, then all AC): a first pass for
            // the browser at 0.2% over baseline. jpeg-encoder's default four
            // spectral bands cost 8% more bytes at the same quality
            // (measured over the corpus' 400 px thumbnails).
            enc.set_progressive(true);
            enc.set_progressive_scans(2);
            enc.set_optimized_huffman_tables(true);
            enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            // Average each 2×2 chroma block, as libjpeg does; the default
            // takes one pixel of four, which aliases.
            enc.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
            enc.encode(pixels, w16, h16, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| Error::Internal(format!("JPEG encode: {e}")))?;
            Ok(out)
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
        Format::Webp => {
            let rgba = img.to_rgba8();
            let buf = webp_rust::ImageBuffer {
                width: w as usize,
                height: h as usize,
                rgba: rgba.into_raw(),
            };
            // Method 0: ~7 ms for a 400 px thumbnail. In webp-rust 0.3.2,
            // methods 1-2 fail on some inputs and 3-6 cost 20-50x more.
            let config = webp_rust::LossyEncodingConfig {
                quality: quality as f32,
                method: 0,
                ..Default::default()
            };
            let body = webp_rust::encode_lossy_with_config(&buf, &config, None)
                .map_err(|e| Error::Internal(format!("WebP encode: {e:?}")))?;
            check_webp(&body, &buf.rgba)?;
            Ok(body)
        }
    }
}

/// Lossless WebP (`image`'s encoder): larger, but always sound; what an
/// explicit `f:webp` gets when the lossy encode is refused.
pub fn webp_lossless(img: &DynamicImage) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let rgba;
    let (pixels, color) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw(), image::ExtendedColorType::Rgb8),
        DynamicImage::ImageRgba8(i) => (i.as_raw(), image::ExtendedColorType::Rgba8),
        other => {
            rgba = other.to_rgba8();
            (rgba.as_raw(), image::ExtendedColorType::Rgba8)
        }
    };
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(pixels, img.width(), img.height(), color)
        .map_err(|e| Error::Internal(format!("WebP lossless encode: {e}")))?;
    Ok(out)
}

/// Mean absolute error (per RGB sample of visible pixels) above which a
/// lossy WebP is corrupt, not just lossy. Measured over the corpus' 400 px
/// thumbnails: sound encodes stay under 13 even at quality 1; corrupt ones
/// are over 34.
const WEBP_MAX_MEAN_ERROR: f64 = 24.0;

/// webp-rust 0.3.2 (method 0) writes corrupt bitstreams for some inputs:
/// libwebp decodes them to the same garbage, and which images break depends
/// on the quality (5 of the 12 corpus images at some quality). So every
/// lossy WebP is decoded again (`image`'s decoder, a few ms at thumbnail
/// size) and compared with what was encoded; a corrupt one is an error,
/// never a response.
fn check_webp(body: &[u8], rgba: &[u8]) -> Result<(), Error> {
    let decoded = image::load_from_memory_with_format(body, image::ImageFormat::WebP)
        .map_err(|e| Error::Internal(format!("WebP encoder output does not decode: {e}")))?
        .to_rgba8();
    if decoded.as_raw().len() != rgba.len() {
        return Err(Error::Internal(
            "WebP encoder output has the wrong size".into(),
        ));
    }
    let (mut error, mut samples) = (0u64, 0u64);
    for (ours, theirs) in rgba.chunks_exact(4).zip(decoded.as_raw().chunks_exact(4)) {
        // Colour under full transparency is not kept, and need not be.
        if ours[3] == 0 {
            continue;
        }
        for c in 0..3 {
            error += ours[c].abs_diff(theirs[c]) as u64;
        }
        samples += 3;
    }
    let mean = error as f64 / samples.max(1) as f64;
    if mean > WEBP_MAX_MEAN_ERROR {
        return Err(Error::Internal(format!(
            "WebP encoder produced a corrupt image (mean error {mean:.0})"
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A generated picture that webp-rust 0.3.2 encodes corruptly at
    /// quality 30 (found by searching such pictures).
    pub(crate) fn webp_rust_breaks_this() -> DynamicImage {
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

    #[test]
    fn a_corrupt_lossy_webp_is_refused() {
        let img = webp_rust_breaks_this();
        // The encoder really breaks on it...
        let buf = webp_rust::ImageBuffer {
            width: 192,
            height: 128,
            rgba: img.to_rgba8().into_raw(),
        };
        let config = webp_rust::LossyEncodingConfig {
            quality: 30.0,
            method: 0,
            ..Default::default()
        };
        let body = webp_rust::encode_lossy_with_config(&buf, &config, None).unwrap();
        assert!(check_webp(&body, &buf.rgba).is_err());
        // ...so `encode` refuses it, and lossless WebP is sound.
        let err = encode(&img, Format::Webp, 30).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        let lossless = webp_lossless(&img).unwrap();
        let back = image::load_from_memory(&lossless).unwrap().to_rgb8();
        assert_eq!(back.as_raw(), img.to_rgb8().as_raw());
    }

    #[test]
    fn sound_lossy_webp_passes_at_every_quality() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(160, 120, |x, y| {
            image::Rgb([(x * 255 / 160) as u8, (y * 2) as u8, 90])
        }));
        for q in [1, 30, 80, 100] {
            encode(&img, Format::Webp, q).unwrap();
        }
    }
}
