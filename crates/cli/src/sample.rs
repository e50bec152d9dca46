//! The embedded sample image for dev mode: generated at start-up (a
//! landscape with sky, sun, hills and fine detail), so the repository ships
//! no binary asset and the first run works with no network.

use edgethumb::request::options::Format;
use image::{DynamicImage, Rgb, RgbImage};

pub const PATH: &str = "/_sample/photo.jpg";

pub fn jpeg() -> Result<Vec<u8>, edgethumb::Error> {
    let (w, h) = (1600u32, 1067u32);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let hill = 0.62 + 0.08 * (fx * 9.0).sin() + 0.04 * (fx * 23.0).cos();
        let sun = ((fx - 0.72).powi(2) + (fy - 0.25).powi(2)).sqrt();
        if sun < 0.07 {
            Rgb([255, 214, 90])
        } else if fy > hill {
            // Grass with a fine texture, so resizing has detail to keep.
            let t = ((x * 7 + y * 13) % 17) as f32 / 17.0;
            Rgb([
                (40.0 + 30.0 * t) as u8,
                (110.0 + 60.0 * (1.0 - fy) + 25.0 * t) as u8,
                (45.0 + 20.0 * t) as u8,
            ])
        } else {
            Rgb([
                (90.0 + 100.0 * fy) as u8,
                (150.0 + 70.0 * fy) as u8,
                (235.0 - 20.0 * fy) as u8,
            ])
        }
    });
    edgethumb::pipeline::encode::encode(&DynamicImage::ImageRgb8(img), Format::Jpeg, 90, 0)
}
