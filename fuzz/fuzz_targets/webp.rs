//! libwebp through our wrapper (`edgethumb_codecs::webp`), the project's
//! one FFI, under AddressSanitizer (scripts/fuzz builds libwebp's C with
//! it): any size up to 300 px a side, RGB or RGBA, any quality, and pixel
//! buffers of the wrong length, which must be refused, never read past.
//! A file that encodes must decode (by `image`) at its size, and a flat
//! colour at quality 50 or more must come back as that colour, within
//! YUV rounding (measured: at most 8 over 40 colours and every quality
//! from 50; at quality 0 a flat colour moves by up to 19).
#![no_main]

use edgethumb_codecs::webp::{self, WebpError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, flags, quality, short, ref pixels @ ..] = *data else {
        return;
    };
    let (width, height) = (
        1 + w as u32 % 255 + (flags as u32 >> 4) * 3,
        1 + h as u32 % 255,
    );
    let channels = if flags & 1 == 1 { 4 } else { 3 };
    let flat = flags & 2 == 2;
    let quality = quality % 101;
    let len = width as usize * height as usize * channels as usize;
    // Sometimes a buffer that is short (or long) by a few bytes.
    let len_given = match short % 8 {
        0 => len.saturating_sub(1 + short as usize / 8),
        1 => len + 1 + short as usize / 8,
        _ => len,
    };
    if pixels.len() < 4 {
        return;
    }
    let buf: Vec<u8> = if flat {
        pixels[..channels as usize]
            .iter()
            .cycle()
            .take(len_given)
            .copied()
            .collect()
    } else {
        pixels.iter().cycle().take(len_given).copied().collect()
    };
    let result = webp::encode_lossy(&buf, width, height, channels, quality);
    if len_given != len {
        assert!(
            matches!(result, Err(WebpError::Failed(_))),
            "a wrong buffer length was accepted"
        );
        return;
    }
    let bytes = result.expect("a valid RGB or RGBA buffer encodes");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP)
        .expect("what libwebp wrote decodes");
    assert_eq!((img.width(), img.height()), (width, height));
    if flat && channels == 3 && quality >= 50 {
        // Lossy, but a flat colour has nothing to lose beyond YUV rounding.
        let want = &pixels[..3];
        for p in img.to_rgb8().pixels() {
            for (a, b) in p.0.iter().zip(want) {
                assert!(
                    a.abs_diff(*b) <= 12,
                    "flat {want:?} came back as {:?} at q{quality}",
                    p.0
                );
            }
        }
    }
});
