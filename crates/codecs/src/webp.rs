//! Lossy WebP through libwebp, the encoder sharp and every browser vendor
//! use (`libwebp-sys` builds its C source statically; for the wasm targets
//! with zig's clang, see `scripts/wasm-cc`). The project's only FFI:
//! pixels and dimensions go in, owned bytes come out, and every libwebp
//! allocation is freed before returning, on success or failure.

use std::ffi::c_void;

use libwebp_sys as sys;

/// Why an encode did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebpError {
    /// A side over [`MAX_DIMENSION`]: the caller asked for it.
    #[error("WebP is limited to {MAX_DIMENSION} pixels a side")]
    TooLarge,
    /// Bad input from the caller, or libwebp failed (out of memory).
    #[error("WebP encode: {0}")]
    Failed(String),
}

/// libwebp's limit on either side (`WEBP_MAX_DIMENSION`).
pub const MAX_DIMENSION: u32 = 16383;

/// sharp/libvips encode at method ("effort") 4. Method 3 and up add
/// rate-distortion optimisation, which costs about 20 ms a 400 px thumbnail
/// in wasm (libwebp's SIMD is x86/ARM only): eveningglow under V8 took 39
/// ms at method 4 against 21 at method 2. Method 2 alone needs 1.04x
/// sharp's bytes at 0.0012 less SSIM (medians over the corpus); stronger
/// spatial noise shaping (80, default 50) wins that SSIM back at the same
/// bytes. Measured with `scripts/bench`; see the README's benchmarks.
const METHOD: i32 = 2;
const SNS_STRENGTH: i32 = 80;

/// Encodes 8-bit RGB (`channels == 3`) or RGBA (`4`) pixels, rows packed.
pub fn encode_lossy(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: u8,
    quality: u8,
) -> Result<Vec<u8>, WebpError> {
    let fail = |what: &str| WebpError::Failed(what.to_string());
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(WebpError::TooLarge);
    }
    if width == 0 || height == 0 {
        return Err(fail("empty image"));
    }
    if !(channels == 3 || channels == 4) {
        return Err(fail("not RGB or RGBA"));
    }
    let stride = width as usize * channels as usize;
    if pixels.len() != stride * height as usize {
        return Err(fail("pixel buffer does not match the dimensions"));
    }

    let mut config =
        sys::WebPConfig::new_with_preset(sys::WebPPreset::WEBP_PRESET_DEFAULT, quality as f32)
            .map_err(|_| fail("libwebp refused the configuration"))?;
    config.method = METHOD;
    config.sns_strength = SNS_STRENGTH;
    config.thread_level = 0;
    let mut picture = sys::WebPPicture::new().map_err(|_| fail("libwebp version mismatch"))?;
    picture.width = width as i32;
    picture.height = height as i32;

    // SAFETY: `pixels` holds `height` rows of `stride` bytes (checked
    // above), and both dimensions fit libwebp's limits, so the imports read
    // inside it. `writer` outlives `WebPEncode`, the only user of
    // `custom_ptr`. The picture and the writer are freed on every path.
    unsafe {
        if sys::WebPValidateConfig(&config) == 0 {
            return Err(fail("invalid configuration"));
        }
        let imported = if channels == 4 {
            sys::WebPPictureImportRGBA(&mut picture, pixels.as_ptr(), stride as i32)
        } else {
            sys::WebPPictureImportRGB(&mut picture, pixels.as_ptr(), stride as i32)
        };
        if imported == 0 {
            sys::WebPPictureFree(&mut picture);
            return Err(fail("out of memory importing pixels"));
        }
        let mut writer = std::mem::MaybeUninit::<sys::WebPMemoryWriter>::uninit();
        sys::WebPMemoryWriterInit(writer.as_mut_ptr());
        let mut writer = writer.assume_init();
        picture.writer = Some(sys::WebPMemoryWrite);
        picture.custom_ptr = (&mut writer as *mut sys::WebPMemoryWriter).cast::<c_void>();
        let ok = sys::WebPEncode(&config, &mut picture);
        let code = picture.error_code;
        sys::WebPPictureFree(&mut picture);
        let body = if ok != 0 && !writer.mem.is_null() {
            Ok(std::slice::from_raw_parts(writer.mem, writer.size).to_vec())
        } else {
            Err(fail(&format!("libwebp failed ({code:?})")))
        };
        sys::WebPMemoryWriterClear(&mut writer);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32, channels: u8) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 90]);
                if channels == 4 {
                    v.push(if x < w / 2 { 255 } else { 64 });
                }
            }
        }
        v
    }

    #[test]
    fn encodes_rgb_and_rgba_that_decode_back_close() {
        for channels in [3u8, 4] {
            let (w, h) = (161, 97);
            let px = gradient(w, h, channels);
            let body = encode_lossy(&px, w, h, channels, 80).unwrap();
            assert_eq!(&body[..4], b"RIFF");
            let back = image::load_from_memory_with_format(&body, image::ImageFormat::WebP)
                .unwrap()
                .to_rgba8();
            assert_eq!(back.dimensions(), (w, h));
            let mean = back
                .pixels()
                .zip(px.chunks_exact(channels as usize))
                .map(|(a, b)| {
                    (0..channels as usize)
                        .map(|c| a.0[c].abs_diff(b[c]) as u32)
                        .sum::<u32>()
                })
                .sum::<u32>() as f64
                / (w * h * channels as u32) as f64;
            assert!(mean < 3.0, "{channels} channels: mean error {mean}");
        }
    }

    #[test]
    fn bad_dimensions_are_errors_not_crashes() {
        assert!(encode_lossy(&[], 0, 0, 3, 80).is_err());
        assert!(encode_lossy(&[0; 12], 2, 2, 3, 80).is_ok());
        assert!(encode_lossy(&[0; 11], 2, 2, 3, 80).is_err());
        assert!(encode_lossy(&[0; 8], 2, 2, 2, 80).is_err());
        let err = encode_lossy(&[0; 3 * 16384], 16384, 1, 3, 80).unwrap_err();
        assert_eq!(err, WebpError::TooLarge);
    }
}
