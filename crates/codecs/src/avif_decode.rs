//! An AVIF reader for checking what we serve (feature `avif-decode`): the
//! test tables and `edgethumb bench` decode our AVIF output and sharp's
//! with it. The service does not read AVIF sources. The container is
//! parsed by `avif-parse`; each AV1 image is decoded by rav1d, dav1d's
//! Rust port, without its asm, through dav1d's C API (the only one it
//! has), which is why this lives here with the rest of the `unsafe`.

use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;

use crate::DecodeError;

/// An 8-bit AV1 image's planes, chroma at full size.
struct Planes {
    width: u32,
    height: u32,
    /// Y, then Cb and Cr (empty for monochrome), `width × height` each.
    y: Vec<u8>,
    cb: Vec<u8>,
    cr: Vec<u8>,
    full_range: bool,
    /// BT.709's matrix rather than BT.601's.
    bt709: bool,
}

/// Whether `bytes` start as an AVIF file (an `ftyp` box of brand `avif`).
pub fn is_avif(bytes: &[u8]) -> bool {
    bytes.get(4..12) == Some(&b"ftypavif"[..])
}

/// Decodes an AVIF file to RGBA: its colour image, and its alpha image
/// when it has one (else opaque). 8-bit only.
pub fn decode(avif: &[u8]) -> Result<image::RgbaImage, DecodeError> {
    let parsed = avif_parse::read_avif(&mut &avif[..])
        .map_err(|e| DecodeError::Decode(format!("AVIF container: {e}")))?;
    let colour = decode_av1(&parsed.primary_item)?;
    let alpha = match &parsed.alpha_item {
        Some(a) => Some(decode_av1(a)?),
        None => None,
    };
    if alpha
        .as_ref()
        .is_some_and(|a| (a.width, a.height) != (colour.width, colour.height))
    {
        return Err(DecodeError::Decode(
            "alpha and colour differ in size".into(),
        ));
    }
    let mut out = image::RgbaImage::new(colour.width, colour.height);
    for (i, px) in out.pixels_mut().enumerate() {
        let [r, g, b] = colour.rgb(i);
        let a = alpha.as_ref().map_or(255, |a| a.grey(i));
        px.0 = [r, g, b, a];
    }
    if parsed.premultiplied_alpha {
        for px in out.pixels_mut() {
            let a = px.0[3] as u32;
            for c in &mut px.0[..3] {
                *c = (*c as u32 * 255 + a / 2)
                    .checked_div(a)
                    .map_or(0, |v| v.min(255) as u8);
            }
        }
    }
    Ok(out)
}

impl Planes {
    fn rgb(&self, i: usize) -> [u8; 3] {
        let (y, cb, cr) = (self.y[i] as f32, self.cb.get(i), self.cr.get(i));
        let (Some(&cb), Some(&cr)) = (cb, cr) else {
            let v = self.grey(i);
            return [v; 3];
        };
        let (y, cb, cr) = if self.full_range {
            (y, cb as f32 - 128.0, cr as f32 - 128.0)
        } else {
            (
                (y - 16.0) * 255.0 / 219.0,
                (cb as f32 - 128.0) * 255.0 / 224.0,
                (cr as f32 - 128.0) * 255.0 / 224.0,
            )
        };
        let (kr, kb) = if self.bt709 {
            (0.2126, 0.0722)
        } else {
            (0.299, 0.114)
        };
        let kg = 1.0 - kr - kb;
        let r = y + 2.0 * (1.0 - kr) * cr;
        let b = y + 2.0 * (1.0 - kb) * cb;
        let g = (y - kr * r - kb * b) / kg;
        [r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8)
    }

    fn grey(&self, i: usize) -> u8 {
        let y = self.y[i];
        if self.full_range {
            y
        } else {
            ((y as f32 - 16.0) * 255.0 / 219.0)
                .round()
                .clamp(0.0, 255.0) as u8
        }
    }
}

/// Owns a decoder context and closes it.
struct Context(Option<Dav1dContext>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context came from `dav1d_open` and is closed once.
        unsafe { dav1d::dav1d_close(NonNull::new(&mut self.0)) };
    }
}

/// Owns a decoded picture and unrefs it.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture came from `dav1d_get_picture`, unreffed once.
        unsafe { dav1d::dav1d_picture_unref(NonNull::new(&mut self.0)) };
    }
}

fn failed(what: &str, code: i32) -> DecodeError {
    DecodeError::Decode(format!("AV1 {what}: error {code}"))
}

/// Decodes one AV1 still (an image item's OBUs) to 8-bit planes.
fn decode_av1(obus: &[u8]) -> Result<Planes, DecodeError> {
    let mut settings = std::mem::MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: `dav1d_default_settings` writes every field.
    let mut settings = unsafe {
        dav1d::dav1d_default_settings(NonNull::from(&mut settings).cast());
        settings.assume_init()
    };
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    let mut ctx = Context(None);
    // SAFETY: both pointers are to live locals of the right types.
    let r = unsafe { dav1d::dav1d_open(NonNull::new(&mut ctx.0), NonNull::new(&mut settings)) };
    if r.0 != 0 || ctx.0.is_none() {
        return Err(failed("open", r.0));
    }
    let mut data = Dav1dData::default();
    // SAFETY: `dav1d_data_create` returns a buffer of `obus.len()` bytes
    // owned by `data`, or null.
    unsafe {
        let buf = dav1d::dav1d_data_create(NonNull::new(&mut data), obus.len());
        if buf.is_null() {
            return Err(failed("data", -1));
        }
        std::ptr::copy_nonoverlapping(obus.as_ptr(), buf, obus.len());
    }
    // SAFETY: the context is open; `data` is a live, filled `Dav1dData`.
    let r = unsafe { dav1d::dav1d_send_data(ctx.0, NonNull::new(&mut data)) };
    // SAFETY: `data` is ours; unref is a no-op once the decoder took it.
    unsafe { dav1d::dav1d_data_unref(NonNull::new(&mut data)) };
    if r.0 != 0 {
        return Err(failed("send", r.0));
    }
    let mut pic = Picture(Dav1dPicture::default());
    // SAFETY: the context is open; `pic.0` is a live picture to write to.
    let r = unsafe { dav1d::dav1d_get_picture(ctx.0, NonNull::new(&mut pic.0)) };
    if r.0 != 0 {
        return Err(failed("picture", r.0));
    }
    let p = &pic.0;
    if p.p.bpc != 8 {
        return Err(DecodeError::Decode(format!(
            "{}-bit AV1 is not read",
            p.p.bpc
        )));
    }
    let (w, h) = (p.p.w as usize, p.p.h as usize);
    let (sx, sy) = match p.p.layout {
        DAV1D_PIXEL_LAYOUT_I400 | DAV1D_PIXEL_LAYOUT_I444 => (0, 0),
        DAV1D_PIXEL_LAYOUT_I422 => (1, 0),
        DAV1D_PIXEL_LAYOUT_I420 => (1, 1),
        other => return Err(DecodeError::Decode(format!("AV1 layout {other}"))),
    };
    // SAFETY: a decoded picture's sequence header lives as long as it.
    let seq = p.seq_hdr.map(|s| unsafe { s.as_ref() });
    let full_range = seq.is_none_or(|s| s.color_range != 0);
    let bt709 = seq.is_some_and(|s| s.mtrx == 1);
    // Plane `k` at (x, y): its rows are `stride` bytes apart.
    let plane = |k: usize, sub: (usize, usize)| -> Vec<u8> {
        let Some(base) = p.data[k] else {
            return Vec::new();
        };
        let stride = p.stride[(k > 0) as usize] as usize;
        let (pw, ph) = ((w + sub.0) >> sub.0, (h + sub.1) >> sub.1);
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            // SAFETY: dav1d's plane `k` holds `ph` rows of `stride` bytes,
            // each with `pw` pixels; (y >> sub.1) < ph and (x >> sub.0) < pw.
            let row = unsafe {
                std::slice::from_raw_parts(
                    base.as_ptr()
                        .cast::<u8>()
                        .add((y >> sub.1).min(ph - 1) * stride),
                    pw,
                )
            };
            out.extend((0..w).map(|x| row[(x >> sub.0).min(pw - 1)]));
        }
        out
    };
    let mono = p.p.layout == DAV1D_PIXEL_LAYOUT_I400;
    Ok(Planes {
        width: w as u32,
        height: h as u32,
        y: plane(0, (0, 0)),
        cb: if mono { Vec::new() } else { plane(1, (sx, sy)) },
        cr: if mono { Vec::new() } else { plane(2, (sx, sy)) },
        full_range,
        bt709,
    })
}
