//! `trim`: finds the box outside which the source is background, as
//! libvips' `find_trim` does for imgproxy, and cuts it out in place.
//!
//! A pixel is content when any channel strays from the background by more
//! than the threshold; alpha is first flattened onto magenta, imgproxy's
//! transparency key. libvips takes a 3×3 median first so that lone specks
//! (JPEG noise, dust) do not stop the trim; here a pixel counts only when
//! most of its 3×3 neighbourhood is content, which is what the median
//! decides for a two-level image, at the cost of three rows of flags.

use image::DynamicImage;

use crate::request::options::Trim;

/// imgproxy's transparency key.
const MAGENTA: [u8; 3] = [255, 0, 255];

/// A rectangle of the image: x, y, width, height.
pub type Rect = (u32, u32, u32, u32);

/// The content's box after `equal_hor`/`equal_ver`, or `None` when there
/// is nothing to cut (the whole image is content, or all background).
pub fn find(img: &DynamicImage, t: &Trim) -> Option<Rect> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return None;
    }
    let (raw, channels) = match img {
        DynamicImage::ImageRgb8(i) => (i.as_raw().as_slice(), 3),
        DynamicImage::ImageRgba8(i) => (i.as_raw().as_slice(), 4),
        // The decoders hand on 8-bit RGB(A) only.
        _ => return None,
    };
    let pixel = |x: usize, y: usize| -> [u8; 3] {
        let p = &raw[(y * w + x) * channels..][..channels];
        match channels {
            4 => super::effects::blend(p, MAGENTA),
            _ => [p[0], p[1], p[2]],
        }
    };
    let bg = t.colour.unwrap_or_else(|| pixel(0, 0));
    let differs = |row: usize, out: &mut [u8]| {
        for (x, o) in out.iter_mut().enumerate() {
            let p = pixel(x, row);
            let far = (0..3).any(|c| f64::from(p[c].abs_diff(bg[c])) > t.threshold);
            *o = far as u8;
        }
    };
    // Rows y-1, y, y+1 of flags, the edges repeated.
    let mut rows = [vec![0u8; w], vec![0u8; w], vec![0u8; w]];
    differs(0, &mut rows[1]);
    rows[0] = rows[1].clone();
    differs(1.min(h - 1), &mut rows[2]);
    let mut column = vec![0u8; w];
    let (mut left, mut right, mut top, mut bottom) = (w, 0, h, 0);
    for y in 0..h {
        for (x, c) in column.iter_mut().enumerate() {
            *c = rows[0][x] + rows[1][x] + rows[2][x];
        }
        for x in 0..w {
            let sum = column[x.saturating_sub(1)] + column[x] + column[(x + 1).min(w - 1)];
            if sum >= 5 {
                left = left.min(x);
                right = right.max(x + 1);
                top = top.min(y);
                bottom = y + 1;
            }
        }
        rows.rotate_left(1);
        if y + 2 < h {
            differs(y + 2, &mut rows[2]);
        } else {
            rows[2] = rows[1].clone();
        }
    }
    if left >= right {
        return None;
    }
    let (mut x, mut width) = (left, right - left);
    let (mut y, mut height) = (top, bottom - top);
    // Opposite sides lose the smaller of their two margins.
    if t.equal_hor {
        let cut = left.min(w - right);
        (x, width) = (cut, w - 2 * cut);
    }
    if t.equal_ver {
        let cut = top.min(h - bottom);
        (y, height) = (cut, h - 2 * cut);
    }
    if (x, y, width, height) == (0, 0, w, h) {
        return None;
    }
    Some((x as u32, y as u32, width as u32, height as u32))
}

/// Cuts `r` out of `img` by moving its rows to the front of the same
/// buffer: no second copy of a full-size image.
pub fn cut_in_place(img: DynamicImage, r: Rect) -> DynamicImage {
    fn cut(mut raw: Vec<u8>, width: u32, channels: usize, r: Rect) -> Vec<u8> {
        let (x, y, w, h) = (r.0 as usize, r.1 as usize, r.2 as usize, r.3 as usize);
        let stride = width as usize * channels;
        let row = w * channels;
        for i in 0..h {
            let from = (y + i) * stride + x * channels;
            // The destination never passes the source: copy forwards.
            raw.copy_within(from..from + row, i * row);
        }
        raw.truncate(h * row);
        raw.shrink_to_fit();
        raw
    }
    let (width, (_, _, w, h)) = (img.width(), r);
    match img {
        DynamicImage::ImageRgb8(i) => {
            image::RgbImage::from_raw(w, h, cut(i.into_raw(), width, 3, r))
                .map(DynamicImage::ImageRgb8)
        }
        DynamicImage::ImageRgba8(i) => {
            image::RgbaImage::from_raw(w, h, cut(i.into_raw(), width, 4, r))
                .map(DynamicImage::ImageRgba8)
        }
        other => Some(other.crop_imm(r.0, r.1, w, h)),
    }
    // `from_raw` fails only if the buffer is short, which `cut` rules out.
    .unwrap_or_else(|| DynamicImage::new_rgb8(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn trim(threshold: f64) -> Trim {
        Trim {
            threshold,
            colour: None,
            equal_hor: false,
            equal_ver: false,
        }
    }

    /// White 40×30 with a red block at x 5..15, y 8..20.
    fn framed() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(40, 30, |x, y| {
            match (5..15).contains(&x) && (8..20).contains(&y) {
                true => Rgb([200, 0, 0]),
                false => Rgb([255, 255, 255]),
            }
        }))
    }

    #[test]
    fn finds_the_content_box() {
        assert_eq!(find(&framed(), &trim(10.0)), Some((5, 8, 10, 12)));
    }

    #[test]
    fn equal_sides_keep_the_content_centred() {
        let t = Trim {
            equal_hor: true,
            equal_ver: true,
            ..trim(10.0)
        };
        // Left margin 5, right 25: 5 off each; top 8, bottom 10: 8 off each.
        assert_eq!(find(&framed(), &t), Some((5, 8, 30, 14)));
    }

    #[test]
    fn lone_specks_and_faint_changes_stay_background() {
        let mut img = framed().into_rgb8();
        img.put_pixel(35, 2, Rgb([0, 0, 0]));
        img.put_pixel(0, 29, Rgb([0, 0, 0]));
        img.put_pixel(30, 25, Rgb([250, 250, 250]));
        let img = DynamicImage::ImageRgb8(img);
        assert_eq!(find(&img, &trim(10.0)), Some((5, 8, 10, 12)));
        // Under a threshold of 3, the faint pixel is content, but alone.
        assert_eq!(find(&img, &trim(3.0)), Some((5, 8, 10, 12)));
    }

    #[test]
    fn an_explicit_colour_and_nothing_to_cut() {
        let t = Trim {
            colour: Some([200, 0, 0]),
            ..trim(10.0)
        };
        // Against red, the white frame is the content: the whole image.
        assert_eq!(find(&framed(), &t), None);
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(9, 9, Rgb([7, 7, 7])));
        assert_eq!(find(&flat, &trim(10.0)), None);
        let tiny = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([7, 7, 7])));
        assert_eq!(find(&tiny, &trim(0.0)), None);
    }

    #[test]
    fn transparency_is_background_by_the_magenta_key() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(20, 20, |x, y| {
            match (4..10).contains(&x) && (6..16).contains(&y) {
                true => Rgba([10, 200, 10, 255]),
                false => Rgba([0, 0, 0, 0]),
            }
        }));
        assert_eq!(find(&img, &trim(10.0)), Some((4, 6, 6, 10)));
        let t = Trim {
            colour: Some(MAGENTA),
            ..trim(10.0)
        };
        assert_eq!(find(&img, &t), Some((4, 6, 6, 10)));
    }

    #[test]
    fn cutting_in_place_keeps_the_pixels() {
        let img = framed();
        let r = (3, 4, 20, 10);
        let want = img.crop_imm(r.0, r.1, r.2, r.3);
        assert_eq!(cut_in_place(img.clone(), r), want);
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        let want = rgba.crop_imm(r.0, r.1, r.2, r.3);
        assert_eq!(cut_in_place(rgba, r), want);
    }
}
