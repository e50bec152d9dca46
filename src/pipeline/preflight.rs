//! Structure checks on the source bytes, before any decoder runs, for what
//! a decoder would otherwise trust and pay for: each walks the file's
//! chunks or markers in time proportional to its size, and allocates
//! nothing that grows with what the file claims.
//! - JPEG: scans and the blocks they visit (`edgethumb_codecs::jpeg::cost`);
//! - GIF: every frame inside the logical screen, whose size the pixel
//!   limit and memory budget already checked; and, for GIF and WebP, how
//!   many frames there are and how often they loop, so an animation's
//!   cost is known before its first frame is decoded;
//! - PNG: an `iCCP` profile inflates to at most [`MAX_ICC_BYTES`] (the png
//!   crate inflates it eagerly; `zTXt`/`iTXt` it keeps compressed, and
//!   `eXIf` is stored raw).

use super::sniff::SourceFormat;
use crate::error::Error;
use edgethumb_codecs::jpeg;

/// How many times an animation plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loops {
    Forever,
    Plays(u32),
}

/// What the structure says about frames: 1 for a still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    pub count: u32,
    pub loops: Loops,
}

const STILL: Frames = Frames {
    count: 1,
    loops: Loops::Plays(1),
};

/// Largest inflated PNG `iCCP` profile. Display profiles are a few KiB;
/// the print profiles that reach 1 MiB belong to CMYK, which PNG is not.
pub const MAX_ICC_BYTES: usize = 1 << 20;

/// Refuses a source whose structure would cost more than its size allows;
/// counts its frames.
pub fn check(bytes: &[u8], format: SourceFormat) -> Result<Frames, Error> {
    match format {
        SourceFormat::Jpeg => {
            jpeg::cost::check(bytes, &jpeg::Limits::default()).map_err(Error::from)?;
            Ok(STILL)
        }
        SourceFormat::Gif => gif_frames(bytes),
        SourceFormat::Png => png_chunks(bytes).map(|()| STILL),
        SourceFormat::Webp => Ok(webp_frames(bytes)),
        SourceFormat::Bmp => Ok(STILL),
    }
}

/// Walks the GIF's blocks: every image descriptor must lie inside the
/// logical screen. The decoder allocates a frame at its own size, so one
/// frame of 8000×8000 in a 1×1 screen would pass the pixel limit unseen.
/// Counts the frames, and reads the loop count (the NETSCAPE2.0
/// extension's repeats after the first play; 0 is forever, none is once).
fn gif_frames(bytes: &[u8]) -> Result<Frames, Error> {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let (Some(screen_w), Some(screen_h), Some(&flags)) = (u16_at(6), u16_at(8), bytes.get(10))
    else {
        return Ok(STILL); // Too short: the decoder says so.
    };
    let mut frames = Frames {
        count: 0,
        loops: Loops::Plays(1),
    };
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let mut pos = 13 + table(flags);
    // Sub-blocks: a length byte, then that many bytes, until a 0.
    let skip_blocks = |mut pos: usize| -> usize {
        while let Some(&n) = bytes.get(pos) {
            pos += 1 + n as usize;
            if n == 0 {
                break;
            }
        }
        pos
    };
    while let Some(&kind) = bytes.get(pos) {
        match kind {
            0x21 => {
                // Application extension: 11 bytes of name, then sub-blocks.
                let netscape = bytes.get(pos + 1) == Some(&0xFF)
                    && bytes.get(pos + 2) == Some(&11)
                    && bytes.get(pos + 3..pos + 14) == Some(&b"NETSCAPE2.0"[..]);
                if netscape && bytes.get(pos + 14) == Some(&3) && bytes.get(pos + 15) == Some(&1) {
                    frames.loops = match u16_at(pos + 16) {
                        Some(0) => Loops::Forever,
                        Some(n) => Loops::Plays(n as u32 + 1),
                        None => frames.loops,
                    };
                }
                pos = skip_blocks(pos + 2)
            }
            0x2C => {
                let (Some(x), Some(y), Some(w), Some(h), Some(&f)) = (
                    u16_at(pos + 1),
                    u16_at(pos + 3),
                    u16_at(pos + 5),
                    u16_at(pos + 7),
                    bytes.get(pos + 9),
                ) else {
                    break;
                };
                if x as u32 + w as u32 > screen_w as u32 || y as u32 + h as u32 > screen_h as u32 {
                    return Err(Error::Decode(format!(
                        "GIF frame {w}x{h} at {x},{y} lies outside its {screen_w}x{screen_h} screen"
                    )));
                }
                frames.count += 1;
                // Local colour table, then the LZW code size, then data.
                pos = skip_blocks(pos + 10 + table(f) + 1);
            }
            _ => break, // The trailer, or garbage the decoder reports.
        }
    }
    frames.count = frames.count.max(1);
    Ok(frames)
}

/// Walks a WebP's RIFF chunks: an animation (the VP8X flag) has one `ANMF`
/// chunk a frame, and its loop count in `ANIM` (0 is forever).
fn webp_frames(bytes: &[u8]) -> Frames {
    const ANIMATION_FLAG: u8 = 0x02;
    let animated = bytes.get(12..16) == Some(&b"VP8X"[..])
        && bytes.get(20).is_some_and(|f| f & ANIMATION_FLAG != 0);
    if !animated {
        return STILL;
    }
    let mut frames = Frames {
        count: 0,
        loops: Loops::Forever,
    };
    let mut pos = 12usize;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        match &head[..4] {
            b"ANMF" => frames.count += 1,
            b"ANIM" => {
                if let Some(n) = bytes.get(pos + 12..pos + 14) {
                    frames.loops = match u16::from_le_bytes([n[0], n[1]]) {
                        0 => Loops::Forever,
                        n => Loops::Plays(n as u32),
                    };
                }
            }
            _ => {}
        }
        // Payloads are padded to an even length.
        pos = pos
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    frames.count = frames.count.max(1);
    frames
}

/// Walks the PNG's chunks; each `iCCP` profile is inflated up to
/// [`MAX_ICC_BYTES`], and one that inflates past it is refused.
fn png_chunks(bytes: &[u8]) -> Result<(), Error> {
    let mut pos = 8;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let Some(data) = bytes.get(pos + 8..(pos + 8).saturating_add(len)) else {
            break; // Truncated: the decoder reports it.
        };
        if kind == b"IEND" {
            break;
        }
        if kind == b"iCCP" {
            // Name (1-79 bytes), NUL, compression method, zlib stream.
            if let Some(nul) = data.iter().take(80).position(|&b| b == 0) {
                let stream = data.get(nul + 2..).unwrap_or(&[]);
                if let Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) =
                    fdeflate::decompress_to_vec_bounded(stream, MAX_ICC_BYTES)
                {
                    return Err(Error::OverLimit(format!(
                        "PNG colour profile inflates past {} KiB",
                        MAX_ICC_BYTES >> 10
                    )));
                }
            }
        }
        pos += 12 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, a progressive greyscale `w`×`h` frame, then `scans` empty DC
    /// scans (the review's scan flood).
    fn scan_flood(w: u16, h: u16, scans: usize) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 11, 8];
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[1, 1, 0x11, 0]);
        for _ in 0..scans {
            j.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 0]);
        }
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn a_jpeg_scan_flood_is_refused_in_well_under_100_ms() {
        for (scans, why) in [(421, "more than 100 scans"), (90, "blocks")] {
            let flood = scan_flood(8192, 6096, scans);
            let started = std::time::Instant::now();
            let e = check(&flood, SourceFormat::Jpeg).unwrap_err();
            let spent = started.elapsed();
            assert_eq!(e.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
            assert!(e.to_string().contains(why), "{e}");
            assert!(spent.as_millis() < 100, "{spent:?}");
        }
        // Two passes over the frame cost nothing extra, whatever the size.
        assert!(check(&scan_flood(8192, 6096, 2), SourceFormat::Jpeg).is_ok());
    }

    #[test]
    fn a_sequential_frame_coding_a_component_twice_is_refused() {
        // The fuzzer's CMYK file: one interleaved scan, then 60 empty
        // scans of one component, which jpeg-decoder decoded whole each time.
        let fuzzed = include_bytes!("../../tests/bad/decode-cmyk-sequential-scan-repeated.jpg");
        let mut flood = scan_flood(4096, 4096, 2);
        flood[3] = 0xC0;
        for bytes in [&fuzzed[..], &flood] {
            let e = check(bytes, SourceFormat::Jpeg).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(e.to_string().contains("more than one scan"), "{e}");
        }
        // One scan per component, not interleaved, is the norm's other way.
        let mut planar = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0, 64, 0, 64, 3];
        for id in 1..=3u8 {
            planar.extend_from_slice(&[id, 0x11, 0]);
        }
        for id in 1..=3u8 {
            planar.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, id, 0, 0, 63, 0]);
        }
        planar.extend_from_slice(&[0xFF, 0xD9]);
        check(&planar, SourceFormat::Jpeg).unwrap();
    }

    /// A progressive 512×512 frame of `components` (4:4:4), a 64 KB comment
    /// (so the byte allowance is not what binds), then `scans` empty AC
    /// scans of one component each, in turn.
    fn progressive_flood(components: u8, scans: usize) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xFE, 0xFF, 0xFF];
        j.extend(std::iter::repeat_n(b' ', 0xFFFD));
        let len = 8 + 3 * components as u16;
        j.extend_from_slice(&[0xFF, 0xC2]);
        j.extend_from_slice(&len.to_be_bytes());
        j.extend_from_slice(&[8, 2, 0, 2, 0, components]);
        for id in 1..=components {
            j.extend_from_slice(&[id, 0x11, 0]);
        }
        for i in 0..scans {
            let id = 1 + (i % components as usize) as u8;
            j.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, id, 0, 1, 63, 0]);
        }
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn frames_jpeg_decoder_takes_get_fewer_passes() {
        // 16 passes: within our decoder's 32, over jpeg-decoder's 12.
        check(&progressive_flood(3, 48), SourceFormat::Jpeg).unwrap();
        let e = check(&progressive_flood(4, 64), SourceFormat::Jpeg).unwrap_err();
        assert!(e.to_string().contains("blocks"), "{e}");
        // libjpeg's script for CMYK makes 6 passes; 11 still pass.
        check(&progressive_flood(4, 44), SourceFormat::Jpeg).unwrap();
        // A progressive CMYK file as an encoder writes it.
        let mut cmyk = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut cmyk, 90);
        enc.set_progressive(true);
        let pixels: Vec<u8> = (0..256 * 256 * 4).map(|i| (i * 7 % 251) as u8).collect();
        enc.encode(&pixels, 256, 256, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        check(&cmyk, SourceFormat::Jpeg).unwrap();
    }

    #[test]
    fn real_scan_scripts_pass() {
        // libjpeg's and mozjpeg's progressive scripts, with restarts, grey.
        for f in [
            &include_bytes!("../../crates/codecs/testdata/progressive-420-restart.jpg")[..],
            include_bytes!("../../crates/codecs/testdata/progressive-444.jpg"),
            include_bytes!("../../crates/codecs/testdata/progressive-grey.jpg"),
            include_bytes!("../../crates/codecs/testdata/progressive-mozjpeg.jpg"),
            include_bytes!("../../crates/codecs/testdata/baseline-420.jpg"),
        ] {
            check(f, SourceFormat::Jpeg).unwrap();
        }
        // A flat grey progressive JPEG is the least data a frame can
        // have: still well inside the bound.
        let mut flat = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut flat, 80);
        enc.set_progressive(true);
        enc.encode(
            &vec![128u8; 2048 * 1536 * 3],
            2048,
            1536,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
        check(&flat, SourceFormat::Jpeg).unwrap();
    }

    fn gif(screen: (u16, u16), frame: (u16, u16, u16, u16)) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        for v in [screen.0, screen.1] {
            g.extend_from_slice(&v.to_le_bytes());
        }
        g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 1, 0, 0, 0]);
        g.push(0x2C);
        for v in [frame.0, frame.1, frame.2, frame.3] {
            g.extend_from_slice(&v.to_le_bytes());
        }
        g.extend_from_slice(&[0, 2, 2, 0x2C, 0x01, 0, 0x3B]);
        g
    }

    #[test]
    fn gif_frames_must_lie_inside_the_screen() {
        assert!(check(&gif((10, 10), (0, 0, 10, 10)), SourceFormat::Gif).is_ok());
        assert!(check(&gif((10, 10), (5, 5, 5, 5)), SourceFormat::Gif).is_ok());
        for frame in [(0, 0, 8000, 8000), (9, 0, 2, 1), (0, 0, 1, 11)] {
            let e = check(&gif((10, 10), frame), SourceFormat::Gif).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        // Cut anywhere: never a panic.
        let g = gif((10, 10), (0, 0, 10, 10));
        for cut in 0..g.len() {
            let _ = check(&g[..cut], SourceFormat::Gif);
        }
    }

    fn png_with_iccp(inflated: usize) -> Vec<u8> {
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(1, 1)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let mut data = b"p\0\0".to_vec();
        data.extend_from_slice(&fdeflate::compress_to_vec(&vec![0u8; inflated]));
        let mut out = png[..33].to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(b"iCCP");
        out.extend_from_slice(&data);
        out.extend_from_slice(&[0; 4]); // CRC: not checked here
        out.extend_from_slice(&png[33..]);
        out
    }

    #[test]
    fn png_profiles_are_bounded_before_they_are_inflated() {
        assert!(check(&png_with_iccp(3 << 10), SourceFormat::Png).is_ok());
        let bomb = png_with_iccp(64 << 20);
        assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());
        let e = check(&bomb, SourceFormat::Png).unwrap_err();
        assert_eq!(e.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
