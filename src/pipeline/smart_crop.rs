//! Content-aware crop for `gravity:sm`: keep the window with the most
//! detail (luminance edges) and colour (saturation), the cues libvips'
//! `attention` strategy uses. Linear in the pixel count: one pass builds a
//! coarse grid, an integral image scores every window position.

use image::{DynamicImage, GenericImageView};

/// Grid cells along the longer side.
const GRID: u32 = 160;

/// The top-left corner of the most interesting `crop`-sized window.
pub fn find(img: &DynamicImage, crop: (u32, u32)) -> (u32, u32) {
    let (w, h) = img.dimensions();
    let (cw, ch) = (crop.0.min(w), crop.1.min(h));
    if cw == w && ch == h {
        return (0, 0);
    }
    let f = w.max(h).div_ceil(GRID).max(1);
    let (gw, gh) = (w.div_ceil(f) as usize, h.div_ceil(f) as usize);

    // Average luminance and saturation per cell.
    let mut lum = vec![0f32; gw * gh];
    let mut sat = vec![0f32; gw * gh];
    let mut count = vec![0f32; gw * gh];
    let rgb = img.as_rgb8();
    let rgba = img.as_rgba8();
    for y in 0..h {
        let row = (y / f) as usize * gw;
        for x in 0..w {
            let p = match (rgb, rgba) {
                (Some(i), _) => {
                    let p = i.get_pixel(x, y).0;
                    [p[0], p[1], p[2], 255]
                }
                (_, Some(i)) => i.get_pixel(x, y).0,
                _ => img.get_pixel(x, y).0,
            };
            let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
            let a = p[3] as f32 / 255.0;
            let cell = row + (x / f) as usize;
            lum[cell] += (0.299 * r + 0.587 * g + 0.114 * b) * a;
            sat[cell] += (r.max(g).max(b) - r.min(g).min(b)) * a;
            count[cell] += 1.0;
        }
    }
    for i in 0..lum.len() {
        let n = count[i].max(1.0);
        lum[i] /= n;
        sat[i] /= n;
    }
    // Interest: local contrast plus a little colour.
    let mut interest = vec![0f64; gw * gh];
    for gy in 0..gh {
        for gx in 0..gw {
            let i = gy * gw + gx;
            let dx = if gx + 1 < gw {
                (lum[i + 1] - lum[i]).abs()
            } else {
                0.0
            };
            let dy = if gy + 1 < gh {
                (lum[i + gw] - lum[i]).abs()
            } else {
                0.0
            };
            interest[i] = (dx + dy) as f64 + 0.25 * sat[i] as f64;
        }
    }
    // Integral image, one row and column of zeros in front.
    let iw = gw + 1;
    let mut integral = vec![0f64; iw * (gh + 1)];
    for gy in 0..gh {
        let mut row_sum = 0.0;
        for gx in 0..gw {
            row_sum += interest[gy * gw + gx];
            integral[(gy + 1) * iw + gx + 1] = integral[gy * iw + gx + 1] + row_sum;
        }
    }
    let win_w = ((cw as f64 / f as f64).round() as usize).clamp(1, gw);
    let win_h = ((ch as f64 / f as f64).round() as usize).clamp(1, gh);
    let (cx, cy) = ((gw - win_w) as f64 / 2.0, (gh - win_h) as f64 / 2.0);
    let mut best = (f64::MIN, 0usize, 0usize);
    for gy in 0..=(gh - win_h) {
        for gx in 0..=(gw - win_w) {
            let s = integral[(gy + win_h) * iw + gx + win_w]
                - integral[gy * iw + gx + win_w]
                - integral[(gy + win_h) * iw + gx]
                + integral[gy * iw + gx];
            // A faint pull to the centre breaks ties on flat images.
            let dist = ((gx as f64 - cx).powi(2) + (gy as f64 - cy).powi(2)).sqrt();
            let score = s - dist * 1e-6;
            if score > best.0 {
                best = (score, gx, gy);
            }
        }
    }
    let x = (best.1 as u32 * f).min(w - cw);
    let y = (best.2 as u32 * f).min(h - ch);
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_detailed_corner() {
        // Flat grey with a checkerboard in the bottom-right corner.
        let mut img = image::RgbImage::from_pixel(400, 200, image::Rgb([128, 128, 128]));
        for y in 120..200 {
            for x in 300..400 {
                let v = if (x / 4 + y / 4) % 2 == 0 { 0 } else { 255 };
                img.put_pixel(x, y, image::Rgb([v, v, v]));
            }
        }
        let (x, y) = find(&DynamicImage::ImageRgb8(img), (100, 100));
        assert!(x >= 280 && y >= 90, "picked {x},{y}");
    }

    #[test]
    fn flat_images_crop_in_the_centre() {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(300, 100, image::Rgb([9, 9, 9])));
        let (x, y) = find(&img, (100, 100));
        assert!((95..=105).contains(&x) && y == 0, "picked {x},{y}");
    }
}
