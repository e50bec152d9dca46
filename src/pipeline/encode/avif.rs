//! AVIF through ravif (rav1e, pure Rust): one still image, 8-bit 4:4:4
//! YCbCr, alpha as a second AV1 image. No asm and no threads, so the same
//! code runs natively, in workerd and under wasi:http. Why rav1e and these
//! settings, with figures: README, "AVIF".

use image::DynamicImage;
use rgb::FromSlice;

use crate::error::Error;

/// rav1e's fastest preset: at 400 px a median 106 ms natively and 130
/// under V8; speed 8 saved 6–12% of bytes at equal SSIM for 3 times the
/// time, which the edge cannot spend (README, "AVIF").
pub const SPEED: u8 = 10;

/// Encodes `img` at `quality` (1–100, ravif's scale). The same number as
/// WebP's gives about the same SSIM: on the corpus at 400 px, ravif's
/// quality that matches WebP q80 is a median 83 (75 to 92). imgproxy's
/// default for AVIF, 63, suits libaom at its slower settings; here it
/// gave 0.06 less SSIM than WebP q80, so no separate default.
pub fn encode(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, Error> {
    let q = f32::from(quality.clamp(1, 100));
    let encoder = ravif::Encoder::new()
        .with_quality(q)
        .with_alpha_quality(q)
        .with_speed(SPEED)
        .with_bit_depth(ravif::BitDepth::Eight)
        .with_num_threads(Some(1))
        // Colour under transparent pixels is flattened, which compresses.
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let encoded = if img.color().has_alpha() {
        let converted;
        let rgba = match img {
            DynamicImage::ImageRgba8(i) => i,
            other => {
                converted = other.to_rgba8();
                &converted
            }
        };
        encoder.encode_rgba(ravif::Img::new(rgba.as_raw().as_rgba(), w, h))
    } else {
        let converted;
        let rgb = match img {
            DynamicImage::ImageRgb8(i) => i,
            other => {
                converted = other.to_rgb8();
                &converted
            }
        };
        encoder.encode_rgb(ravif::Img::new(rgb.as_raw().as_rgb(), w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| Error::Internal(format!("AVIF encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgethumb_codecs::avif_decode;

    fn scene(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            if x < w / 2 {
                image::Rgb([200, 40, 30])
            } else {
                image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 160])
            }
        })
    }

    #[test]
    fn reads_back_at_its_size_and_colours() {
        for (w, h) in [(1, 1), (3, 2), (64, 64), (401, 267)] {
            let img = DynamicImage::ImageRgb8(scene(w, h));
            let body = encode(&img, 80).unwrap();
            assert!(avif_decode::is_avif(&body), "{w}x{h}");
            let back = avif_decode::decode(&body).unwrap();
            assert_eq!(back.dimensions(), (w, h));
            if w >= 64 {
                let px = back.get_pixel(w / 4, h / 2).0;
                for (got, want) in px.iter().zip([200u8, 40, 30, 255]) {
                    assert!(got.abs_diff(want) <= 4, "{w}x{h}: {px:?}");
                }
            }
        }
    }

    #[test]
    fn keeps_alpha_and_takes_grey() {
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(64, 40, |x, _| {
            image::Rgba([200, 30, 30, if x < 32 { 255 } else { 0 }])
        }));
        let back = avif_decode::decode(&encode(&rgba, 80).unwrap()).unwrap();
        assert!(back.get_pixel(5, 5).0[3] >= 250);
        assert!(back.get_pixel(60, 5).0[3] <= 5);
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(33, 17, |x, _| {
            image::Luma([(x * 7) as u8])
        }));
        let back = avif_decode::decode(&encode(&grey, 90).unwrap()).unwrap();
        assert!(back.get_pixel(16, 8).0[0].abs_diff(16 * 7) <= 6);
    }

    #[test]
    fn quality_trades_bytes() {
        let img = DynamicImage::ImageRgb8(scene(200, 150));
        let low = encode(&img, 30).unwrap().len();
        let high = encode(&img, 95).unwrap().len();
        assert!(low < high, "q30 {low} B, q95 {high} B");
    }
}
