//! Differential: our JPEG decoder against jpeg-decoder, at 1/1, 1/2, 1/4
//! and 1/8, on valid JPEGs built from the input: its first bytes choose the
//! size (1 to 320 px a side), baseline or progressive (with 2 to 64 scans),
//! grey or colour, the sampling factors, the quality and the restart
//! interval; the rest are the pixels. Ours must give the size the scale
//! promises, and be as faithful as jpeg-decoder's scaled decode to the
//! block means of a full-size decode.
//!
//! Only valid files: on damaged ones (two scans of one component in a
//! baseline frame, say) decoders may rightly differ. Damaged and hostile
//! bytes are the `decode` target's.
#![no_main]

use edgethumb_codecs::jpeg;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor as S};
use libfuzzer_sys::fuzz_target;

/// How much less faithful than jpeg-decoder ours may be (mean absolute
/// difference per sample): `ours <= theirs * RATIO + SLACK`. The inputs'
/// pixels are noise, whose clamping and chroma rounding both decoders
/// approximate differently, so this catches wrong pixels (a wrong IDCT,
/// plane or sampling factor is off by tens), not rounding. The codec's
/// unit tests hold real files to `theirs + 0.5`.
const RATIO: f64 = 1.5;
const SLACK: f64 = 2.0;

const SAMPLINGS: [S; 8] = [
    S::F_1_1,
    S::F_2_1,
    S::F_1_2,
    S::F_2_2,
    S::F_4_1,
    S::F_4_2,
    S::F_1_4,
    S::F_2_4,
];

/// jpeg-decoder at n/8, as RGB.
fn reference(bytes: &[u8], n: u32) -> Option<(u32, u32, Vec<u8>)> {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.read_info().ok()?;
    let info = d.info()?;
    let want = |v: u16| (v as u32 * n).div_ceil(8) as u16;
    d.scale(want(info.width), want(info.height)).ok()?;
    let px = d.decode().ok()?;
    let info = d.info()?;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&l| [l, l, l]).collect(),
        _ => px,
    };
    Some((info.width as u32, info.height as u32, rgb))
}

fuzz_target!(|data: &[u8]| {
    let [w0, w1, h0, h1, flags, quality, restart, scans, ref pixels @ ..] = *data else {
        return;
    };
    let width = 1 + u16::from_le_bytes([w0, w1]) % 320;
    let height = 1 + u16::from_le_bytes([h0, h1]) % 320;
    let progressive = flags & 1 == 1;
    let grey = flags & 2 == 2;
    let sampling = SAMPLINGS[(flags >> 2) as usize % SAMPLINGS.len()];
    let n = [1u32, 2, 4, 8][(flags >> 5) as usize % 4];
    let channels = if grey { 1 } else { 3 };
    let len = width as usize * height as usize * channels;
    let image: Vec<u8> = if pixels.is_empty() {
        vec![128; len]
    } else {
        pixels.iter().copied().cycle().take(len).collect()
    };

    let mut bytes = Vec::new();
    let mut enc = Encoder::new(&mut bytes, 1 + quality % 100);
    // (Setting a scan count makes jpeg-encoder progressive.)
    let scans = 2 + scans % 63;
    if progressive {
        enc.set_progressive_scans(scans);
    }
    enc.set_sampling_factor(sampling);
    enc.set_restart_interval(u16::from(restart % 8));
    let color = if grey {
        ColorType::Luma
    } else {
        ColorType::Rgb
    };
    if enc.encode(&image, width, height, color).is_err() {
        return;
    }

    // The cost check allows 32 passes over the frame: far more than
    // libjpeg's or mozjpeg's scripts, fewer than 64 spectral bands.
    if let Err(e) = jpeg::cost::check(&bytes, &jpeg::Limits::default()) {
        assert!(progressive && scans > 16, "{e}");
        return;
    }
    let ours = match jpeg::decode(
        &bytes,
        n,
        &jpeg::Limits::default(),
        &edgethumb_codecs::never,
    ) {
        Ok(Some(img)) => img,
        Ok(None) => panic!("a valid 8-bit file not taken at {n}/8"),
        Err(e) => panic!("a valid file failed at {n}/8: {e}"),
    };
    let want = |v: u16| (v as u32 * n).div_ceil(8);
    assert_eq!(
        ours.dimensions(),
        (want(width), want(height)),
        "size at {n}/8"
    );
    let Some((w, h, theirs)) = reference(&bytes, n) else {
        panic!("jpeg-decoder failed on a valid file");
    };
    // jpeg-decoder picks its own scale for some shapes (1 px high, say).
    if (w, h) != ours.dimensions() {
        return;
    }
    // Faithfulness, as the codec's unit tests measure it: against the
    // block means of jpeg-decoder's full-size decode, ours may be off by
    // no more than jpeg-decoder's own scaled decode, plus rounding.
    // Size only below 64 pixels (one pixel's rounding is the whole mean),
    // and for 4:1 chroma, which libjpeg and jpeg-decoder replicate where
    // we interpolate (a unit test holds ours as faithful on a picture).
    let four_to_one = !grey && !matches!(sampling, S::F_1_1 | S::F_2_1 | S::F_1_2 | S::F_2_2);
    let Some((fw, fh, full)) = reference(&bytes, 8) else {
        return;
    };
    if w * h < 64 || four_to_one {
        return;
    }
    let truth = block_means(fw, fh, &full, 8 / n);
    let (ours_error, theirs_error) = (
        mean_difference(ours.as_raw(), &truth),
        mean_difference(&theirs, &truth),
    );
    assert!(
        ours_error <= theirs_error * RATIO + SLACK,
        "{ours_error} from the block means at {n}/8, jpeg-decoder {theirs_error} \
         ({width}x{height}, progressive {progressive}, grey {grey}, {sampling:?})"
    );
});

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    let total: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    total as f64 / a.len().max(1) as f64
}

/// RGB means over `f`×`f` blocks (edge blocks partial), as a scaled decode
/// should approximate.
fn block_means(w: u32, h: u32, rgb: &[u8], f: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for by in 0..h.div_ceil(f) {
        for bx in 0..w.div_ceil(f) {
            let (mut sum, mut count) = ([0u32; 3], 0);
            for y in by * f..(by * f + f).min(h) {
                for x in bx * f..(bx * f + f).min(w) {
                    let at = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        sum[c] += rgb[at + c] as u32;
                    }
                    count += 1;
                }
            }
            out.extend(sum.map(|s| ((s + count / 2) / count) as u8));
        }
    }
    out
}
