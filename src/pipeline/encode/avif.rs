//! AVIF through libaom (`edgethumb_codecs::avif_encode`): one still image,
//! 8-bit 4:2:0 YCbCr, alpha as a second AV1 image, grey as monochrome. The
//! same plain-C build runs natively, in workerd and under wasi:http. Why
//! libaom and these settings, with figures: README, "AVIF".

use edgethumb_codecs::avif_encode::{self, Pixels, Settings};
use image::DynamicImage;

use crate::error::Error;

/// libaom's `cpu-used` in all-intra mode (0–9; higher is faster). On the
/// corpus at 400 px and equal SSIM, 9 wrote 1.02× WebP's bytes, 8 0.82×,
/// 7 0.77× and 6 0.73×; 7 took 66 ms natively for the whole thumbnail,
/// 8 50 and 6 108 (README, "AVIF").
pub const SPEED: u8 = 7;

/// Encodes `img` at `quality` (1–100, libheif's and so imgproxy's scale:
/// `avif_encode::cq_level`).
pub fn encode(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, Error> {
    let settings = Settings {
        quality,
        speed: SPEED,
        subsample: true,
    };
    let (w, h) = (img.width(), img.height());
    let (rgba, rgb);
    let pixels = match img {
        DynamicImage::ImageLuma8(i) => Pixels::Grey(i.as_raw()),
        DynamicImage::ImageLumaA8(i) => Pixels::GreyAlpha(i.as_raw()),
        DynamicImage::ImageRgb8(i) => Pixels::Rgb(i.as_raw()),
        DynamicImage::ImageRgba8(i) => Pixels::Rgba(i.as_raw()),
        other if other.color().has_alpha() => {
            rgba = other.to_rgba8();
            Pixels::Rgba(rgba.as_raw())
        }
        other => {
            rgb = other.to_rgb8();
            Pixels::Rgb(rgb.as_raw())
        }
    };
    avif_encode::encode(pixels, w, h, &settings)
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
