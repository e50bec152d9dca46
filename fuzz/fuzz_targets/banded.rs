//! The banded path end to end: a JPEG (baseline or progressive) or PNG
//! built from the input, then cut short and damaged where the input says,
//! decoded by our row decoders (`jpeg::decode_rows`, `png_shrink::
//! decode_rows`) straight into the core's banded resampler, at a scale,
//! region and output size the input chooses, whose rows are gathered or
//! encoded as they come (`encode::jpeg_rows`). Never a panic; the decoders
//! keep the `Rows` contract (one `start`, rows of the declared width, no
//! more than the declared height, all of them when they report success);
//! and a success is an image (or a JPEG that decodes to one) of exactly
//! the size asked for.
#![no_main]

use edgethumb::pipeline::banded::Banded;
use edgethumb::pipeline::encode::jpeg_rows::JpegRows;
use edgethumb::pipeline::resize::Region;
use edgethumb_codecs::{jpeg, png_shrink, DecodeError, Gather, Rows};
use libfuzzer_sys::fuzz_target;

/// Checks the contract, and hands the rows on.
struct Checked<'a> {
    inner: &'a mut dyn Rows,
    size: Option<(u32, u32, usize)>,
    rows: u32,
}

impl Rows for Checked<'_> {
    fn start(&mut self, w: u32, h: u32, ch: usize) -> Result<(), DecodeError> {
        assert!(self.size.is_none(), "start twice");
        assert!(w > 0 && h > 0 && (ch == 3 || ch == 4));
        self.size = Some((w, h, ch));
        self.inner.start(w, h, ch)
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        let (w, h, ch) = self.size.expect("row before start");
        assert_eq!(row.len(), w as usize * ch, "row width");
        assert!(self.rows < h, "more rows than declared");
        self.rows += 1;
        self.inner.row(row)
    }
}

fuzz_target!(|data: &[u8]| {
    let [kind, w, h, scale, rx, ry, dw, dh, cut0, cut1, at0, at1, value, ref pixels @ ..] = *data
    else {
        return;
    };
    let (width, height) = (1 + w as u32 % 96, 1 + h as u32 % 96);
    let rgb: Vec<u8> = if pixels.is_empty() {
        vec![90; (width * height * 3) as usize]
    } else {
        pixels
            .iter()
            .copied()
            .cycle()
            .take((width * height * 3) as usize)
            .collect()
    };
    let mut bytes = Vec::new();
    let is_png = kind & 1 == 1;
    if is_png {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(png::ColorType::Rgb);
        let Ok(mut writer) = enc.write_header() else {
            return;
        };
        if writer.write_image_data(&rgb).is_err() {
            return;
        }
        drop(writer);
    } else {
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 80);
        if kind & 2 == 2 {
            enc.set_progressive(true);
        }
        if enc
            .encode(
                &rgb,
                width as u16,
                height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .is_err()
        {
            return;
        }
    }
    // Cut short, and one byte changed.
    let cut = u16::from_le_bytes([cut0, cut1]) as usize;
    if cut > 0 && cut < bytes.len() {
        bytes.truncate(bytes.len() - cut.min(bytes.len() - 1));
    }
    let at = u16::from_le_bytes([at0, at1]) as usize;
    if kind & 4 == 4 && !bytes.is_empty() {
        let i = at % bytes.len();
        bytes[i] = value;
    }

    // The scale: a JPEG DCT scale, or a PNG box factor.
    let (decoded, n_or_k) = if is_png {
        let k = 1 + scale as u32 % 4;
        (png_shrink::shrunk_size(width, height, k), k)
    } else {
        let n = [1u32, 2, 4, 8][scale as usize % 4];
        (((width * n).div_ceil(8), (height * n).div_ceil(8)), n)
    };
    // A region inside the decoded image, and an output up to 3x it.
    let fx = rx as f64 / 255.0;
    let fy = ry as f64 / 255.0;
    let region = Region {
        x: fx * decoded.0 as f64 / 2.0,
        y: fy * decoded.1 as f64 / 2.0,
        w: decoded.0 as f64 * (1.0 - fx / 2.0),
        h: decoded.1 as f64 * (1.0 - fy / 2.0),
    };
    let dst = (1 + dw as u32 % 200, 1 + dh as u32 % 200);
    // Gathered, or encoded as rows arrive.
    let (mut gathered, mut encoded) = (None, None);
    let banded: &mut dyn Rows = if kind & 8 == 0 {
        gathered.insert(Banded::new(decoded, region, dst, Gather::default()))
    } else {
        encoded.insert(Banded::new(
            decoded,
            region,
            dst,
            JpegRows::new(80, [255, 255, 255], 0),
        ))
    };
    let mut checked = Checked {
        inner: banded,
        size: None,
        rows: 0,
    };
    let ok = if is_png {
        png_shrink::decode_rows(
            &bytes,
            n_or_k,
            &png_shrink::Limits::default(),
            &edgethumb_codecs::never,
            &mut checked,
        )
        .is_ok()
    } else {
        if jpeg::cost::check(&bytes, &jpeg::Limits::default()).is_err() {
            return;
        }
        matches!(
            jpeg::decode_rows(
                &bytes,
                n_or_k,
                &jpeg::Limits::default(),
                &edgethumb_codecs::never,
                &mut checked,
            ),
            Ok(true)
        )
    };
    if ok {
        let (_, h, _) = checked.size.expect("success without start");
        assert_eq!(checked.rows, h, "success before every row");
        let img = match (gathered, encoded) {
            (Some(b), _) => b.finish().expect("every row arrived").into_image(),
            (_, Some(b)) => {
                let jpeg = b.finish().expect("every row arrived").finish();
                let jpeg = jpeg.expect("a whole JPEG");
                Ok(image::load_from_memory(&jpeg).expect("a JPEG that decodes"))
            }
            _ => unreachable!(),
        };
        let img = img.expect("a whole image");
        let size = (img.width(), img.height());
        assert_eq!(size, dst);
    }
});
