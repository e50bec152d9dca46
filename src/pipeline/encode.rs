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
            webp_rust::encode_lossy_with_config(&buf, &config, None)
                .map_err(|e| Error::Internal(format!("WebP encode: {e:?}")))
        }
    }
}
