//! Animated outputs, from frames already resized to the same size:
//! - WebP: each frame encoded by libwebp as a still, its chunks put in an
//!   `ANMF` frame of the extended container. Every frame covers the whole
//!   canvas and replaces the one before (no blending, no disposal), so the
//!   source's disposal and blending, already applied by the decoder's
//!   compositing, are kept as they looked. libwebp's `WebPAnimEncoder`
//!   would also crop unchanged areas, but its C needs `snprintf` and
//!   `stderr`, which the Worker's wasm32-unknown-unknown has no libc for.
//! - GIF: `image`'s encoder (the `gif` crate, NeuQuant palettes per frame).

use edgethumb_codecs::webp;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, RgbaImage};

use crate::error::Error;
use crate::pipeline::preflight::Loops;

/// NeuQuant's sampling: 1 is slowest and best, 30 fastest; 10 is the
/// `gif` crate's suggested balance.
const GIF_SPEED: i32 = 10;

/// One output frame.
pub struct Frame {
    pub image: RgbaImage,
    pub delay_ms: u32,
}

/// An animated WebP of `frames` (at least one, all one size).
pub fn webp(frames: &[Frame], loops: Loops, quality: u8) -> Result<Vec<u8>, Error> {
    const ANIMATION: u8 = 0x02;
    const ALPHA: u8 = 0x10;
    let Some(first) = frames.first() else {
        return Err(Error::Internal("an animation with no frames".into()));
    };
    let (w, h) = first.image.dimensions();
    let mut body = Vec::new();
    let mut any_alpha = false;
    for f in frames {
        if f.image.dimensions() != (w, h) {
            return Err(Error::Internal("animation frames differ in size".into()));
        }
        let alpha = f.image.pixels().any(|p| p[3] != 255);
        any_alpha |= alpha;
        let still = if alpha {
            webp::encode_lossy(f.image.as_raw(), w, h, 4, quality)?
        } else {
            let rgb: Vec<u8> = f
                .image
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            webp::encode_lossy(&rgb, w, h, 3, quality)?
        };
        let data = still_chunks(&still)?;
        let mut anmf = Vec::with_capacity(16 + data.len());
        anmf.extend_from_slice(&[0; 6]); // x and y offsets, halved
        anmf.extend_from_slice(&u24(w - 1));
        anmf.extend_from_slice(&u24(h - 1));
        anmf.extend_from_slice(&u24(f.delay_ms.min(0xFF_FFFF)));
        anmf.push(0x02); // do not blend; dispose none
        anmf.extend_from_slice(data);
        chunk(&mut body, b"ANMF", &anmf);
    }
    let mut vp8x = vec![ANIMATION | if any_alpha { ALPHA } else { 0 }, 0, 0, 0];
    vp8x.extend_from_slice(&u24(w - 1));
    vp8x.extend_from_slice(&u24(h - 1));
    let loop_count = match loops {
        Loops::Forever => 0,
        Loops::Plays(n) => n.clamp(1, u16::MAX as u32) as u16,
    };
    let mut anim = vec![0u8; 4]; // background: transparent
    anim.extend_from_slice(&loop_count.to_le_bytes());
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    chunk(&mut out, b"VP8X", &vp8x);
    chunk(&mut out, b"ANIM", &anim);
    out.extend_from_slice(&body);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

/// An animated GIF of `frames`.
pub fn gif(frames: Vec<Frame>, loops: Loops) -> Result<Vec<u8>, Error> {
    let fail = |e: image::ImageError| Error::Internal(format!("GIF encode: {e}"));
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, GIF_SPEED);
        // NETSCAPE2.0 counts repeats after the first play; none plays once.
        match loops {
            Loops::Forever => enc.set_repeat(Repeat::Infinite).map_err(fail)?,
            Loops::Plays(n) if n > 1 => {
                let repeats = (n - 1).min(u16::MAX as u32) as u16;
                enc.set_repeat(Repeat::Finite(repeats)).map_err(fail)?
            }
            Loops::Plays(_) => {}
        }
        for f in frames {
            let delay = Delay::from_numer_denom_ms(f.delay_ms, 1);
            enc.encode_frame(image::Frame::from_parts(f.image, 0, 0, delay))
                .map_err(fail)?;
        }
    }
    Ok(out)
}

/// A still GIF (one palette for the picture).
pub fn gif_still(img: &image::DynamicImage) -> Result<Vec<u8>, Error> {
    let frame = Frame {
        image: img.to_rgba8(),
        delay_ms: 0,
    };
    gif(vec![frame], Loops::Plays(1))
}

/// The chunks of a still WebP file after its header (and after a VP8X
/// chunk, which an `ANMF` frame must not carry): `ALPH` and `VP8 `.
fn still_chunks(file: &[u8]) -> Result<&[u8], Error> {
    let chunks = file
        .get(12..)
        .filter(|_| file.get(..4) == Some(&b"RIFF"[..]))
        .ok_or_else(|| Error::Internal("libwebp wrote no RIFF file".into()))?;
    Ok(match chunks.get(..4) {
        Some(b"VP8X") => chunks.get(18..).unwrap_or(&[]),
        _ => chunks,
    })
}

fn chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

fn u24(n: u32) -> [u8; 3] {
    let b = n.to_le_bytes();
    [b[0], b[1], b[2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;

    fn frames() -> Vec<Frame> {
        [
            ([200, 30, 30, 255], 100),
            ([30, 200, 30, 255], 250),
            ([30, 30, 200, 0], 70),
        ]
        .into_iter()
        .map(|(c, delay_ms)| Frame {
            image: RgbaImage::from_pixel(37, 20, image::Rgba(c)),
            delay_ms,
        })
        .collect()
    }

    /// What an independent decoder (`image`'s) reads back: each frame's
    /// delay in ms and its centre pixel, and the loop count.
    fn read<'a>(
        decoder: impl AnimationDecoder<'a>,
    ) -> (Vec<(u32, [u8; 4])>, image::metadata::LoopCount) {
        let loops = decoder.loop_count();
        let frames = decoder.into_frames().collect_frames().unwrap();
        let frames = frames
            .into_iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                (n / d, f.buffer().get_pixel(18, 10).0)
            })
            .collect();
        (frames, loops)
    }

    fn close(a: [u8; 4], b: [u8; 4]) -> bool {
        // Fully transparent pixels may have any colour.
        (a[3] == 0 && b[3] == 0) || a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 8)
    }

    #[test]
    fn animated_webp_keeps_frames_delays_and_loops() {
        use image::codecs::webp::WebPDecoder;
        use image::metadata::LoopCount;
        let body = webp(&frames(), Loops::Plays(3), 90).unwrap();
        let (got, loops) = read(WebPDecoder::new(std::io::Cursor::new(&body)).unwrap());
        assert!(matches!(loops, LoopCount::Finite(n) if n.get() == 3));
        assert_eq!(got.len(), 3);
        for (f, (delay, px)) in frames().iter().zip(&got) {
            assert_eq!(*delay, f.delay_ms);
            assert!(close(*px, f.image.get_pixel(18, 10).0), "{px:?}");
        }
        let body = webp(&frames(), Loops::Forever, 90).unwrap();
        let (_, loops) = read(WebPDecoder::new(std::io::Cursor::new(&body)).unwrap());
        assert!(matches!(loops, LoopCount::Infinite));
    }

    #[test]
    fn animated_gif_keeps_frames_delays_and_loops() {
        use crate::pipeline::preflight;
        use crate::pipeline::sniff::SourceFormat;
        use image::codecs::gif::GifDecoder;
        for loops in [Loops::Forever, Loops::Plays(1), Loops::Plays(4)] {
            let body = gif(frames(), loops).unwrap();
            let (got, _) = read(GifDecoder::new(std::io::Cursor::new(&body)).unwrap());
            assert_eq!(got.len(), 3);
            for (f, (delay, px)) in frames().iter().zip(&got) {
                assert_eq!(*delay, f.delay_ms);
                assert!(close(*px, f.image.get_pixel(18, 10).0), "{px:?}");
            }
            // Our own structure walk reads the loop count back.
            let read = preflight::check(&body, SourceFormat::Gif).unwrap();
            assert_eq!((read.count, read.loops), (3, loops));
        }
    }

    #[test]
    fn animated_webp_structure_is_read_back() {
        use crate::pipeline::preflight;
        use crate::pipeline::sniff::SourceFormat;
        let body = webp(&frames(), Loops::Plays(2), 80).unwrap();
        let read = preflight::check(&body, SourceFormat::Webp).unwrap();
        assert_eq!((read.count, read.loops), (3, Loops::Plays(2)));
    }
}
