//! Pixel effects after resampling: photon-rs blur and sharpen, pixelate,
//! extending onto a canvas, and flattening alpha for formats without it.

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

/// `size`×`size` blocks from the top-left corner, each its mean, as
/// libvips (imgproxy) makes them: a block cut by the right or bottom edge
/// averages the image mirrored past it. In place, reading each pixel at
/// most four times whatever the size. photon-rs's `pixelize` copies each
/// block's top-left pixel instead, so a thin line vanishes or fills its
/// block.
pub fn pixelate(mut img: DynamicImage, size: u32) -> DynamicImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = (size as usize).min(w.max(h));
    if n <= 1 {
        return img;
    }
    let channels = img.color().channel_count() as usize;
    let bytes = match &mut img {
        DynamicImage::ImageRgb8(i) => i.as_mut(),
        DynamicImage::ImageRgba8(i) => i.as_mut(),
        DynamicImage::ImageLuma8(i) => i.as_mut(),
        DynamicImage::ImageLumaA8(i) => i.as_mut(),
        other => {
            let rgba = DynamicImage::ImageRgba8(std::mem::take(other).into_rgba8());
            return pixelate(rgba, size);
        }
    };
    let columns: Vec<Vec<(usize, u64)>> = (0..w.div_ceil(n)).map(|b| taps(b * n, n, w)).collect();
    let area = (n * n) as u64;
    let mut sums = vec![0u64; columns.len() * channels];
    for top in (0..h).step_by(n) {
        sums.fill(0);
        for (row, row_weight) in taps(top, n, h) {
            let row = &bytes[row * w * channels..(row + 1) * w * channels];
            for (block, cols) in columns.iter().enumerate() {
                let sum = &mut sums[block * channels..(block + 1) * channels];
                for &(col, col_weight) in cols {
                    let px = &row[col * channels..(col + 1) * channels];
                    for (s, &v) in sum.iter_mut().zip(px) {
                        *s += v as u64 * row_weight * col_weight;
                    }
                }
            }
        }
        for y in top..(top + n).min(h) {
            let row = &mut bytes[y * w * channels..(y + 1) * w * channels];
            for (x, px) in row.chunks_exact_mut(channels).enumerate() {
                let sum = &sums[(x / n) * channels..(x / n + 1) * channels];
                for (v, &s) in px.iter_mut().zip(sum) {
                    *v = ((s + area / 2) / area) as u8;
                }
            }
        }
    }
    img
}

/// The pixels `start..start + n` of a side `len` long cover, mirrored
/// past its end with the edge pixel repeated (libvips' `MIRROR`), each
/// with how many times it is covered.
fn taps(start: usize, n: usize, len: usize) -> Vec<(usize, u64)> {
    let mut covered: Vec<usize> = (start..start + n)
        .map(|i| {
            let m = i % (2 * len);
            if m < len {
                m
            } else {
                2 * len - 1 - m
            }
        })
        .collect();
    covered.sort_unstable();
    let mut out: Vec<(usize, u64)> = Vec::new();
    for i in covered {
        match out.last_mut() {
            Some((last, count)) if *last == i => *count += 1,
            _ => out.push((i, 1)),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn pixelate_makes_block_means_mirrored_past_the_edges() {
        // 5x1 grey 0, 10, 20, 30, 40 in blocks of 2: the last block is 40
        // and its mirror, 40.
        let img = DynamicImage::ImageLuma8(GrayImage::from_fn(5, 2, |x, _| Luma([10 * x as u8])));
        let out = pixelate(img, 2).into_luma8();
        let row: Vec<u8> = (0..5).map(|x| out.get_pixel(x, 0)[0]).collect();
        assert_eq!(row, [5, 5, 25, 25, 40]);
        assert_eq!(out.get_pixel(4, 1)[0], 40);
        // A block larger than the short side averages its reflections:
        // 0, 10, 20 then 20, 10, 0 over six is 10.
        let img = DynamicImage::ImageLuma8(GrayImage::from_fn(3, 1, |x, _| Luma([10 * x as u8])));
        let out = pixelate(img, 6).into_luma8();
        assert_eq!(out.as_raw(), &vec![10, 10, 10]);
        // Size 1 and 0 change nothing; RGBA keeps its four channels.
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(3, 3, Rgba([1, 2, 3, 4])));
        assert_eq!(pixelate(rgba.clone(), 1), rgba);
        assert_eq!(pixelate(rgba.clone(), 3), rgba);
    }

    #[test]
    fn pixelate_reads_each_pixel_a_few_times_whatever_the_size() {
        // 8192x1 at 8192: a naive loop over the mirrored 8192x8192 block
        // reads 67 M pixels; this reads the row twice.
        let img =
            DynamicImage::ImageLuma8(GrayImage::from_fn(8192, 1, |x, _| Luma([(x % 256) as u8])));
        let started = std::time::Instant::now();
        let out = pixelate(img, 8192).into_luma8();
        assert!(out.pixels().all(|p| p[0] == out.get_pixel(0, 0)[0]));
        assert!(
            started.elapsed().as_millis() < 200,
            "{:?}",
            started.elapsed()
        );
    }
}
