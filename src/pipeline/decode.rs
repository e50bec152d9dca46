//! Header probing and decoding under limits.
//!
//! The header is read first, so the pixel limit is enforced before any
//! pixel buffer exists. JPEG decodes with DCT scaling (1/2, 1/4, 1/8) down
//! to the size the output needs (shrink-on-load) with our own reduced-scale
//! decoder (`edgethumb_codecs::jpeg`), so peak memory follows the output, not the
//! source. The same decoder takes progressive JPEGs at full scale;
//! jpeg-decoder covers sequential ones there, and rarer frames. Large PNGs
//! shrink row by row as they decode (`edgethumb_codecs::png_shrink`).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use super::colour::ToSrgb;
use super::deadline::Deadline;
use super::sniff::SourceFormat;
use super::Limits;
use crate::error::Error;
use edgethumb_codecs::{jpeg, png_shrink, DecodeError, Rows};

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Decode(m) => Error::Decode(m),
            DecodeError::OverLimit(m) => Error::OverLimit(m),
            // Decoders are only stopped by the deadline (`stopped_by`).
            DecodeError::Stopped => Error::Internal("decode stopped".into()),
            DecodeError::Sink(m) => Error::Internal(m),
        }
    }
}

/// A codec's error, where `deadline` was its `stop`: stopped means timed out.
fn stopped_by(deadline: &Deadline) -> impl Fn(DecodeError) -> Error + '_ {
    move |e| match e {
        DecodeError::Stopped => deadline.error(),
        other => Error::from(other),
    }
}

/// The PNG box factor for `scale`: 1 (decode whole) for other formats and
/// for interlaced PNGs, which arrive in passes, not rows.
fn png_factor(header: &Header, scale: f64) -> u32 {
    if header.format != SourceFormat::Png || header.interlaced {
        return 1;
    }
    png_shrink::factor(scale)
}

/// What the header says, before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: SourceFormat,
    /// Stored size, before EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation, 1 to 8 (1 = as stored).
    pub orientation: u8,
    /// An interlaced (Adam7) PNG, which cannot shrink row by row.
    pub interlaced: bool,
}

impl Header {
    /// Whether the orientation swaps width and height.
    pub fn transposed(&self) -> bool {
        self.orientation >= 5
    }
}

/// Reads size and orientation, and enforces the pixel limit. The size
/// comes from the first header bytes, so a pixel bomb is refused before any
/// decoder exists.
pub fn probe(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Header, Error> {
    if let Ok(size) = imagesize::blob_size(bytes) {
        check_pixels(size.width as u64, size.height as u64, limits)?;
    }
    let (width, height, orientation) = match format {
        SourceFormat::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            d.read_info().map_err(jpeg_error)?;
            let info = d
                .info()
                .ok_or_else(|| Error::Decode("no JPEG frame header".into()))?;
            let orientation = d.exif_data().map_or(1, exif_orientation);
            (info.width as u32, info.height as u32, orientation)
        }
        _ => {
            let mut d = reader(bytes, format, limits)
                .into_decoder()
                .map_err(image_error)?;
            let (w, h) = d.dimensions();
            let orientation = d
                .exif_metadata()
                .ok()
                .flatten()
                .map_or(1, |e| exif_orientation(&e));
            (w, h, orientation)
        }
    };
    if width == 0 || height == 0 {
        return Err(Error::Decode("image has no pixels".into()));
    }
    check_pixels(width as u64, height as u64, limits)?;
    // PNG IHDR: the interlace method is its last byte (offset 28).
    let interlaced = format == SourceFormat::Png && bytes.get(28) != Some(&0);
    Ok(Header {
        format,
        width,
        height,
        orientation,
        interlaced,
    })
}

fn check_pixels(width: u64, height: u64, limits: &Limits) -> Result<(), Error> {
    if width.saturating_mul(height) > limits.max_src_pixels {
        return Err(Error::TooManyPixels {
            width,
            height,
            limit: limits.max_src_pixels,
        });
    }
    Ok(())
}

/// Decodes to 8-bit RGB or RGBA, stored orientation. `scale` (≤ 1) is how
/// much the output shrinks the source: JPEG decodes at the smallest DCT
/// scale that still covers it. RGB stays in the source's colour space
/// (it is converted after the resample); CMYK becomes sRGB through
/// `colour`, its profile, as it becomes RGB.
pub fn decode(
    bytes: &[u8],
    header: &Header,
    scale: f64,
    limits: &Limits,
    deadline: &Deadline,
    colour: Option<&ToSrgb>,
) -> Result<DynamicImage, Error> {
    let png_factor = png_factor(header, scale);
    match header.format {
        SourceFormat::Jpeg => decode_jpeg(bytes, header, scale, limits, deadline, colour),
        SourceFormat::Png if png_factor > 1 => {
            let png_limits = png_shrink::Limits {
                max_pixels: limits.max_src_pixels,
                max_decoder_bytes: decode_budget(limits),
            };
            let stop = || deadline.passed();
            png_shrink::decode(bytes, png_factor, &png_limits, &stop).map_err(stopped_by(deadline))
        }
        format => {
            let img = reader(bytes, format, limits)
                .decode()
                .map_err(image_error)?;
            Ok(if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.into_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.into_rgb8())
            })
        }
    }
}

/// One composited frame of an animation and how long it shows.
pub struct Frame {
    pub image: image::RgbaImage,
    pub delay_ms: u32,
}

/// The frames of an animated GIF or WebP, each composited onto the full
/// canvas (disposal and blending applied), decoded one at a time as the
/// iterator is driven: the caller holds one canvas, not every frame.
pub fn frames<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<impl Iterator<Item = Result<Frame, Error>> + 'a, Error> {
    use image::AnimationDecoder;
    let mut l = image::Limits::default();
    l.max_alloc = Some(decode_budget(limits) as u64);
    let frames = match format {
        SourceFormat::Gif => {
            let mut d =
                image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(image_error)?;
            d.set_limits(l).map_err(image_error)?;
            d.into_frames()
        }
        SourceFormat::Webp => {
            let mut d =
                image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(image_error)?;
            d.set_limits(l).map_err(image_error)?;
            d.into_frames()
        }
        other => {
            return Err(Error::Internal(format!(
                "{other:?} has no frames to decode"
            )))
        }
    };
    Ok(frames.map(|f| {
        let f = f.map_err(image_error)?;
        let (n, d) = f.delay().numer_denom_ms();
        let delay_ms = n.checked_div(d).unwrap_or(0);
        Ok(Frame {
            image: f.into_buffer(),
            delay_ms,
        })
    }))
}

/// Whether [`decode_rows`] can take this source: JPEG (its decoder may
/// still decline a frame) and non-interlaced PNG.
pub fn decodes_in_rows(header: &Header) -> bool {
    match header.format {
        SourceFormat::Jpeg => true,
        SourceFormat::Png => !header.interlaced,
        _ => false,
    }
}

/// Decodes into `rows`, top to bottom, at the size [`decoded_size`] says,
/// stored orientation, in the source's colour space. `Ok(false)`, with
/// `rows` untouched, when the source cannot be decoded in rows (see
/// [`decodes_in_rows`]; and JPEG frames our decoder does not cover).
pub fn decode_rows(
    bytes: &[u8],
    header: &Header,
    scale: f64,
    limits: &Limits,
    deadline: &Deadline,
    rows: &mut dyn Rows,
) -> Result<bool, Error> {
    let stop = || deadline.passed();
    match header.format {
        SourceFormat::Jpeg => {
            let jpeg_limits = jpeg::Limits {
                max_pixels: limits.max_src_pixels,
                ..jpeg::Limits::default()
            };
            jpeg::decode_rows(
                bytes,
                jpeg_eighths(header, scale),
                &jpeg_limits,
                &stop,
                rows,
            )
            .map_err(stopped_by(deadline))
        }
        SourceFormat::Png if !header.interlaced => {
            let png_limits = png_shrink::Limits {
                max_pixels: limits.max_src_pixels,
                max_decoder_bytes: decode_budget(limits),
            };
            let k = png_factor(header, scale);
            png_shrink::decode_rows(bytes, k, &png_limits, &stop, rows)
                .map_err(stopped_by(deadline))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The size [`decode`] will produce: JPEG picks the smallest DCT scale
/// (n/8) that still covers `scale` in either dimension, as jpeg-decoder
/// does; a PNG shrinks by a whole box factor ([`png_factor`]);
/// other formats decode at full size.
pub fn decoded_size(header: &Header, scale: f64) -> (u32, u32) {
    if header.format == SourceFormat::Png {
        let k = png_factor(header, scale);
        return png_shrink::shrunk_size(header.width, header.height, k);
    }
    if header.format != SourceFormat::Jpeg {
        return (header.width, header.height);
    }
    let n = jpeg_eighths(header, scale);
    (dct_scaled(header.width, n), dct_scaled(header.height, n))
}

/// The JPEG DCT scale, in eighths (1, 2, 4 or 8): the smallest that still
/// covers `scale` in either dimension.
fn jpeg_eighths(header: &Header, scale: f64) -> u32 {
    let (want_w, want_h) = jpeg_request(header, scale);
    [1, 2, 4]
        .into_iter()
        .find(|&n| dct_scaled(header.width, n) >= want_w || dct_scaled(header.height, n) >= want_h)
        .unwrap_or(8)
}

/// A side decoded at n/8 scale.
fn dct_scaled(len: u32, n: u32) -> u32 {
    (len * n - 1) / 8 + 1
}

/// The size asked of jpeg-decoder's `scale`.
fn jpeg_request(header: &Header, scale: f64) -> (u32, u32) {
    let s = scale.clamp(0.0, 1.0);
    let want = |v: u32| ((v as f64 * s).ceil() as u32).clamp(1, u16::MAX as u32);
    (want(header.width), want(header.height))
}

fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    scale: f64,
    limits: &Limits,
    deadline: &Deadline,
    colour: Option<&ToSrgb>,
) -> Result<DynamicImage, Error> {
    // Our own decoder: at reduced scales it keeps only the coefficients
    // they need. The frames it does not take (sequential at full scale,
    // CMYK, 12-bit, arithmetic, lossless) go to jpeg-decoder.
    let stop = || deadline.passed();
    let jpeg_limits = jpeg::Limits {
        max_pixels: limits.max_src_pixels,
        ..jpeg::Limits::default()
    };
    let ours = jpeg::decode(bytes, jpeg_eighths(header, scale), &jpeg_limits, &stop)
        .map_err(stopped_by(deadline))?;
    if let Some(img) = ours {
        return Ok(DynamicImage::ImageRgb8(img));
    }
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.set_max_decoding_buffer_size(decode_budget(limits));
    d.read_info().map_err(jpeg_error)?;
    let (want_w, want_h) = jpeg_request(header, scale);
    d.scale(want_w as u16, want_h as u16).map_err(jpeg_error)?;
    let pixels = d.decode().map_err(jpeg_error)?;
    let info = d
        .info()
        .ok_or_else(|| Error::Decode("no JPEG frame header".into()))?;
    let (w, h) = (info.width as u32, info.height as u32);
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0]])
            .collect(),
        // jpeg-decoder has already undone Adobe's inversion: plain CMYK,
        // through its profile where it has one, else a naive conversion.
        jpeg_decoder::PixelFormat::CMYK32 => match colour.and_then(|c| c.cmyk(&pixels)) {
            Some(rgb) => rgb,
            None => naive_cmyk(&pixels),
        },
    };
    image::RgbImage::from_raw(w, h, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| Error::Decode("JPEG decoded to a short buffer".into()))
}

/// CMYK to RGB with no profile: each ink darkens its complement.
fn naive_cmyk(pixels: &[u8]) -> Vec<u8> {
    pixels
        .chunks_exact(4)
        .flat_map(|p| {
            let k = 255 - p[3] as u32;
            let ch = |c: u8| ((255 - c as u32) * k / 255) as u8;
            [ch(p[0]), ch(p[1]), ch(p[2])]
        })
        .collect()
}

fn reader<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> ImageReader<Cursor<&'a [u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut l = image::Limits::default();
    l.max_alloc = Some(decode_budget(limits) as u64);
    r.limits(l);
    r
}

/// Bytes a decoder may allocate: the largest allowed source as 16-bit RGBA.
fn decode_budget(limits: &Limits) -> usize {
    usize::try_from(limits.max_src_pixels.saturating_mul(8)).unwrap_or(usize::MAX)
}

fn exif_orientation(raw: &[u8]) -> u8 {
    let Ok(exif) = exif::Reader::new().read_raw(raw.to_vec()) else {
        return 1;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .map_or(1, |o| o as u8)
}

/// Applies EXIF orientation (rotate/flip) in place of the stored pixels.
pub fn orient(img: &mut DynamicImage, orientation: u8) {
    if let Some(o) = image::metadata::Orientation::from_exif(orientation) {
        img.apply_orientation(o);
    }
}

fn jpeg_error(e: jpeg_decoder::Error) -> Error {
    match e {
        jpeg_decoder::Error::Unsupported(f) => Error::UnsupportedFormat(format!("JPEG {f:?}")),
        other => Error::Decode(other.to_string()),
    }
}

fn image_error(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(l) => Error::OverLimit(l.to_string()),
        image::ImageError::Unsupported(u) => Error::UnsupportedFormat(u.to_string()),
        other => Error::Decode(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let pixels = vec![128u8; w as usize * h as usize * 3];
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| e.to_string())
            .unwrap();
        out
    }

    /// The memory budget relies on `decoded_size` matching the decoder.
    #[test]
    fn decoded_size_matches_the_jpeg_decoder() {
        let limits = Limits::default();
        for (w, h) in [(1001u16, 701u16), (64, 64), (333, 999)] {
            let bytes = jpeg(w, h);
            let header = probe(&bytes, SourceFormat::Jpeg, &limits).unwrap();
            for scale in [1.0, 0.6, 0.5, 0.3, 0.2, 0.126, 0.05, 0.001] {
                let img = decode(&bytes, &header, scale, &limits, &Deadline::none(), None).unwrap();
                assert_eq!(
                    decoded_size(&header, scale),
                    (img.width(), img.height()),
                    "{w}x{h} at {scale}"
                );
            }
        }
    }
}
