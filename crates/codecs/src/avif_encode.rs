//! AVIF out: libaom (C, built from libaom-sys's vendored source as plain C
//! on every target, no threads) in its all-intra mode, muxed by
//! avif-serialize. Why libaom and these settings, with figures: README,
//! "AVIF".
//!
//! Colour is 8-bit BT.601 full-range YCbCr, sRGB primaries and transfer;
//! alpha is a second, monochrome AV1 image; grey is monochrome.
//!
//! libaom reports internal errors (chiefly a failed allocation) by
//! `longjmp`. The wasm builds have no exception handling to jump with, so
//! there a failed allocation traps (scripts/wasm-include/setjmp.h): the
//! caller checks its memory estimate before it encodes.

use std::ffi::{c_int, c_uint, c_ulong, CStr};
use std::mem::MaybeUninit;

use libaom_sys as aom;

/// What went wrong, with libaom's own detail when it gave one.
#[derive(Debug, thiserror::Error)]
pub enum AvifEncodeError {
    #[error("libaom {step}: {detail}")]
    Libaom { step: &'static str, detail: String },
    #[error("{0}x{1} is not an image AV1 can hold")]
    Size(u32, u32),
    #[error("{got} bytes of pixels for {width}x{height} at {channels} a pixel")]
    Length {
        got: usize,
        width: u32,
        height: u32,
        channels: usize,
    },
}

/// The pixels to encode, interleaved 8-bit samples, rows without padding.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    Grey(&'a [u8]),
    GreyAlpha(&'a [u8]),
    Rgb(&'a [u8]),
    Rgba(&'a [u8]),
}

impl Pixels<'_> {
    fn channels(self) -> usize {
        match self {
            Pixels::Grey(_) => 1,
            Pixels::GreyAlpha(_) => 2,
            Pixels::Rgb(_) => 3,
            Pixels::Rgba(_) => 4,
        }
    }

    fn bytes(&self) -> &[u8] {
        match *self {
            Pixels::Grey(b) | Pixels::GreyAlpha(b) | Pixels::Rgb(b) | Pixels::Rgba(b) => b,
        }
    }
}

/// How to encode.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// 1–100, as for JPEG and WebP: higher is better and larger.
    pub quality: u8,
    /// libaom's `cpu-used`, 0–9 in all-intra mode: higher is faster.
    pub speed: u8,
    /// 4:2:0 chroma (as WebP and JPEG thumbnails have) rather than 4:4:4.
    pub subsample: bool,
}

/// libaom's quantiser level (`cq-level`, 0 best – 63 worst) for a quality:
/// libheif's mapping, so a quality means what it means to libvips and
/// imgproxy.
pub fn cq_level(quality: u8) -> u32 {
    let q = u32::from(quality.clamp(1, 100));
    ((100 - q) * 63 + 50) / 100
}

/// Encodes `pixels` (`width` × `height`) as an AVIF file.
pub fn encode(
    pixels: Pixels<'_>,
    width: u32,
    height: u32,
    settings: &Settings,
) -> Result<Vec<u8>, AvifEncodeError> {
    // AV1 frame dimensions are 16 bits each.
    if width == 0 || height == 0 || width > 65536 || height > 65536 {
        return Err(AvifEncodeError::Size(width, height));
    }
    let channels = pixels.channels();
    let expected = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(channels));
    if expected != Some(pixels.bytes().len()) {
        return Err(AvifEncodeError::Length {
            got: pixels.bytes().len(),
            width,
            height,
            channels,
        });
    }
    let (w, h) = (width as usize, height as usize);
    let bytes = pixels.bytes();
    let grey = matches!(pixels, Pixels::Grey(_) | Pixels::GreyAlpha(_));
    let colour = if grey {
        Planes::monochrome(bytes, channels, w, h)
    } else {
        Planes::ycbcr(bytes, channels, w, h, settings.subsample)
    };
    let cq = cq_level(settings.quality);
    let colour_obus = encode_planes(&colour, width, height, cq, settings.speed)?;
    let alpha_obus = match pixels {
        Pixels::GreyAlpha(_) | Pixels::Rgba(_) => {
            let alpha = Planes::monochrome(&bytes[channels - 1..], channels, w, h);
            Some(encode_planes(&alpha, width, height, cq, settings.speed)?)
        }
        _ => None,
    };
    let mut mux = avif_serialize::Aviffy::new();
    mux.set_full_color_range(true)
        .set_color_primaries(avif_serialize::constants::ColorPrimaries::Bt709)
        .set_transfer_characteristics(avif_serialize::constants::TransferCharacteristics::Srgb)
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_monochrome(colour.monochrome)
        .set_chroma_subsampling((colour.subsampled, colour.subsampled))
        .set_seq_profile(colour.profile());
    Ok(mux.to_vec(&colour_obus, alpha_obus.as_deref(), width, height, 8))
}

/// The three planes libaom reads, each tightly packed.
struct Planes {
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// Chroma width and height.
    cw: usize,
    subsampled: bool,
    monochrome: bool,
}

impl Planes {
    /// The AV1 profile that holds them: Main (0) for 4:2:0 and
    /// monochrome, High (1) for 4:4:4.
    fn profile(&self) -> u8 {
        if self.subsampled {
            0
        } else {
            1
        }
    }

    /// Luma from sample `0` of every `step` bytes, and flat chroma (libaom
    /// reads chroma planes even for a monochrome sequence).
    fn monochrome(samples: &[u8], step: usize, w: usize, h: usize) -> Planes {
        let y = samples.iter().step_by(step).copied().take(w * h).collect();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Planes {
            y,
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
            cw,
            subsampled: true,
            monochrome: true,
        }
    }

    /// BT.601 full-range YCbCr, the matrix JPEG and WebP use, in 8.8
    /// fixed point. With `subsample`, chroma is of each 2×2 block's mean
    /// colour (edge blocks use the pixels they have).
    fn ycbcr(rgb: &[u8], step: usize, w: usize, h: usize, subsample: bool) -> Planes {
        let mut y = Vec::with_capacity(w * h);
        for px in rgb.chunks_exact(step) {
            let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
            y.push(((77 * r + 150 * g + 29 * b + 128) >> 8) as u8);
        }
        let chroma = |r: i32, g: i32, b: i32, n: i32| {
            // Sums of n pixels; rounding to nearest.
            let cb = (-43 * r - 85 * g + 128 * b) / n;
            let cr = (128 * r - 107 * g - 21 * b) / n;
            (
                ((cb + 128 * 256 + 128) >> 8).clamp(0, 255) as u8,
                ((cr + 128 * 256 + 128) >> 8).clamp(0, 255) as u8,
            )
        };
        if !subsample {
            let (mut u, mut v) = (Vec::with_capacity(w * h), Vec::with_capacity(w * h));
            for px in rgb.chunks_exact(step) {
                let (cb, cr) = chroma(i32::from(px[0]), i32::from(px[1]), i32::from(px[2]), 1);
                u.push(cb);
                v.push(cr);
            }
            return Planes {
                y,
                u,
                v,
                cw: w,
                subsampled: false,
                monochrome: false,
            };
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
        let row = w * step;
        for cy in 0..ch {
            let rows = [2 * cy, (2 * cy + 1).min(h - 1)];
            let n_rows = if rows[0] == rows[1] { 1 } else { 2 };
            for cx in 0..cw {
                let cols = [2 * cx, (2 * cx + 1).min(w - 1)];
                let n_cols = if cols[0] == cols[1] { 1 } else { 2 };
                let (mut r, mut g, mut b) = (0, 0, 0);
                for &py in &rows[..n_rows] {
                    for &px in &cols[..n_cols] {
                        let at = py * row + px * step;
                        r += i32::from(rgb[at]);
                        g += i32::from(rgb[at + 1]);
                        b += i32::from(rgb[at + 2]);
                    }
                }
                let (cb, cr) = chroma(r, g, b, (n_rows * n_cols) as i32);
                u.push(cb);
                v.push(cr);
            }
        }
        Planes {
            y,
            u,
            v,
            cw,
            subsampled: true,
            monochrome: false,
        }
    }
}

/// An initialised libaom encoder, destroyed on drop.
struct Encoder(aom::aom_codec_ctx_t);

impl Encoder {
    fn check(
        &mut self,
        step: &'static str,
        err: aom::aom_codec_err_t,
    ) -> Result<(), AvifEncodeError> {
        if err == aom::AOM_CODEC_OK {
            return Ok(());
        }
        // SAFETY: libaom's error strings are static NUL-terminated text;
        // `err_detail` is null or points at text the context owns.
        let detail = unsafe {
            let detail = self.0.err_detail;
            let text = if detail.is_null() {
                aom::aom_codec_err_to_string(err)
            } else {
                detail
            };
            if text.is_null() {
                String::new()
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        };
        Err(AvifEncodeError::Libaom { step, detail })
    }

    /// `aom_codec_control` with an integer argument.
    fn control(&mut self, id: u32, value: c_int) -> Result<(), AvifEncodeError> {
        // SAFETY: the context is initialised; every control we set takes
        // one int (or unsigned int, the same in C's variadic promotion).
        let err = unsafe { aom::aom_codec_control(&mut self.0, id as c_int, value) };
        self.check("control", err)
    }
}

impl Encoder {
    /// Appends the frame packets the last call made (they live only until
    /// the next libaom call).
    fn take_frames(&mut self, out: &mut Vec<u8>) {
        let mut iter: aom::aom_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: the context is live and `iter` started null, as the
            // iterator protocol requires.
            let pkt = unsafe { aom::aom_codec_get_cx_data(&mut self.0, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: a non-null packet is valid until the next libaom
            // call; a frame packet's `buf` holds `sz` bytes.
            unsafe {
                if (*pkt).kind == aom::AOM_CODEC_CX_FRAME_PKT {
                    let frame = (*pkt).data.frame;
                    if !frame.buf.is_null() {
                        out.extend_from_slice(std::slice::from_raw_parts(
                            frame.buf.cast::<u8>(),
                            frame.sz,
                        ));
                    }
                }
            }
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised (an `Encoder` exists only
        // after `aom_codec_enc_init_ver` succeeded) and is destroyed once.
        unsafe {
            aom::aom_codec_destroy(&mut self.0);
        }
    }
}

/// One still AV1 frame of `planes`, as the OBUs an AVIF item holds.
fn encode_planes(
    planes: &Planes,
    width: u32,
    height: u32,
    cq: u32,
    speed: u8,
) -> Result<Vec<u8>, AvifEncodeError> {
    let usage = aom::AOM_USAGE_ALL_INTRA;
    // SAFETY: a plain function returning a static interface.
    let iface = unsafe { aom::aom_codec_av1_cx() };
    let mut cfg = MaybeUninit::<aom::aom_codec_enc_cfg>::zeroed();
    // SAFETY: `cfg` is writable storage for a config, which this fills.
    let err = unsafe { aom::aom_codec_enc_config_default(iface, cfg.as_mut_ptr(), usage) };
    if err != aom::AOM_CODEC_OK {
        return Err(AvifEncodeError::Libaom {
            step: "config",
            detail: format!("error {err}"),
        });
    }
    // SAFETY: filled by `aom_codec_enc_config_default`, which succeeded.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.g_w = width;
    cfg.g_h = height;
    cfg.g_threads = 1;
    cfg.g_limit = 1;
    cfg.g_lag_in_frames = 0;
    cfg.g_bit_depth = aom::AOM_BITS_8;
    cfg.g_input_bit_depth = 8;
    cfg.g_profile = c_uint::from(planes.profile());
    cfg.monochrome = c_uint::from(planes.monochrome);
    cfg.rc_end_usage = aom::AOM_Q;
    cfg.kf_max_dist = 0;

    let mut ctx = MaybeUninit::<aom::aom_codec_ctx_t>::zeroed();
    // SAFETY: `ctx` is storage for a context, `cfg` a valid config.
    let err = unsafe {
        aom::aom_codec_enc_init_ver(
            ctx.as_mut_ptr(),
            iface,
            &cfg,
            0,
            aom::AOM_ENCODER_ABI_VERSION as c_int,
        )
    };
    if err != aom::AOM_CODEC_OK {
        return Err(AvifEncodeError::Libaom {
            step: "init",
            detail: format!("error {err}"),
        });
    }
    // SAFETY: initialised by the call that just succeeded.
    let mut enc = Encoder(unsafe { ctx.assume_init() });
    enc.control(aom::AOME_SET_CPUUSED, c_int::from(speed.min(9)))?;
    enc.control(aom::AOME_SET_CQ_LEVEL, cq as c_int)?;
    enc.control(aom::AV1E_SET_COLOR_RANGE, aom::AOM_CR_FULL_RANGE as c_int)?;
    enc.control(
        aom::AV1E_SET_COLOR_PRIMARIES,
        aom::AOM_CICP_CP_BT_709 as c_int,
    )?;
    enc.control(
        aom::AV1E_SET_TRANSFER_CHARACTERISTICS,
        aom::AOM_CICP_TC_SRGB as c_int,
    )?;
    enc.control(
        aom::AV1E_SET_MATRIX_COEFFICIENTS,
        aom::AOM_CICP_MC_BT_601 as c_int,
    )?;

    let fmt = if planes.subsampled {
        aom::AOM_IMG_FMT_I420
    } else {
        aom::AOM_IMG_FMT_I444
    };
    let mut img = MaybeUninit::<aom::aom_image_t>::zeroed();
    // Our planes are separate buffers: wrap describes the image, then the
    // plane pointers and strides are set to them. libaom only reads them.
    // SAFETY: `img` is storage for a descriptor; with non-null data,
    // aom_img_wrap allocates nothing and only computes plane pointers.
    let wrapped = unsafe {
        aom::aom_img_wrap(
            img.as_mut_ptr(),
            fmt,
            width,
            height,
            1,
            planes.y.as_ptr().cast_mut(),
        )
    };
    if wrapped.is_null() {
        return Err(AvifEncodeError::Size(width, height));
    }
    // SAFETY: initialised by aom_img_wrap, which succeeded.
    let mut img = unsafe { img.assume_init() };
    img.planes = [
        planes.y.as_ptr().cast_mut(),
        planes.u.as_ptr().cast_mut(),
        planes.v.as_ptr().cast_mut(),
    ];
    img.stride = [width as c_int, planes.cw as c_int, planes.cw as c_int];
    img.range = aom::AOM_CR_FULL_RANGE;
    img.monochrome = c_int::from(planes.monochrome);
    img.cp = aom::AOM_CICP_CP_BT_709;
    img.tc = aom::AOM_CICP_TC_SRGB;
    img.mc = aom::AOM_CICP_MC_BT_601;

    let mut out = Vec::new();
    // SAFETY: `img` describes the three live plane buffers above, each at
    // least stride × rows long; libaom reads them during this call only.
    let err = unsafe { aom::aom_codec_encode(&mut enc.0, &img, 0, 1 as c_ulong, 0) };
    enc.check("encode", err)?;
    enc.take_frames(&mut out);
    // A null image flushes anything held back.
    // SAFETY: a null image is the documented end of stream.
    let err = unsafe { aom::aom_codec_encode(&mut enc.0, std::ptr::null(), 0, 0, 0) };
    enc.check("flush", err)?;
    enc.take_frames(&mut out);
    if out.is_empty() {
        return Err(AvifEncodeError::Libaom {
            step: "output",
            detail: "no frame came out".into(),
        });
    }
    // An AVIF item holds no temporal delimiter (AV1-ISOBMFF 2.4); libaom
    // starts every temporal unit with one, two bytes long.
    if out.starts_with(&[0x12, 0x00]) {
        out.drain(..2);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(subsample: bool) -> Settings {
        Settings {
            quality: 80,
            speed: 9,
            subsample,
        }
    }

    #[test]
    fn quality_maps_as_libheif_does() {
        assert_eq!(cq_level(100), 0);
        assert_eq!(cq_level(80), 13);
        assert_eq!(cq_level(63), 23);
        assert_eq!(cq_level(1), 62);
        assert_eq!(cq_level(0), 62, "0 is clamped to 1");
    }

    #[test]
    fn refuses_what_it_cannot_encode() {
        let rgb = vec![0u8; 12];
        let err = encode(Pixels::Rgb(&rgb), 2, 3, &settings(true)).unwrap_err();
        assert!(
            matches!(err, AvifEncodeError::Length { got: 12, .. }),
            "{err}"
        );
        for (w, h) in [(0, 4), (4, 0), (65537, 1)] {
            let err = encode(Pixels::Grey(&[]), w, h, &settings(true)).unwrap_err();
            assert!(matches!(err, AvifEncodeError::Size(..)), "{err}");
        }
    }

    #[test]
    fn items_hold_no_temporal_delimiter() {
        let grey = vec![90u8; 16 * 8];
        let planes = Planes::monochrome(&grey, 1, 16, 8);
        let obus = encode_planes(&planes, 16, 8, 20, 9).unwrap();
        // The first OBU is the sequence header (type 1), not a delimiter.
        assert_eq!(obus[0] >> 3 & 0xF, 1, "{:02x?}", &obus[..4]);
    }

    #[test]
    fn chroma_is_each_blocks_mean() {
        // 3×3 RGB: the 2×2 chroma grid averages 4, 2, 2 and 1 pixels.
        let mut rgb = vec![0u8; 27];
        for px in rgb.chunks_exact_mut(3).take(4) {
            px.copy_from_slice(&[255, 0, 0]);
        }
        let p = Planes::ycbcr(&rgb, 3, 3, 3, true);
        assert_eq!((p.y.len(), p.u.len(), p.cw), (9, 4, 2));
        // Pure red: Cr at its top; black: neutral.
        let red = Planes::ycbcr(&[255, 0, 0], 3, 1, 1, true);
        assert_eq!((red.y[0], red.u[0], red.v[0]), (77, 85, 255));
        assert_eq!((p.u[3], p.v[3]), (128, 128));
        let full = Planes::ycbcr(&rgb, 3, 3, 3, false);
        assert_eq!((full.u.len(), full.cw), (9, 3));
    }

    #[cfg(feature = "avif-decode")]
    #[test]
    fn reads_back_in_both_chroma_layouts() {
        for subsample in [true, false] {
            for (w, h) in [(1, 1), (3, 2), (65, 33)] {
                let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 40, 30]).collect();
                let body = encode(Pixels::Rgb(&rgb), w, h, &settings(subsample)).unwrap();
                let back = crate::avif_decode::decode(&body).unwrap();
                assert_eq!(back.dimensions(), (w, h), "{subsample}");
                let px = back.get_pixel(w / 2, h / 2).0;
                for (got, want) in px.iter().zip([200u8, 40, 30, 255]) {
                    assert!(got.abs_diff(want) <= 4, "{w}x{h} {subsample}: {px:?}");
                }
            }
        }
    }
}
