//! The reduced-scale decoder against jpeg-decoder (which decodes every
//! coefficient) and against the truth: block means of a full decode.

use image::RgbImage;

use super::*;
use crate::never;

/// jpeg-decoder's own decode at n/8 (it reads every scan), as RGB.
fn full_decoder_scaled(bytes: &[u8], n: u32) -> RgbImage {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.read_info().unwrap();
    let info = d.info().unwrap();
    let want = |v: u16| (v as u32 * n).div_ceil(8) as u16;
    d.scale(want(info.width), want(info.height)).unwrap();
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&l| [l, l, l]).collect(),
        _ => px,
    };
    RgbImage::from_raw(info.width as u32, info.height as u32, rgb).unwrap()
}

/// Mean absolute difference per sample.
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| x.abs_diff(y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// The truth at n/8: a full-size decode, averaged per (8/n)² pixels.
fn block_means_of_full_decode(bytes: &[u8], n: u32) -> RgbImage {
    block_means(&full_decoder_scaled(bytes, 8), 8 / n)
}

/// `img` averaged over f×f blocks (edges over what is there).
fn block_means(img: &RgbImage, f: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w.div_ceil(f), h.div_ceil(f), |bx, by| {
        let (mut sum, mut count) = ([0u32; 3], 0);
        for y in by * f..(by * f + f).min(h) {
            for x in bx * f..(bx * f + f).min(w) {
                for (s, v) in sum.iter_mut().zip(img.get_pixel(x, y).0) {
                    *s += v as u32;
                }
                count += 1;
            }
        }
        image::Rgb(sum.map(|s| ((s + count / 2) / count) as u8))
    })
}

/// Our decode at n/8 is as faithful as jpeg-decoder's, measured against
/// the block means of a full decode, and close to jpeg-decoder's output
/// (at full scale: to within IDCT rounding).
fn assert_matches_full_decoder(bytes: &[u8], n: u32, name: &str) {
    let ours = decode(bytes, n, &Limits::default(), &never)
        .unwrap()
        .unwrap_or_else(|| panic!("{name}: not covered"));
    let theirs = full_decoder_scaled(bytes, n);
    let truth = block_means_of_full_decode(bytes, n);
    let (ours_error, theirs_error) = (
        mean_difference(&ours, &truth),
        mean_difference(&theirs, &truth),
    );
    assert!(
        ours_error <= theirs_error + 0.5,
        "{name} at {n}/8: {ours_error} from the block means, jpeg-decoder {theirs_error}"
    );
    // Chroma upsampling and IDCT rounding differ a little.
    let diff = mean_difference(&ours, &theirs);
    assert!(diff < 2.5, "{name} at {n}/8: {diff} from jpeg-decoder");
}

const LIBJPEG_FILES: [(&str, &[u8]); 5] = [
    (
        "progressive 4:2:0, restarts",
        include_bytes!("../../testdata/progressive-420-restart.jpg"),
    ),
    (
        "progressive 4:4:4",
        include_bytes!("../../testdata/progressive-444.jpg"),
    ),
    (
        "progressive grey",
        include_bytes!("../../testdata/progressive-grey.jpg"),
    ),
    (
        "progressive, mozjpeg's scans",
        include_bytes!("../../testdata/progressive-mozjpeg.jpg"),
    ),
    (
        "baseline 4:2:0",
        include_bytes!("../../testdata/baseline-420.jpg"),
    ),
];

#[test]
fn libjpeg_and_mozjpeg_files_match_the_full_decoder_at_every_scale() {
    // libjpeg's script: interleaved DC with successive approximation,
    // AC in bands with refinement scans; mozjpeg's: other bands, no
    // refinement. 203×157: partial blocks and MCUs.
    for (name, bytes) in LIBJPEG_FILES {
        for n in [1, 2, 4, 8] {
            assert_matches_full_decoder(bytes, n, name);
            let img = decode(bytes, n, &Limits::default(), &never)
                .unwrap()
                .unwrap();
            assert_eq!(
                img.dimensions(),
                ((203 * n).div_ceil(8), (157 * n).div_ceil(8)),
                "{name} at {n}/8"
            );
        }
    }
}

fn encoded(
    progressive: bool,
    sampling: jpeg_encoder::SamplingFactor,
    restart: u16,
    grey: bool,
) -> Vec<u8> {
    let (w, h) = (181u16, 123u16);
    let pixels: Vec<u8> = (0..h as u32)
        .flat_map(|y| {
            (0..w as u32)
                .flat_map(move |x| [(x * 255 / 181) as u8, (y * 2) as u8, ((x ^ y) & 0xFF) as u8])
        })
        .collect();
    let (pixels, color) = if grey {
        (
            pixels
                .chunks_exact(3)
                .map(|p| p[0] / 2 + p[2] / 2)
                .collect(),
            jpeg_encoder::ColorType::Luma,
        )
    } else {
        (pixels, jpeg_encoder::ColorType::Rgb)
    };
    let mut bytes = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 85);
    enc.set_progressive(progressive);
    enc.set_sampling_factor(sampling);
    if restart > 0 {
        enc.set_restart_interval(restart);
    }
    enc.encode(&pixels, w, h, color).unwrap();
    bytes
}

#[test]
fn sampling_factors_restarts_and_scan_layouts_match_the_full_decoder() {
    // jpeg-encoder writes one DC scan per component and spectral bands
    // without refinement when progressive.
    use jpeg_encoder::SamplingFactor as S;
    for progressive in [false, true] {
        for (sampling, restart) in [(S::F_2_2, 0), (S::F_1_1, 3), (S::F_2_1, 7), (S::F_1_2, 1)] {
            let bytes = encoded(progressive, sampling, restart, false);
            for n in [1, 2, 4, 8] {
                let name = format!("progressive {progressive} {sampling:?} restart {restart}");
                assert_matches_full_decoder(&bytes, n, &name);
            }
        }
        let grey = encoded(progressive, S::F_1_1, 0, true);
        for n in [1, 2, 4, 8] {
            assert_matches_full_decoder(&grey, n, &format!("grey, progressive {progressive}"));
        }
    }
}

#[test]
fn mozjpeg_scans_past_the_kept_band_are_skipped() {
    let bytes = include_bytes!("../../testdata/progressive-mozjpeg.jpg");
    let frame_end = |bytes: &[u8]| {
        let at = bytes.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
        at + 2 + u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize
    };
    // DC; Y 1..8; Y 9..63; Cb 1..63; Cr 1..63, no refinement.
    let plan = |n: usize| plan_scans(bytes, frame_end(bytes), &Keep::new(n));
    assert_eq!(
        plan(2),
        [true, true, false, true, true],
        "1/4 keeps zigzag ≤ 4"
    );
    assert_eq!(
        plan(4),
        [true, true, true, true, true],
        "1/2 keeps zigzag ≤ 24"
    );
    // libjpeg's script refines 1..63, which needs every earlier AC band.
    let libjpeg = include_bytes!("../../testdata/progressive-420-restart.jpg");
    assert!(plan_scans(libjpeg, frame_end(libjpeg), &Keep::new(2))
        .iter()
        .all(|&read| read));
}

#[test]
fn a_skipped_band_that_a_later_refinement_reads_is_not_skipped() {
    // Synthetic scan headers (no data): Y DC; Y 1..5 first; Y 6..63
    // first; Y 1..63 refinement. At 1/4 the 6..63 band is not kept, but the
    // refinement reads it.
    let sos = |ss: u8, se: u8, ah_al: u8| vec![0xFF, 0xDA, 0, 8, 1, 1, 0, ss, se, ah_al];
    let mut bytes = Vec::new();
    for s in [sos(0, 0, 0), sos(1, 5, 0), sos(6, 63, 0), sos(1, 63, 0x10)] {
        bytes.extend(s);
    }
    bytes.extend([0xFF, 0xD9]);
    assert_eq!(plan_scans(&bytes, 0, &Keep::new(2)), [true; 4]);
    // Without the refinement, 6..63 is skipped.
    let cut = bytes.len() - 12;
    let mut short = bytes[..cut].to_vec();
    short.extend([0xFF, 0xD9]);
    assert_eq!(plan_scans(&short, 0, &Keep::new(2)), [true, true, false]);
}

#[test]
fn other_frames_and_scales_go_to_the_full_decoder() {
    let baseline = include_bytes!("../../testdata/baseline-420.jpg");
    assert!(
        decode(baseline, 3, &Limits::default(), &never)
            .unwrap()
            .is_none(),
        "3/8 is no DCT scale"
    );
    assert!(
        decode(baseline, 8, &Limits::default(), &never)
            .unwrap()
            .is_some(),
        "sequential, full scale"
    );
    let progressive = include_bytes!("../../testdata/progressive-444.jpg");
    assert!(
        decode(progressive, 8, &Limits::default(), &never)
            .unwrap()
            .is_some(),
        "progressive, full scale"
    );
    // A 12-bit frame: SOF1 with precision 12.
    let mut twelve = baseline.to_vec();
    let at = twelve.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    twelve[at + 1] = 0xC1;
    twelve[at + 4] = 12;
    assert!(decode(&twelve, 2, &Limits::default(), &never)
        .unwrap()
        .is_none());
}

#[test]
fn cut_or_damaged_files_never_panic() {
    for (_, bytes) in LIBJPEG_FILES {
        for n in [1, 2, 4, 8] {
            for cut in (0..bytes.len()).step_by(97) {
                let _ = decode(&bytes[..cut], n, &Limits::default(), &never);
            }
            // Flip bytes all through the file: any answer but a panic.
            // (Full scale is the slow one in a debug build: fewer flips.)
            for at in (2..bytes.len()).step_by(if n == 8 { 41 } else { 13 }) {
                let mut damaged = bytes.to_vec();
                damaged[at] ^= 0x5A;
                let _ = decode(&damaged, n, &Limits::default(), &never);
            }
        }
    }
}

#[test]
fn data_cut_inside_a_scan_still_decodes_what_arrived() {
    for (_, bytes) in LIBJPEG_FILES {
        for n in [1, 2, 4, 8] {
            let img = decode(&bytes[..bytes.len() / 2], n, &Limits::default(), &never)
                .unwrap()
                .unwrap();
            assert_eq!(img.width(), (203 * n).div_ceil(8));
        }
    }
}

/// With 4:1 chroma, libjpeg and jpeg-decoder replicate chroma samples
/// where we interpolate (bilinear at every factor): on a real picture ours
/// is as close to the source as theirs at every scale. Measured here at
/// 1/8, ours against jpeg-decoder's mean distance from the source's block
/// means: 4.7 against 7.0 (4:1), 7.1 against 11.5 (1:4).
#[test]
fn four_to_one_chroma_is_as_faithful_as_the_full_decoder_at_every_scale() {
    use jpeg_encoder::SamplingFactor as S;
    let (w, h) = (256u16, 94u16);
    let img = RgbImage::from_fn(w.into(), h.into(), |x, y| {
        image::Rgb([
            (x * 255 / 256) as u8,
            (y * 255 / 94) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    for sampling in [S::F_4_1, S::F_1_4, S::F_4_2, S::F_2_4] {
        let mut bytes = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 90);
        enc.set_progressive(true);
        enc.set_sampling_factor(sampling);
        enc.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        // Full scale, and each reduced scale against the source's own
        // block means: replication and interpolation are both fair.
        for n in [8, 4, 2, 1] {
            let ours = decode(&bytes, n, &Limits::default(), &never)
                .unwrap()
                .unwrap();
            let theirs = full_decoder_scaled(&bytes, n);
            let truth = block_means(&img, 8 / n);
            let (ours_error, theirs_error) = (
                mean_difference(&ours, &truth),
                mean_difference(&theirs, &truth),
            );
            assert!(
                ours_error <= theirs_error + 0.5,
                "{sampling:?} at {n}/8: {ours_error} from the source, jpeg-decoder {theirs_error}"
            );
        }
    }
}

#[test]
fn a_frame_past_the_pixel_limit_is_refused_before_anything_is_allocated() {
    let bytes = include_bytes!("../../testdata/baseline-420.jpg");
    let small = Limits {
        max_pixels: 1000,
        ..Limits::default()
    };
    for n in [1, 2, 4] {
        let err = decode(bytes, n, &small, &never).unwrap_err();
        assert!(
            matches!(&err, DecodeError::OverLimit(m) if m.contains("more than 1000 pixels")),
            "{err}"
        );
    }
    // A 65535x65535 frame header alone: refused, not 4 GP of planes.
    let mut huge = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0xFF, 0xFF, 0xFF, 0xFF, 3];
    for id in 1..=3u8 {
        huge.extend_from_slice(&[id, 0x11, 0]);
    }
    let err = decode(&huge, 1, &Limits::default(), &never).unwrap_err();
    assert!(matches!(err, DecodeError::OverLimit(_)), "{err}");
}

/// Decoded with every progressive frame replayed (masks alone through the
/// scans, then the scans again) one row of MCUs at a time.
fn replayed(bytes: &[u8], n: u32) -> RgbImage {
    let mut gather = Gather::default();
    let replay = Replay {
        above: 0,
        band_bytes: 1,
    };
    assert!(decode_replaying(bytes, n, &Limits::default(), &never, &mut gather, replay).unwrap());
    RgbImage::from_raw(gather.width, gather.height, gather.pixels).unwrap()
}

#[test]
fn replayed_progressive_frames_decode_exactly_as_kept_ones() {
    // libjpeg's script (DC and AC refinement, EOB runs across rows),
    // mozjpeg's, grey, 4:4:4, restarts; jpeg-encoder's layouts. Bands are
    // one row of MCUs here, so the replay crosses every row.
    use jpeg_encoder::SamplingFactor as S;
    let mut files: Vec<(String, Vec<u8>)> = LIBJPEG_FILES
        .iter()
        .filter(|(name, _)| name.starts_with("progressive"))
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect();
    for (sampling, restart) in [(S::F_2_2, 0), (S::F_1_1, 3), (S::F_2_1, 7), (S::F_1_2, 1)] {
        files.push((
            format!("{sampling:?} restart {restart}"),
            encoded(true, sampling, restart, false),
        ));
    }
    files.push(("grey".into(), encoded(true, S::F_1_1, 0, true)));
    for (name, bytes) in &files {
        for n in [2, 4, 8] {
            let kept = decode(bytes, n, &Limits::default(), &never)
                .unwrap()
                .unwrap();
            assert!(replayed(bytes, n) == kept, "{name} at {n}/8");
        }
    }
}

/// Replayed, files cut short decode as kept ones do, a row of MCUs per
/// band; damaged ones never panic. (On damaged data the two may differ:
/// where the reader picks up again after a restart marker it did not
/// reach depends on how far it had read ahead, which depends on how its
/// bits were consumed, in either pass.)
#[test]
fn replayed_cut_files_decode_as_kept_ones_and_damaged_ones_never_panic() {
    let replay = Replay {
        above: 0,
        band_bytes: 1,
    };
    let answer = |bytes: &[u8], n: u32, replay: Option<Replay>| {
        let mut gather = Gather::default();
        let r = match replay {
            Some(r) => decode_replaying(bytes, n, &Limits::default(), &never, &mut gather, r),
            None => decode_rows(bytes, n, &Limits::default(), &never, &mut gather),
        };
        r.map(|covered| covered.then_some(gather.pixels))
    };
    for (name, bytes) in LIBJPEG_FILES
        .iter()
        .filter(|(n, _)| n.starts_with("progressive"))
    {
        for n in [2, 8] {
            for cut in (0..bytes.len()).step_by(211) {
                let kept = answer(&bytes[..cut], n, None);
                let replayed = answer(&bytes[..cut], n, Some(replay));
                assert!(kept == replayed, "{name} at {n}/8 cut to {cut}");
            }
            for at in (2..bytes.len()).step_by(53) {
                let mut damaged = bytes.to_vec();
                damaged[at] ^= 0x5A;
                let _ = answer(&damaged, n, Some(replay));
            }
        }
    }
}
