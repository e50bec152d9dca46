//! Test images, generated so every runtime's suite can run anywhere: each
//! covers one decoder path (progressive, grayscale, CMYK, EXIF orientation,
//! 16-bit, palette, alpha, GIF, WebP, BMP) or one hostile header.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A photo-like RGB image with a red marker in the top-left corner, so
/// orientation and crops can be checked from pixels.
pub fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if x < w / 4 && y < h / 4 {
            return Rgb([230, 20, 20]);
        }
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let t = ((x * 7 + y * 13) % 17) as f32 / 17.0;
        Rgb([
            (40.0 + 120.0 * fx + 20.0 * t) as u8,
            (90.0 + 100.0 * fy) as u8,
            (200.0 - 120.0 * fx * fy) as u8,
        ])
    })
}

fn jpeg_encoder(
    pixels: &[u8],
    w: u32,
    h: u32,
    color: jpeg_encoder::ColorType,
    progressive: bool,
    exif: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_progressive(progressive);
    if let Some(e) = exif {
        enc.add_app_segment(1, e).unwrap();
    }
    enc.encode(pixels, w as u16, h as u16, color).unwrap();
    out
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    jpeg_encoder(
        photo(w, h).as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
        false,
        None,
    )
}

pub fn jpeg_progressive(w: u32, h: u32) -> Vec<u8> {
    jpeg_encoder(
        photo(w, h).as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
        true,
        None,
    )
}

pub fn jpeg_gray(w: u32, h: u32) -> Vec<u8> {
    let gray = DynamicImage::ImageRgb8(photo(w, h)).into_luma8();
    jpeg_encoder(
        gray.as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Luma,
        false,
        None,
    )
}

/// CMYK, as print workflows and some archives store it.
pub fn jpeg_cmyk(w: u32, h: u32) -> Vec<u8> {
    let cmyk: Vec<u8> = photo(w, h)
        .pixels()
        .flat_map(|p| {
            let k = 255 - p[0].max(p[1]).max(p[2]);
            let c = |v: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - v - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [c(p[0]), c(p[1]), c(p[2]), k]
        })
        .collect();
    jpeg_encoder(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk, false, None)
}

/// A minimal big-endian EXIF block holding only an Orientation tag.
pub fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut e = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    e.extend_from_slice(&[0, 1]); // one IFD entry
    e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT, 1
    e.extend_from_slice(&orientation.to_be_bytes());
    e.extend_from_slice(&[0, 0]);
    e.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    e
}

/// Stored `w`×`h` with the given EXIF orientation.
pub fn jpeg_exif(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    jpeg_encoder(
        photo(w, h).as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
        false,
        Some(exif_orientation(orientation)),
    )
}

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgb8(photo(w, h)), ImageFormat::Png)
}

/// Transparent except for a centred opaque square.
pub fn png_alpha(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| {
        let inside = x > w / 4 && x < 3 * w / 4 && y > h / 4 && y < 3 * h / 4;
        if inside {
            Rgba([20, 120, 220, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

pub fn png16(w: u32, h: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(photo(w, h)).into_rgb16().into(),
        ImageFormat::Png,
    )
}

/// An indexed (palette) PNG, written with the `png` crate directly.
pub fn png_palette(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250]);
        let mut wr = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h).map(|i| ((i % w) * 4 / w) as u8).collect();
        wr.write_image_data(&data).unwrap();
    }
    out
}

pub fn gif(w: u32, h: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(photo(w, h)).into_rgba8().into(),
        ImageFormat::Gif,
    )
}

/// The frames of the animated fixtures: a solid colour each (the centre
/// pixel tells them apart) with a black bar that moves, and a delay.
pub const ANIMATION: [([u8; 3], u32); 3] = [
    ([200, 30, 30], 100),
    ([30, 180, 30], 250),
    ([30, 30, 200], 70),
];

fn animation_frames(w: u32, h: u32) -> Vec<(RgbaImage, u32)> {
    ANIMATION
        .iter()
        .enumerate()
        .map(|(i, &([r, g, b], delay))| {
            let bar = i as u32 * w / 8; // never over the centre
            let img = RgbaImage::from_fn(w, h, |x, _| {
                if x >= bar && x < bar + w / 10 {
                    Rgba([0, 0, 0, 255])
                } else {
                    Rgba([r, g, b, 255])
                }
            });
            (img, delay)
        })
        .collect()
}

/// An animated GIF of [`ANIMATION`]'s frames that loops forever, written
/// by `image`'s encoder.
pub fn animated_gif(w: u32, h: u32) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for (img, delay) in animation_frames(w, h) {
            let delay = image::Delay::from_numer_denom_ms(delay, 1);
            enc.encode_frame(image::Frame::from_parts(img, 0, 0, delay))
                .unwrap();
        }
    }
    out
}

/// An animated GIF of `frames` frames of `w`×`h` panning across a
/// generated photo twice as wide, 80 ms a frame, looping: for measuring.
/// Its colours are cut to a 6×7×6 cube first, so the encoder takes them
/// as its palette instead of running NeuQuant on every frame.
pub fn panning_gif(w: u32, h: u32, frames: u32) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let wide = photo(2 * w, h);
    let cube = |v: u8, n: u32| ((v as u32 * (n - 1) + 127) / 255 * 255 / (n - 1)) as u8;
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 30);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let x0 = i * w / frames;
            let frame = RgbaImage::from_fn(w, h, |x, y| {
                let p = wide.get_pixel(x0 + x, y).0;
                Rgba([cube(p[0], 6), cube(p[1], 7), cube(p[2], 6), 255])
            });
            let delay = image::Delay::from_numer_denom_ms(80, 1);
            enc.encode_frame(image::Frame::from_parts(frame, 0, 0, delay))
                .unwrap();
        }
    }
    out
}

/// The same animation as a WebP. No encoder in the tree here writes
/// animated WebP but ours (`image` and image-webp decode it only), so
/// ours makes the fixture; its output is checked by image-webp's decoder
/// in its own tests.
pub fn animated_webp(w: u32, h: u32) -> Vec<u8> {
    use edgethumb::pipeline::encode::animated::{webp, Frame};
    use edgethumb::pipeline::preflight::Loops;
    let frames: Vec<Frame> = animation_frames(w, h)
        .into_iter()
        .map(|(image, delay_ms)| Frame { image, delay_ms })
        .collect();
    webp(&frames, Loops::Forever, 90).unwrap()
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(photo(w, h)).into_rgba8()),
        ImageFormat::WebP,
    )
}

/// A valid all-transparent lossless WebP of any size: a few hundred bytes
/// that decode whole to 4 bytes a pixel.
pub fn webp_blank(w: u32, h: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(RgbaImage::new(w, h)),
        ImageFormat::WebP,
    )
}

pub fn bmp(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgb8(photo(w, h)), ImageFormat::Bmp)
}

/// A valid all-black 8-bit RGB PNG of any size (compresses to almost
/// nothing, so a huge image costs little to serve).
pub fn png_blank(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; w as usize * 3];
    for _ in 0..h {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    drop(writer);
    out
}

/// A flat grey progressive JPEG: small on the wire, but a decode above
/// 1/8 scale holds every DCT coefficient of the full-size image.
pub fn jpeg_blank_progressive(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 80);
    enc.set_progressive(true);
    let pixels = vec![128u8; w as usize * h as usize * 3];
    enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A valid PNG signature and IHDR claiming `w`×`h`, then nothing: decoding
/// it would need gigabytes, so it must be refused from the header alone.
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &rgb8_ihdr(w, h));
    out
}

/// A `w`×`h` RGB PNG whose middle row names filter type 7 (PNG has 0–4):
/// the rest is well formed, so only unfiltering can refuse it.
pub fn png_unknown_filter(w: u32, h: u32) -> Vec<u8> {
    let row = w as usize * 3 + 1;
    let mut raw = vec![0u8; row * h as usize];
    raw[row * (h as usize / 2)] = 7;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &rgb8_ihdr(w, h));
    png_chunk(&mut out, b"IDAT", &fdeflate::compress_to_vec(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// IHDR data: 8-bit RGB, not interlaced.
fn rgb8_ihdr(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    ihdr
}

/// Appends one PNG chunk: length, type, data, CRC of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Incompressible RGB noise as PNG: about 3 bytes a pixel on the wire.
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let img = RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        Rgb([b[0], b[1], b[2]])
    });
    encode(DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

/// A JPEG whose EXIF block is garbage: an IFD offset far past its end.
pub fn jpeg_exif_garbage(w: u32, h: u32) -> Vec<u8> {
    let exif = b"Exif\0\0MM\0\x2a\xff\xff\xff\xf0\0\x05\x01\x12".to_vec();
    jpeg_encoder(
        photo(w, h).as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
        false,
        Some(exif),
    )
}

/// A small baseline JPEG whose frame header claims `w`×`h`: decoding it
/// would need gigabytes, so it must be refused from the header alone.
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut j = jpeg(64, 32);
    let sof = j
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline SOF0");
    j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    j
}

/// A `w`×`h` GIF of `frames` 1×1 frames: a decoder that walks every frame
/// (or composes them all) spends its time on nothing visible.
pub fn gif_many_frames(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0]); // a 2-colour global table
    g.extend_from_slice(&[0, 0, 0, 0xFF, 0xFF, 0xFF]);
    for i in 0..frames {
        let (x, y) = (
            (i % w as usize) as u16,
            ((i / w as usize) % h as usize) as u16,
        );
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 1, 0, 0, 0]); // 10 ms a frame
        g.push(0x2C);
        g.extend_from_slice(&x.to_le_bytes());
        g.extend_from_slice(&y.to_le_bytes());
        g.extend_from_slice(&[1, 0, 1, 0, 0]);
        g.extend_from_slice(&[2, 2, 0x44, 1, 0]); // one pixel, LZW
    }
    g.push(0x3B);
    g
}

/// A progressive greyscale JPEG that declares `w`×`h` and then `scans`
/// DC scans of one byte each: a few KiB whose scans, decoded as zeros,
/// would each walk every block of the frame (the security review's scan
/// flood: 421 scans at 8192×6096 took 8.5 s of CPU).
pub fn jpeg_scan_flood(w: u16, h: u16, scans: usize) -> Vec<u8> {
    let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
        out.extend_from_slice(body);
    };
    let mut j = vec![0xFF, 0xD8];
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1; 64]);
    segment(&mut j, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    segment(&mut j, 0xC2, &sof);
    // DC table 0: one 1-bit code, for "no difference".
    let mut dht = vec![0x00, 1];
    dht.extend_from_slice(&[0; 15]);
    dht.push(0);
    segment(&mut j, 0xC4, &dht);
    for _ in 0..scans {
        segment(&mut j, 0xDA, &[1, 1, 0x00, 0, 0, 0]);
        j.push(0x00);
    }
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

/// A GIF whose logical screen is 1×1 and whose one frame is `w`×`h`: the
/// pixel limit sees the screen, a decoder allocates the frame.
pub fn gif_frame_outside_screen(w: u16, h: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]); // 1x1, 2-colour table
    g.extend_from_slice(&[0, 0, 0, 0xFF, 0xFF, 0xFF]);
    g.extend_from_slice(&[0x2C, 0, 0, 0, 0]);
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.push(0);
    // LZW: clear, then the end code, in one sub-block.
    g.extend_from_slice(&[2, 2, 0x2C, 0x01, 0]);
    g.push(0x3B);
    g
}

/// A 1×1 PNG whose `iCCP` profile is `inflated` zero bytes, deflated (a
/// zlib bomb: about a thousandth of that on the wire).
pub fn png_iccp_bomb(inflated: usize) -> Vec<u8> {
    let png = png(1, 1);
    let mut data = b"bomb\0\0".to_vec();
    data.extend_from_slice(&fdeflate::compress_to_vec(&vec![0u8; inflated]));
    // After the signature and IHDR (8 + 25 bytes).
    let mut out = png[..33].to_vec();
    png_chunk(&mut out, b"iCCP", &data);
    out.extend_from_slice(&png[33..]);
    out
}

/// Flat stripes, left to right, each a quarter of the width: colours a
/// resize cannot blur at their centres, saturated enough that a wide-gamut
/// profile moves them well away from sRGB, and a grey.
pub const STRIPES: [[u8; 3]; 4] = [[220, 40, 30], [50, 200, 60], [40, 60, 210], [128, 128, 128]];

pub fn stripes(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| Rgb(STRIPES[(x * 4 / w) as usize]))
}

/// The D65 white and a gamut's xy primaries, as LittleCMS takes them.
fn lcms_rgb(primaries: [(f64, f64); 3], curve: &lcms2::ToneCurve) -> lcms2::Profile {
    let xy = |(x, y): (f64, f64)| lcms2::CIExyY { x, y, Y: 1.0 };
    let d65 = lcms2::CIExyY {
        x: 0.3127,
        y: 0.3290,
        Y: 1.0,
    };
    let gamut = lcms2::CIExyYTRIPLE {
        Red: xy(primaries[0]),
        Green: xy(primaries[1]),
        Blue: xy(primaries[2]),
    };
    lcms2::Profile::new_rgb(&d65, &gamut, &[curve, curve, curve]).unwrap()
}

/// Adobe RGB (1998), made by LittleCMS: its primaries, D65, gamma 563/256.
pub fn adobe_rgb_icc() -> Vec<u8> {
    let curve = lcms2::ToneCurve::new(563.0 / 256.0);
    lcms_rgb([(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)], &curve)
        .icc()
        .unwrap()
}

/// Display P3 (the iPhone's), made by LittleCMS: P3 primaries, D65, the
/// sRGB curve.
pub fn display_p3_icc() -> Vec<u8> {
    let srgb_curve = lcms2::ToneCurve::new_parametric(
        4,
        &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045],
    )
    .unwrap();
    lcms_rgb([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], &srgb_curve)
        .icc()
        .unwrap()
}

/// sRGB as LittleCMS writes it.
pub fn srgb_icc() -> Vec<u8> {
    lcms2::Profile::new_srgb().icc().unwrap()
}

/// What LittleCMS makes of `rgb` in the space `icc` describes, in sRGB
/// (perceptual intent, which is relative colorimetric for these).
pub fn lcms_to_srgb(icc: &[u8], rgb: [u8; 3]) -> [u8; 3] {
    let from = lcms2::Profile::new_icc(icc).unwrap();
    let to = lcms2::Profile::new_srgb();
    let t: lcms2::Transform<[u8; 3], [u8; 3]> = lcms2::Transform::new(
        &from,
        lcms2::PixelFormat::RGB_8,
        &to,
        lcms2::PixelFormat::RGB_8,
        lcms2::Intent::Perceptual,
    )
    .unwrap();
    let mut out = [[0u8; 3]];
    t.transform_pixels(&[rgb], &mut out);
    out[0]
}

/// [`stripes`] as a baseline JPEG carrying `icc` (APP2).
pub fn jpeg_stripes(w: u32, h: u32, icc: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    if let Some(icc) = icc {
        enc.add_icc_profile(icc).unwrap();
    }
    enc.encode(
        stripes(w, h).as_raw(),
        w as u16,
        h as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .unwrap();
    out
}

/// [`stripes`] as a PNG carrying `icc` (`iCCP`).
pub fn png_stripes(w: u32, h: u32, icc: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    enc.set_icc_profile(icc.to_vec()).unwrap();
    enc.write_image(stripes(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// [`stripes`] as a lossless WebP carrying `icc` (`ICCP`).
pub fn webp_stripes(w: u32, h: u32, icc: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
    enc.set_icc_profile(icc.to_vec()).unwrap();
    enc.write_image(stripes(w, h).as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Ink stripes (C, M, Y, K; 0 = no ink), as [`STRIPES`] are for RGB.
pub const CMYK_STRIPES: [[u8; 4]; 4] = [
    [0, 200, 220, 20],
    [200, 0, 200, 30],
    [220, 160, 0, 10],
    [0, 0, 0, 128],
];

/// A CMYK print profile, written byte by byte (ICC v2, one `mft2` A2B0
/// table to Lab): a 9-node grid whose every node is the naive "ink
/// darkens its complement" colour, in Lab as LittleCMS computes it from
/// sRGB. A real LUT profile, as print workflows embed, fine enough that
/// LittleCMS's and moxcms' interpolations agree.
pub fn cmyk_icc() -> Vec<u8> {
    let d50 = lcms2::CIExyY {
        x: 0.3457,
        y: 0.3585,
        Y: 1.0,
    };
    let lab = lcms2::Profile::new_lab4_context(lcms2::GlobalContext::new(), &d50).unwrap();
    let to_lab: lcms2::Transform<[u8; 3], [f64; 3]> = lcms2::Transform::new(
        &lcms2::Profile::new_srgb(),
        lcms2::PixelFormat::RGB_8,
        &lab,
        lcms2::PixelFormat::Lab_DBL,
        lcms2::Intent::RelativeColorimetric,
    )
    .unwrap();
    let u16be = |v: u16| v.to_be_bytes();
    let s15 = |v: f64| ((v * 65536.0).round() as i32).to_be_bytes();
    const NODES: u32 = 9;
    // mft2: 4 in, 3 out, NODES grid points, identity matrix, 2-entry tables.
    let mut lut = b"mft2\0\0\0\0".to_vec();
    lut.extend_from_slice(&[4, 3, NODES as u8, 0]);
    for i in 0..9 {
        lut.extend_from_slice(&s15(if i % 4 == 0 { 1.0 } else { 0.0 }));
    }
    lut.extend_from_slice(&u16be(2));
    lut.extend_from_slice(&u16be(2));
    for _ in 0..4 {
        lut.extend_from_slice(&u16be(0));
        lut.extend_from_slice(&u16be(65535));
    }
    // The first input channel varies slowest.
    for node in 0..NODES.pow(4) {
        let ink = |place: u32| (node / NODES.pow(place) % NODES) as f64 / (NODES - 1) as f64;
        let (c, m, y, k) = (ink(3), ink(2), ink(1), ink(0));
        let level = |i: f64| (255.0 * (1.0 - i) * (1.0 - k)).round() as u8;
        let mut out = [[0.0; 3]];
        to_lab.transform_pixels(&[[level(c), level(m), level(y)]], &mut out);
        let [l, a, b] = out[0];
        // ICC v2 16-bit Lab: L 0..100 to 0..0xFF00, a and b + 128 times 256.
        lut.extend_from_slice(&u16be((l / 100.0 * 65280.0).round() as u16));
        lut.extend_from_slice(&u16be(((a + 128.0) * 256.0).round() as u16));
        lut.extend_from_slice(&u16be(((b + 128.0) * 256.0).round() as u16));
    }
    for _ in 0..3 {
        lut.extend_from_slice(&u16be(0));
        lut.extend_from_slice(&u16be(65535));
    }
    let offset = 128 + 4 + 12;
    let size = offset + lut.len();
    let mut icc = Vec::with_capacity(size);
    icc.extend_from_slice(&(size as u32).to_be_bytes());
    icc.extend_from_slice(b"lcms");
    icc.extend_from_slice(&[2, 0x10, 0, 0]);
    icc.extend_from_slice(b"prtrCMYKLab ");
    icc.extend_from_slice(&[0; 12]); // date
    icc.extend_from_slice(b"acsp");
    icc.extend_from_slice(&[0; 24]); // platform, flags, maker, model, attributes
    icc.extend_from_slice(&[0; 4]); // perceptual intent
    for v in [0.9642, 1.0, 0.8249] {
        icc.extend_from_slice(&s15(v)); // D50
    }
    icc.resize(128, 0);
    icc.extend_from_slice(&1u32.to_be_bytes());
    icc.extend_from_slice(b"A2B0");
    icc.extend_from_slice(&(offset as u32).to_be_bytes());
    icc.extend_from_slice(&(lut.len() as u32).to_be_bytes());
    icc.extend_from_slice(&lut);
    icc
}

/// What LittleCMS makes of ink values under `icc`, in sRGB.
pub fn lcms_cmyk_to_srgb(icc: &[u8], cmyk: [u8; 4]) -> [u8; 3] {
    let t: lcms2::Transform<[u8; 4], [u8; 3]> = lcms2::Transform::new(
        &lcms2::Profile::new_icc(icc).unwrap(),
        lcms2::PixelFormat::CMYK_8,
        &lcms2::Profile::new_srgb(),
        lcms2::PixelFormat::RGB_8,
        lcms2::Intent::Perceptual,
    )
    .unwrap();
    let mut out = [[0u8; 3]];
    t.transform_pixels(&[cmyk], &mut out);
    out[0]
}

/// [`CMYK_STRIPES`] as a CMYK JPEG carrying `icc`.
pub fn jpeg_cmyk_stripes(w: u32, h: u32, icc: &[u8]) -> Vec<u8> {
    let ink: Vec<u8> = (0..w * h)
        .flat_map(|i| CMYK_STRIPES[(i % w * 4 / w) as usize])
        .collect();
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    enc.add_icc_profile(icc).unwrap();
    enc.encode(&ink, w as u16, h as u16, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    out
}

/// [`STRIPES`] as an 8-bit RGB PNG with the colour chunks `tag` sets.
fn png_stripes_tagged(
    w: u32,
    h: u32,
    tag: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    tag(&mut enc);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(stripes(w, h).as_raw()).unwrap();
    writer.finish().unwrap();
    out
}

/// [`STRIPES`] as a PNG with only a `gAMA` chunk of 1/1.8 (an old Mac's
/// files): libpng corrects that gamma, as it is not near sRGB's.
pub fn png_gama_stripes(w: u32, h: u32) -> Vec<u8> {
    png_stripes_tagged(w, h, |enc| {
        enc.set_source_gamma(png::ScaledFloat::new(1.0 / 1.8));
    })
}

/// The space [`png_gama_stripes`] describes, as LittleCMS builds it: sRGB's
/// primaries with a pure 1.8 gamma.
pub fn gamma_18_icc() -> Vec<u8> {
    let curve = lcms2::ToneCurve::new(1.8);
    lcms_rgb([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], &curve)
        .icc()
        .unwrap()
}

/// Display P3's primaries and white (D65), as a PNG's `cHRM` gives them.
const P3_CHRM: [(f32, f32); 4] = [
    (0.3127, 0.3290),
    (0.680, 0.320),
    (0.265, 0.690),
    (0.150, 0.060),
];

/// [`STRIPES`] as a PNG that names Display P3's primaries in `cHRM`, with
/// a `gAMA` of 1/2.2 and no profile: libpng converts by the primaries and
/// leaves a gamma that near sRGB's as it is.
pub fn png_chrm_p3_stripes(w: u32, h: u32) -> Vec<u8> {
    png_stripes_tagged(w, h, |enc| {
        enc.set_source_gamma(png::ScaledFloat::new(1.0 / 2.2));
        let xy = |(x, y): (f32, f32)| (png::ScaledFloat::new(x), png::ScaledFloat::new(y));
        enc.set_source_chromaticities(png::SourceChromaticities {
            white: xy(P3_CHRM[0]),
            red: xy(P3_CHRM[1]),
            green: xy(P3_CHRM[2]),
            blue: xy(P3_CHRM[3]),
        });
    })
}

/// The space [`png_chrm_p3_stripes`] describes, as LittleCMS builds it:
/// Display P3's primaries with sRGB's curve.
pub fn chrm_p3_icc() -> Vec<u8> {
    let srgb_curve = lcms2::ToneCurve::new_parametric(
        4,
        &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045],
    )
    .unwrap();
    let p = |i: usize| (f64::from(P3_CHRM[i].0), f64::from(P3_CHRM[i].1));
    lcms_rgb([p(1), p(2), p(3)], &srgb_curve).icc().unwrap()
}

/// `trim`'s subject: on white, a dark block at x 48..144, y 64..112 (on
/// JPEG's 16-pixel grid) with a red marker in its top-left corner.
pub fn framed(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (x, y) {
        (48..72, 64..76) => Rgb([230, 20, 20]),
        (48..144, 64..112) => Rgb([40, 40, 40]),
        _ => Rgb([255, 255, 255]),
    })
}

pub fn framed_png(w: u32, h: u32) -> Vec<u8> {
    encode(DynamicImage::ImageRgb8(framed(w, h)), ImageFormat::Png)
}

/// [`framed`] with a transparent background instead of white.
pub fn framed_png_alpha(w: u32, h: u32) -> Vec<u8> {
    let rgb = framed(w, h);
    let img = RgbaImage::from_fn(w, h, |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        let a = if [r, g, b] == [255, 255, 255] { 0 } else { 255 };
        Rgba([r, g, b, a])
    });
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

/// [`framed`] as a grey JPEG: no chroma to bleed past the block's edges.
pub fn framed_jpeg(w: u32, h: u32) -> Vec<u8> {
    let grey = DynamicImage::ImageRgb8(framed(w, h)).into_luma8();
    jpeg_encoder(
        grey.as_raw(),
        w,
        h,
        jpeg_encoder::ColorType::Luma,
        false,
        None,
    )
}

/// The watermark every target is configured with: 20×10, opaque green.
pub fn watermark_png() -> Vec<u8> {
    let img = RgbaImage::from_pixel(20, 10, Rgba([0, 255, 0, 255]));
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

/// A progressive 4:4:4 frame of `components` and `w`×`h`, a 64 KB comment
/// (so the byte allowance is not what binds), then `scans` empty AC scans
/// of one component each, in turn: a CMYK one (4) is jpeg-decoder's, whose
/// block visits cost several times our decoder's.
pub fn jpeg_progressive_flood(w: u16, h: u16, components: u8, scans: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xFE, 0xFF, 0xFF];
    j.extend(std::iter::repeat_n(b' ', 0xFFFD));
    j.extend_from_slice(&[0xFF, 0xC2]);
    j.extend_from_slice(&(8 + 3 * components as u16).to_be_bytes());
    j.push(8);
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.push(components);
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
