//! Pixel effects after resampling: photon-rs blur and sharpen, extending
//! onto a canvas, and flattening alpha for formats without it.

use image::{DynamicImage, Rgba, RgbaImage};
use photon_rs::PhotonImage;

/// Gaussian blur with photon-rs (three box passes ≈ a Gaussian of `sigma`).
pub fn blur(img: DynamicImage, sigma: f32) -> DynamicImage {
    with_photon(img, |p| {
        if let Some(r) = radius(p, sigma) {
            photon_rs::conv::gaussian_blur(p, r);
        }
    })
}

/// Unsharp mask: `out = in + (in - blur(in, sigma))`, with photon-rs's
/// Gaussian. photon's own `sharpen` is a fixed 3×3 kernel with no sigma.
pub fn sharpen(img: DynamicImage, sigma: f32) -> DynamicImage {
    with_photon(img, |p| {
        let Some(r) = radius(p, sigma) else {
            photon_rs::conv::sharpen(p);
            return;
        };
        let original = p.get_raw_pixels();
        photon_rs::conv::gaussian_blur(p, r);
        let blurred = p.get_raw_pixels();
        let mut out = original.clone();
        for (i, (o, b)) in original.iter().zip(&blurred).enumerate() {
            if i % 4 != 3 {
                out[i] = (2 * *o as i16 - *b as i16).clamp(0, 255) as u8;
            }
        }
        *p = PhotonImage::new(out, p.get_width(), p.get_height());
    })
}

/// photon-rs clamps the radius to under half the image; below 1 there is
/// nothing to blur.
fn radius(p: &PhotonImage, sigma: f32) -> Option<i32> {
    let max = (p.get_width().min(p.get_height()) as i32) / 2 - 1;
    let r = (sigma.round() as i32).min(max);
    (r >= 1).then_some(r)
}

fn with_photon(img: DynamicImage, f: impl FnOnce(&mut PhotonImage)) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let (w, h) = (img.width(), img.height());
    let mut p = PhotonImage::new(img.into_rgba8().into_raw(), w, h);
    f(&mut p);
    let out = RgbaImage::from_raw(w, h, p.get_raw_pixels())
        .map(DynamicImage::ImageRgba8)
        .unwrap_or_else(|| DynamicImage::ImageRgba8(RgbaImage::new(w, h)));
    if had_alpha {
        out
    } else {
        DynamicImage::ImageRgb8(out.into_rgb8())
    }
}

/// Places `img` at `pos` on a `canvas`-sized background.
pub fn extend(
    img: DynamicImage,
    canvas: (u32, u32),
    pos: (u32, u32),
    fill: [u8; 4],
) -> DynamicImage {
    let mut bg = RgbaImage::from_pixel(canvas.0, canvas.1, Rgba(fill));
    image::imageops::replace(&mut bg, &img.into_rgba8(), pos.0 as i64, pos.1 as i64);
    let out = DynamicImage::ImageRgba8(bg);
    drop_opaque_alpha(out)
}

/// Blends alpha onto a solid background.
pub fn flatten(img: DynamicImage, bg: [u8; 3]) -> DynamicImage {
    let DynamicImage::ImageRgba8(rgba) = img else {
        return img;
    };
    let (w, h) = rgba.dimensions();
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for p in rgba.pixels() {
        out.extend(blend(&p.0, bg));
    }
    image::RgbImage::from_raw(w, h, out)
        .map(DynamicImage::ImageRgb8)
        .unwrap_or(DynamicImage::ImageRgba8(rgba))
}

/// One RGBA pixel blended onto `bg`.
pub fn blend(p: &[u8], bg: [u8; 3]) -> [u8; 3] {
    let a = p[3] as u32;
    [0, 1, 2].map(|c| ((p[c] as u32 * a + bg[c] as u32 * (255 - a) + 127) / 255) as u8)
}

/// RGBA whose alpha is all 255 becomes RGB: the fallback format can then be
/// JPEG, and encoders do less work.
pub fn drop_opaque_alpha(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageRgba8(rgba) if rgba.pixels().all(|p| p[3] == 255) => {
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).into_rgb8())
        }
        other => other,
    }
}
