//! Colour management: every output is sRGB.
//!
//! A source's colour space is its embedded ICC profile (JPEG APP2, PNG
//! `iCCP`, WebP `ICCP`), or, for a PNG without one, its `sRGB`, `gAMA` and
//! `cHRM` chunks as libpng reads them. [`ToSrgb::for_source`] builds a
//! conversion with moxcms unless that space is sRGB already: no profile,
//! an `sRGB` chunk, or a profile with sRGB's colorants and curves (read
//! from its tags), or one that maps every probe colour to itself within
//! one level. Those sources pay nothing per pixel.
//!
//! RGB is converted after the resample, on output pixels, before effects,
//! flattening and encoding: a thumbnail has a few times fewer pixels than
//! even a shrunk-on-load decode, and the conversion costs a few percent of
//! a transform there instead of tens. The resample works on the stored
//! values, as sharp's and imgproxy's do by default (neither resamples in
//! linear light either), so converting before or after it differs only
//! where it mixes unlike colours, by a level or two. CMYK becomes sRGB in
//! the decoder, as it becomes RGB ([`ToSrgb::cmyk`]).
//!
//! A profile that does not parse, or that does not fit the pixels (an RGB
//! profile on a grey JPEG), is ignored, as libvips does: the pixels are
//! used as they are.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use moxcms::{
    Chromaticity, ColorPrimaries, ColorProfile, DataColorSpace, Layout, ParsingOptions,
    Transform8BitExecutor, TransformOptions, XyY,
};

use edgethumb_codecs::{DecodeError, Rows};

use super::preflight::MAX_ICC_BYTES;
use super::sniff::SourceFormat;

/// Converts resampled pixels (8-bit RGB or RGBA), or a decoder's CMYK,
/// to sRGB.
pub struct ToSrgb {
    kind: Arc<Kind>,
    /// Bytes of the profile it was built from (for the memory estimate).
    profile_bytes: usize,
}

impl std::fmt::Debug for ToSrgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match *self.kind {
            Kind::Grey(_) => "grey",
            Kind::Rgb { .. } => "rgb",
            Kind::Cmyk(_) => "cmyk",
        };
        write!(f, "ToSrgb({kind}, {} profile bytes)", self.profile_bytes)
    }
}

enum Kind {
    /// A grey profile: one table from the stored level to sRGB. Grey
    /// sources reach us with R = G = B.
    Grey(Box<[[u8; 3]; 256]>),
    /// The RGBA transform is made on first use: most sources have no alpha.
    Rgb {
        profile: Box<ColorProfile>,
        rgb: Arc<Transform8BitExecutor>,
        rgba: OnceLock<Option<Arc<Transform8BitExecutor>>>,
    },
    /// Applied by the decoder to its CMYK samples ([`ToSrgb::cmyk`]); the
    /// RGB it makes is sRGB already.
    Cmyk(Arc<Transform8BitExecutor>),
}

impl Kind {
    /// Whether it is a few KiB, so worth keeping in [`cache`]: not a LUT
    /// profile's grids, which a long-lived isolate should not collect.
    fn small(&self) -> bool {
        match self {
            Kind::Grey(_) => true,
            Kind::Rgb { profile, .. } => [
                &profile.lut_a_to_b_perceptual,
                &profile.lut_a_to_b_colorimetric,
                &profile.lut_a_to_b_saturation,
                &profile.lut_b_to_a_perceptual,
                &profile.lut_b_to_a_colorimetric,
                &profile.lut_b_to_a_saturation,
            ]
            .iter()
            .all(|l| l.is_none()),
            Kind::Cmyk(_) => false,
        }
    }
}

/// The model, then the profile's bytes (or a PNG's gamma and chromaticities).
fn cache_key(model: Model, bytes: &[u8]) -> Vec<u8> {
    let mut key = vec![model as u8];
    key.extend_from_slice(bytes);
    key
}

/// The last few conversions made, by profile: a site's photos mostly carry
/// one or two profiles (a camera's, a phone's Display P3), and making a
/// transform costs more than converting a thumbnail's pixels. sRGB
/// verdicts are kept too, so an sRGB profile is parsed once. Only small
/// conversions are kept ([`Kind::small`]): at most 8 keys of 64 KiB and
/// their tables stay in a long-lived isolate.
mod cache {
    use std::sync::{Arc, Mutex};

    use super::Kind;

    /// Conversions kept; each is a few KiB of tables (more for a LUT
    /// profile) besides its key.
    const ENTRIES: usize = 8;
    /// Longer profiles are not kept.
    const MAX_KEY: usize = 64 << 10;

    type Entry = (Vec<u8>, Option<Arc<Kind>>);
    static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    /// `Some(made)` if this key was seen (`made` is `None` for sRGB).
    pub(super) fn get(key: &[u8]) -> Option<Option<Arc<Kind>>> {
        let mut cache = CACHE.lock().ok()?;
        let at = cache.iter().position(|(k, _)| k == key)?;
        let hit = cache.remove(at);
        let made = hit.1.clone();
        cache.insert(0, hit);
        Some(made)
    }

    pub(super) fn put(key: Vec<u8>, made: Option<Arc<Kind>>) {
        if key.len() > MAX_KEY {
            return;
        }
        if let Ok(mut cache) = CACHE.lock() {
            cache.truncate(ENTRIES - 1);
            cache.insert(0, (key, made));
        }
    }
}

/// How the source stores its pixels, which decides what profile fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Rgb,
    Grey,
    Cmyk,
}

/// What the source says about its colour space.
enum Space {
    Srgb,
    Icc(Vec<u8>),
    /// A PNG's `gAMA` (file gamma) and `cHRM` (white, red, green, blue xy),
    /// without `iCCP` or `sRGB`.
    Png {
        gamma: Option<f32>,
        chrm: Option<[(f32, f32); 4]>,
    },
}

/// Pixels per call into moxcms when converting in place.
const CHUNK: usize = 1024;

impl ToSrgb {
    /// The conversion `bytes` needs, or `None` when its pixels are sRGB
    /// already (or it says nothing we can use).
    pub fn for_source(bytes: &[u8], format: SourceFormat) -> Option<ToSrgb> {
        let (space, model) = read_space(bytes, format)?;
        let (key, profile_bytes) = match &space {
            Space::Srgb => return None,
            Space::Icc(icc) => (cache_key(model, icc), icc.len()),
            Space::Png { gamma, chrm } => {
                let mut k = gamma.unwrap_or(0.0).to_le_bytes().to_vec();
                for (x, y) in chrm.iter().flatten() {
                    k.extend_from_slice(&x.to_le_bytes());
                    k.extend_from_slice(&y.to_le_bytes());
                }
                (cache_key(model, &k), 0)
            }
        };
        let kind = match cache::get(&key) {
            Some(known) => known,
            None => {
                let made = build(space, model).map(Arc::new);
                if made.as_deref().is_none_or(Kind::small) {
                    cache::put(key, made.clone());
                }
                made
            }
        }?;
        Some(ToSrgb {
            kind,
            profile_bytes,
        })
    }

    /// The profile an RGB source carries, to keep on the output as it is
    /// (`strip_color_profile:0`), if it has one that parses as an RGB
    /// profile. Grey and CMYK sources are converted whatever the option
    /// says: their profiles cannot describe an RGB output.
    pub fn rgb_profile(bytes: &[u8], format: SourceFormat) -> Option<Vec<u8>> {
        let (Space::Icc(icc), Model::Rgb) = read_space(bytes, format)? else {
            return None;
        };
        let profile = ColorProfile::new_from_slice_with_options(&icc, parsing_options()).ok()?;
        (profile.color_space == DataColorSpace::Rgb).then_some(icc)
    }

    /// Bytes the conversion holds while the image decodes: moxcms' tables
    /// (a 3- or 4-D grid for LUT profiles, well under a MiB), its parse of
    /// the profile, and a row of scratch.
    pub fn memory(&self) -> u64 {
        (1 << 20) + 8 * self.profile_bytes as u64
    }

    /// Converts 8-bit RGB (`channels` 3) or RGBA (4) pixels in place.
    /// Alpha is kept.
    pub fn convert(&self, pixels: &mut [u8], channels: usize) {
        match &*self.kind {
            Kind::Grey(table) => {
                for p in pixels.chunks_exact_mut(channels) {
                    let t = table[p[0] as usize];
                    p[..3].copy_from_slice(&t);
                }
            }
            Kind::Rgb { profile, rgb, rgba } => {
                let exec = if channels == 4 {
                    let made = rgba.get_or_init(|| {
                        let srgb = ColorProfile::new_srgb();
                        profile
                            .create_transform_8bit(
                                Layout::Rgba,
                                &srgb,
                                Layout::Rgba,
                                transform_options(),
                            )
                            .ok()
                    });
                    match made {
                        Some(exec) => exec,
                        None => return,
                    }
                } else {
                    rgb
                };
                let mut scratch = [0u8; CHUNK * 4];
                for chunk in pixels.chunks_mut(CHUNK * channels) {
                    let out = &mut scratch[..chunk.len()];
                    // Same layout in and out, so the lengths always agree.
                    if exec.transform(chunk, out).is_ok() {
                        chunk.copy_from_slice(out);
                    }
                }
            }
            Kind::Cmyk(_) => {}
        }
    }

    /// Converts a decoded or resampled image (8-bit RGB or RGBA) in place.
    pub fn convert_image(&self, img: &mut image::DynamicImage) {
        match img {
            image::DynamicImage::ImageRgb8(i) => self.convert(i, 3),
            image::DynamicImage::ImageRgba8(i) => self.convert(i, 4),
            _ => {}
        }
    }

    /// CMYK samples (0 = no ink) to sRGB, when the profile is a CMYK one.
    pub fn cmyk(&self, cmyk: &[u8]) -> Option<Vec<u8>> {
        let Kind::Cmyk(exec) = &*self.kind else {
            return None;
        };
        let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
        exec.transform(&cmyk[..rgb.len() / 3 * 4], &mut rgb).ok()?;
        Some(rgb)
    }
}

/// The conversion for a colour space, or `None` when it is sRGB (or
/// unusable).
fn build(space: Space, model: Model) -> Option<Kind> {
    let profile = match space {
        Space::Srgb => return None,
        Space::Icc(icc) => {
            ColorProfile::new_from_slice_with_options(&icc, parsing_options()).ok()?
        }
        Space::Png { gamma, chrm } => png_profile(gamma, chrm, model)?,
    };
    let srgb = ColorProfile::new_srgb();
    let options = transform_options();
    let kind = match (model, profile.color_space) {
        (Model::Rgb, DataColorSpace::Rgb) => {
            if is_srgb(&profile) {
                return None;
            }
            let rgb = profile
                .create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, options)
                .ok()?;
            if maps_to_itself(&*rgb)? {
                return None;
            }
            Kind::Rgb {
                profile: Box::new(profile),
                rgb,
                rgba: OnceLock::new(),
            }
        }
        (Model::Grey, DataColorSpace::Gray) => {
            let grey = profile
                .create_transform_8bit(Layout::Gray, &srgb, Layout::Rgb, options)
                .ok()?;
            let levels: Vec<u8> = (0..=255).collect();
            let mut out = vec![0u8; 256 * 3];
            grey.transform(&levels, &mut out).ok()?;
            let mut table = Box::new([[0u8; 3]; 256]);
            for (t, o) in table.iter_mut().zip(out.chunks_exact(3)) {
                *t = [o[0], o[1], o[2]];
            }
            let same = table
                .iter()
                .enumerate()
                .all(|(v, t)| t.iter().all(|&c| c.abs_diff(v as u8) <= 1));
            if same {
                return None;
            }
            Kind::Grey(table)
        }
        (Model::Cmyk, DataColorSpace::Cmyk) => Kind::Cmyk(
            profile
                .create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgb, options)
                .ok()?,
        ),
        _ => return None,
    };
    Some(kind)
}

/// Profiles up to [`MAX_ICC_BYTES`]; a CLUT comes from the profile's
/// bytes, so the same bound keeps it in proportion to them.
fn parsing_options() -> ParsingOptions {
    ParsingOptions {
        max_profile_size: MAX_ICC_BYTES + 1,
        max_allowed_clut_size: MAX_ICC_BYTES,
        ..ParsingOptions::default()
    }
}

/// Fixed point (Q2.13 through the matrix): three times faster than
/// floats here, and exact enough for 8-bit output.
fn transform_options() -> TransformOptions {
    TransformOptions {
        prefer_fixed_point: true,
        ..TransformOptions::default()
    }
}

/// Resampled rows on their way to `inner` (the streamed JPEG encoder),
/// converted to sRGB when there is a conversion, passed on as they are
/// otherwise.
pub struct SrgbRows<'a, S: Rows> {
    inner: S,
    to: Option<&'a ToSrgb>,
    channels: usize,
    row: Vec<u8>,
}

impl<'a, S: Rows> SrgbRows<'a, S> {
    pub fn new(inner: S, to: Option<&'a ToSrgb>) -> Self {
        SrgbRows {
            inner,
            to,
            channels: 3,
            row: Vec::new(),
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Rows> Rows for SrgbRows<'_, S> {
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError> {
        self.channels = channels;
        if self.to.is_some() {
            self.row = Vec::with_capacity(width as usize * channels);
        }
        self.inner.start(width, height, channels)
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        let Some(to) = self.to else {
            return self.inner.row(row);
        };
        self.row.clear();
        self.row.extend_from_slice(row);
        to.convert(&mut self.row, self.channels);
        self.inner.row(&self.row)
    }
}

/// Whether a matrix-shaper profile has sRGB's colorants and curves, read
/// from its tags in microseconds (making a transform takes half a
/// millisecond). A profile with LUTs is not judged here.
fn is_srgb(profile: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let luts = [
        &profile.lut_a_to_b_perceptual,
        &profile.lut_a_to_b_colorimetric,
        &profile.lut_a_to_b_saturation,
    ];
    if luts.iter().any(|l| l.is_some()) {
        return false;
    }
    // Colorants are stored as s15.16: sRGB's, as profiles round them.
    let near = |a: &moxcms::Xyzd, b: &moxcms::Xyzd| {
        (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003 && (a.z - b.z).abs() < 0.003
    };
    let colorants = near(&profile.red_colorant, &srgb.red_colorant)
        && near(&profile.green_colorant, &srgb.green_colorant)
        && near(&profile.blue_colorant, &srgb.blue_colorant);
    let curves = [&profile.red_trc, &profile.green_trc, &profile.blue_trc];
    colorants
        && curves.iter().all(|c| {
            let Some(eval) = c.as_ref().and_then(|c| c.make_linear_evaluator().ok()) else {
                return false;
            };
            // Within half a level of sRGB's curve, in sRGB levels.
            (0..=255).all(|v| {
                let linear = eval.evaluate_value(v as f32 / 255.0);
                (srgb_encode(linear) * 255.0 - v as f32).abs() <= 0.5
            })
        })
}

/// sRGB's encoding of a linear value (IEC 61966-2-1).
fn srgb_encode(linear: f32) -> f32 {
    let l = linear.clamp(0.0, 1.0);
    if l <= 0.003_130_8 {
        l * 12.92
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

/// Whether `rgb` leaves the probe colours (every grey, and ramps of the
/// primaries and secondaries) within one level: an sRGB profile, however
/// it is written.
fn maps_to_itself(rgb: &Transform8BitExecutor) -> Option<bool> {
    let mut probe: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    for v in (15..=255u8).step_by(16) {
        for [r, g, b] in [
            [v, 0, 0],
            [0, v, 0],
            [0, 0, v],
            [v, v, 0],
            [0, v, v],
            [v, 0, v],
        ] {
            probe.extend_from_slice(&[r, g, b]);
        }
    }
    let mut out = vec![0u8; probe.len()];
    rgb.transform(&probe, &mut out).ok()?;
    Some(probe.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1))
}

/// The source's colour space and how it stores pixels, from its header.
fn read_space(bytes: &[u8], format: SourceFormat) -> Option<(Space, Model)> {
    let icc = |icc: Option<Vec<u8>>| match icc {
        Some(p) if p.len() <= MAX_ICC_BYTES => Space::Icc(p),
        _ => Space::Srgb,
    };
    match format {
        SourceFormat::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            d.read_info().ok()?;
            let model = match d.info()?.pixel_format {
                jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::L16 => Model::Grey,
                jpeg_decoder::PixelFormat::RGB24 => Model::Rgb,
                jpeg_decoder::PixelFormat::CMYK32 => Model::Cmyk,
            };
            Some((icc(d.icc_profile()), model))
        }
        SourceFormat::Png => {
            let mut d = png::Decoder::new(Cursor::new(bytes));
            d.set_ignore_text_chunk(true);
            let reader = d.read_info().ok()?;
            let info = reader.info();
            let model = match info.color_type {
                png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => Model::Grey,
                _ => Model::Rgb,
            };
            let space = if let Some(p) = &info.icc_profile {
                icc(Some(p.to_vec()))
            } else if info.srgb.is_some() {
                Space::Srgb
            } else {
                let xy =
                    |(x, y): (png::ScaledFloat, png::ScaledFloat)| (x.into_value(), y.into_value());
                Space::Png {
                    gamma: info.gama_chunk.map(|g| g.into_value()),
                    chrm: info
                        .chrm_chunk
                        .map(|c| [xy(c.white), xy(c.red), xy(c.green), xy(c.blue)]),
                }
            };
            Some((space, model))
        }
        SourceFormat::Webp => {
            use image::ImageDecoder;
            let mut d = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).ok()?;
            Some((icc(d.icc_profile().ok().flatten()), Model::Rgb))
        }
        SourceFormat::Gif | SourceFormat::Bmp => None,
    }
}

/// A profile from a PNG's `gAMA` and `cHRM`, or `None` where libpng would
/// leave the pixels alone: a gamma within 5% of the 2.2 an sRGB display
/// has (libpng's `PNG_GAMMA_THRESHOLD`), and primaries that are sRGB's
/// or absent or not a valid gamut.
fn png_profile(
    gamma: Option<f32>,
    chrm: Option<[(f32, f32); 4]>,
    model: Model,
) -> Option<ColorProfile> {
    let gamma = gamma.filter(|g| *g > 0.0 && (g * 2.2 - 1.0).abs() > 0.05);
    let chrm = chrm.filter(|c| valid_chromaticities(c) && !near_srgb(c));
    if gamma.is_none() && chrm.is_none() {
        return None;
    }
    let mut profile = match model {
        Model::Grey => ColorProfile::new_gray_with_gamma(2.2),
        _ => ColorProfile::new_srgb(),
    };
    // Its CICP tags would stand for the curves set below.
    profile.cicp = None;
    if let Some([w, r, g, b]) = chrm {
        let c = |(x, y): (f32, f32)| Chromaticity { x, y };
        profile.update_rgb_colorimetry(
            XyY::new(w.0 as f64, w.1 as f64, 1.0),
            ColorPrimaries {
                red: c(r),
                green: c(g),
                blue: c(b),
            },
        );
    }
    // Only gamma: sRGB's curve is as near as libpng would correct to.
    if let Some(file_gamma) = gamma {
        let curve = moxcms::curve_from_gamma(1.0 / file_gamma);
        profile.red_trc = Some(curve.clone());
        profile.green_trc = Some(curve.clone());
        profile.blue_trc = Some(curve.clone());
        profile.gray_trc = Some(curve);
    }
    Some(profile)
}

/// xy inside the unit square with y > 0, as libpng checks `cHRM`.
fn valid_chromaticities(c: &[(f32, f32); 4]) -> bool {
    c.iter().all(|&(x, y)| {
        x.is_finite() && y.is_finite() && (0.0..=1.0).contains(&x) && y > 0.0 && y <= 1.0
    })
}

/// sRGB's white and primaries, within the 5-digit rounding PNG stores.
fn near_srgb(c: &[(f32, f32); 4]) -> bool {
    const SRGB: [(f32, f32); 4] = [(0.3127, 0.329), (0.64, 0.33), (0.3, 0.6), (0.15, 0.06)];
    c.iter()
        .zip(SRGB)
        .all(|(a, b)| (a.0 - b.0).abs() < 0.002 && (a.1 - b.1).abs() < 0.002)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icc_jpeg(profile: &ColorProfile, rgb: [u8; 3]) -> Vec<u8> {
        let icc = profile.encode().unwrap();
        let pixels: Vec<u8> = (0..64).flat_map(|_| rgb).collect();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
        enc.add_icc_profile(&icc).unwrap();
        enc.encode(&pixels, 8, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn srgb_profiles_and_untagged_sources_cost_nothing() {
        let srgb = icc_jpeg(&ColorProfile::new_srgb(), [200, 30, 30]);
        assert!(ToSrgb::for_source(&srgb, SourceFormat::Jpeg).is_none());
        let mut untagged = Vec::new();
        jpeg_encoder::Encoder::new(&mut untagged, 90)
            .encode(&[1; 192], 8, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(ToSrgb::for_source(&untagged, SourceFormat::Jpeg).is_none());
    }

    #[test]
    fn a_wide_gamut_profile_converts_saturated_colours() {
        let p3 = icc_jpeg(&ColorProfile::new_display_p3(), [255, 0, 0]);
        let to = ToSrgb::for_source(&p3, SourceFormat::Jpeg).expect("P3 converts");
        let mut px = [255, 0, 0, 128, 128, 128];
        to.convert(&mut px, 3);
        // P3 red is outside sRGB: clipped red, and grey stays grey.
        assert_eq!(px[0], 255);
        assert!(px[1] < 10 && px[2] < 10, "{px:?}");
        assert!(px[3..].iter().all(|&c| c.abs_diff(128) <= 1), "{px:?}");
        let mut rgba = [0, 255, 0, 77];
        to.convert(&mut rgba, 4);
        assert_eq!(rgba[3], 77, "alpha kept");
        assert!(rgba[0] < 20 && rgba[1] == 255, "{rgba:?}");
    }

    #[test]
    fn a_profile_that_does_not_parse_is_ignored() {
        let mut bad = icc_jpeg(&ColorProfile::new_adobe_rgb(), [1, 2, 3]);
        let at = bad.windows(4).position(|w| w == b"acsp").unwrap();
        bad[at] = b'x';
        assert!(ToSrgb::for_source(&bad, SourceFormat::Jpeg).is_none());
    }

    #[test]
    fn a_grey_profile_converts_as_littlecms_does() {
        let d50 = lcms2::CIExyY {
            x: 0.3457,
            y: 0.3585,
            Y: 1.0,
        };
        let grey = lcms2::Profile::new_gray(&d50, &lcms2::ToneCurve::new(1.8)).unwrap();
        let icc = grey.icc().unwrap();
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.add_icc_profile(&icc).unwrap();
        enc.encode(&[100; 64], 8, 8, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let to = ToSrgb::for_source(&jpeg, SourceFormat::Jpeg).expect("gamma 1.8 converts");
        let lcms: lcms2::Transform<u8, [u8; 3]> = lcms2::Transform::new(
            &grey,
            lcms2::PixelFormat::GRAY_8,
            &lcms2::Profile::new_srgb(),
            lcms2::PixelFormat::RGB_8,
            lcms2::Intent::Perceptual,
        )
        .unwrap();
        for v in (0..=255u8).step_by(5) {
            let mut px = [v, v, v];
            to.convert(&mut px, 3);
            let mut want = [[0u8; 3]];
            lcms.transform_pixels(&[v], &mut want);
            let off = px.iter().zip(want[0]).map(|(a, b)| a.abs_diff(b)).max();
            assert!(
                off <= Some(2),
                "{v}: {px:?} against LittleCMS {:?}",
                want[0]
            );
        }
    }

    #[test]
    fn png_gamma_as_libpng_reads_it() {
        // 1/2.2 is sRGB to libpng; 1/1.8 (old Macs) is not.
        assert!(png_profile(Some(0.45455), None, Model::Rgb).is_none());
        assert!(png_profile(Some(1.0 / 1.8), None, Model::Rgb).is_some());
        let srgb = [(0.3127, 0.329), (0.64, 0.33), (0.3, 0.6), (0.15, 0.06)];
        assert!(png_profile(None, Some(srgb), Model::Rgb).is_none());
        let bad = [(0.3127, 0.0), (0.64, 0.33), (0.3, 0.6), (0.15, 0.06)];
        assert!(png_profile(None, Some(bad), Model::Rgb).is_none());
    }
}
