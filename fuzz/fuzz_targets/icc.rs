//! Colour management (`edgethumb::pipeline::colour`) on hostile ICC
//! profiles. The first byte picks the JPEG that carries the rest as its
//! profile (RGB, grey or CMYK; split over APP2 segments as the standard
//! does). Never a panic; a conversion, if one is made, keeps every
//! buffer's length and every alpha value.
#![no_main]

use edgethumb::pipeline::colour::ToSrgb;
use edgethumb::pipeline::sniff::SourceFormat;
use jpeg_encoder::{ColorType, Encoder};
use libfuzzer_sys::fuzz_target;

fn tagged_jpeg(kind: u8, icc: &[u8]) -> Option<Vec<u8>> {
    let (color, pixels) = match kind % 3 {
        0 => (ColorType::Rgb, vec![90u8; 8 * 8 * 3]),
        1 => (ColorType::Luma, vec![90u8; 8 * 8]),
        _ => (ColorType::Cmyk, vec![90u8; 8 * 8 * 4]),
    };
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, 90);
    enc.add_icc_profile(icc).ok()?;
    enc.encode(&pixels, 8, 8, color).ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let [kind, ref icc @ ..] = *data else {
        return;
    };
    let Some(jpeg) = tagged_jpeg(kind, icc) else {
        return;
    };
    let Some(to) = ToSrgb::for_source(&jpeg, SourceFormat::Jpeg) else {
        return;
    };
    let mut rgb: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
    to.convert(&mut rgb, 3);
    assert_eq!(rgb.len(), 256 * 3);
    let mut rgba: Vec<u8> = (0..=255u8).flat_map(|v| [v, v / 3, 255 - v, v]).collect();
    to.convert(&mut rgba, 4);
    for (v, p) in rgba.chunks_exact(4).enumerate() {
        assert_eq!(p[3] as usize, v, "alpha kept");
    }
    let cmyk: Vec<u8> = (0..=255u8)
        .flat_map(|v| [v, 255 - v, v / 2, v / 4])
        .collect();
    if let Some(out) = to.cmyk(&cmyk) {
        assert_eq!(out.len(), 256 * 3);
    }
});
