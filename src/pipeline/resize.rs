//! Resampling with `fast_image_resize` (SIMD: SSE4.1/AVX2 natively,
//! simd128 on wasm). Cropping is folded into the resample, so the pixels
//! a crop throws away are never resampled.

use fast_image_resize as fr;
use image::DynamicImage;

use crate::error::Error;

/// A region of an image in (fractional) pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Region {
    /// The region clamped to a `width`×`height` image. Regions come from
    /// floating-point geometry (crop, gravity, shrink-on-load ratios) and
    /// can overshoot the edge by an ulp, which the resizer refuses.
    pub fn within(self, width: u32, height: u32) -> Region {
        let (iw, ih) = (width as f64, height as f64);
        let x = self.x.clamp(0.0, iw);
        let y = self.y.clamp(0.0, ih);
        Region {
            x,
            y,
            w: self.w.min(iw - x),
            h: self.h.min(ih - y),
        }
    }

    pub fn whole(img: &DynamicImage) -> Region {
        Region {
            x: 0.0,
            y: 0.0,
            w: img.width() as f64,
            h: img.height() as f64,
        }
    }
}

/// `region` of an image shown with EXIF `orientation` (whose shown size
/// is `shown`), in the stored image's pixels: where the resample reads
/// when it runs before the orientation is applied.
pub fn unorient(region: Region, orientation: u8, shown: (u32, u32)) -> Region {
    let Region { x, y, w, h } = region;
    // The stored image's size.
    let (sw, sh) = if orientation >= 5 {
        (shown.1 as f64, shown.0 as f64)
    } else {
        (shown.0 as f64, shown.1 as f64)
    };
    let (fx, fy) = (sw - (x + w), sh - (y + h));
    let (x, y, w, h) = match orientation {
        2 => (fx, y, w, h),
        3 => (fx, fy, w, h),
        4 => (x, fy, w, h),
        5 => (y, x, h, w),
        // Shown = stored turned 90° clockwise: shown x runs up stored y.
        6 => (y, sh - (x + w), h, w),
        7 => (sw - (y + h), sh - (x + w), h, w),
        8 => (sw - (y + h), x, h, w),
        _ => (x, y, w, h),
    };
    Region { x, y, w, h }
}

/// Resamples `region` of `img` to `dst_w`×`dst_h` with Lanczos3, alpha
/// premultiplied so edges do not halo.
pub fn resample(img: DynamicImage, region: Region, dst: (u32, u32)) -> Result<DynamicImage, Error> {
    let (dw, dh) = (dst.0.max(1), dst.1.max(1));
    if region == Region::whole(&img) && (dw, dh) == (img.width(), img.height()) {
        return Ok(img);
    }
    let (pixel_type, alpha) = match &img {
        DynamicImage::ImageRgba8(_) => (fr::PixelType::U8x4, true),
        _ => (fr::PixelType::U8x3, false),
    };
    let img = if alpha {
        DynamicImage::ImageRgba8(img.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    let src = fr::images::ImageRef::new(img.width(), img.height(), img.as_bytes(), pixel_type)
        .map_err(|e| Error::Internal(format!("resize source: {e}")))?;
    let region = region.within(img.width(), img.height());
    let mut out = fr::images::Image::new(dw, dh, pixel_type);
    let opts = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(region.x, region.y, region.w, region.h);
    fr::Resizer::new()
        .resize(&src, &mut out, &opts)
        .map_err(|e| Error::Internal(format!("resize: {e}")))?;
    let buf = out.into_vec();
    let img = if alpha {
        image::RgbaImage::from_raw(dw, dh, buf).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(dw, dh, buf).map(DynamicImage::ImageRgb8)
    };
    img.ok_or_else(|| Error::Internal("resize produced a short buffer".into()))
}

/// Cuts a whole-pixel rectangle out (for crops decided after resampling).
pub fn cut(img: DynamicImage, x: u32, y: u32, w: u32, h: u32) -> DynamicImage {
    if (x, y, w, h) == (0, 0, img.width(), img.height()) {
        return img;
    }
    img.crop_imm(x, y, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cutting `unorient(r)` from the stored image and orienting the cut
    /// gives the same pixels as cutting `r` from the oriented image.
    #[test]
    fn unorient_finds_the_same_pixels_in_the_stored_image() {
        let stored = DynamicImage::ImageRgb8(image::RgbImage::from_fn(7, 5, |x, y| {
            image::Rgb([x as u8 * 30, y as u8 * 40, 0])
        }));
        for o in 1..=8u8 {
            let mut shown = stored.clone();
            let orientation = image::metadata::Orientation::from_exif(o).unwrap();
            shown.apply_orientation(orientation);
            let r = Region {
                x: 1.0,
                y: 2.0,
                w: 2.0,
                h: 3.0,
            };
            let want = shown.crop_imm(1, 2, 2, 3);
            let s = unorient(r, o, (shown.width(), shown.height()));
            let mut got = stored.crop_imm(s.x as u32, s.y as u32, s.w as u32, s.h as u32);
            got.apply_orientation(orientation);
            assert_eq!(got.as_bytes(), want.as_bytes(), "orientation {o}");
        }
    }

    /// 240 × (2000 / 240) is 2000.0000000000002: a fill crop over a whole
    /// side overshot the image and the resize failed (a 500).
    #[test]
    fn a_region_an_ulp_past_the_edge_still_resamples() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(800, 500));
        let side = 240.0 * (2000.0 / 240.0) * 0.25;
        assert!(side > 500.0);
        let region = Region {
            x: 0.0,
            y: 0.0,
            w: side,
            h: side,
        };
        let out = resample(img, region, (240, 240)).unwrap();
        assert_eq!((out.width(), out.height()), (240, 240));
    }
}
