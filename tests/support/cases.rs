//! The conformance table: one row per behaviour (request, origin
//! behaviour, expected response). Every runtime (native server, `wrangler
//! dev`, `wasmtime serve`) runs these same rows; a runtime may skip a row
//! only with a reason (see `Target::skip`).

use std::time::Duration;

use image::DynamicImage;

use super::fixtures as fx;
use super::origin::Route;

pub const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
/// A browser that takes WebP but not AVIF (Chrome before 85, Safari 14–15).
pub const WEBP_ACCEPT: &str = "image/webp,image/apng,image/*,*/*;q=0.8";

/// How the request URL is signed.
#[derive(Clone, Debug)]
pub enum Sign {
    Valid,
    /// `insecure` in the signature place.
    Unsigned,
    /// Signed with another key.
    WrongKey,
    /// Valid signature, then one option changed.
    Tampered,
    /// A valid signature with `=` padding appended.
    Padded,
    /// This path (built from the source URL), validly signed.
    Build(fn(&str) -> String),
    /// The valid signed path, then changed by this.
    Edit(fn(&str) -> String),
}

/// Where the source points.
#[derive(Clone, Debug)]
pub enum Source {
    /// The origin route registered for this case.
    Route(Route),
    /// A literal source URL; `{origin}` and `{closed}` are replaced by the
    /// origin's base and a closed port's base.
    Literal(&'static str),
}

pub type PixelCheck = fn(&DynamicImage) -> Result<(), String>;

#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub dims: Option<(u32, u32)>,
    pub body_contains: Option<&'static str>,
    /// `Some(true)`: `Vary: Accept` must be present; `Some(false)`: absent.
    pub vary_accept: Option<bool>,
    /// Upstream requests after every request of the case.
    pub origin_hits: Option<u32>,
    pub cache_control: Option<&'static str>,
    pub header: Option<(&'static str, &'static str)>,
    pub pixels: Option<PixelCheck>,
    /// The body must hold these bytes (a chunk or segment name).
    pub body_has: Option<&'static [u8]>,
    /// The body's length must fall in this range: a quality's effect.
    pub body_len: Option<std::ops::Range<usize>>,
    /// The response must arrive within this time.
    pub within: Option<Duration>,
    /// An animation of [`fx::ANIMATION`]'s frames: their count, delays and
    /// colours, looping forever.
    pub animated: bool,
    /// A 200 whose body is then cut short (the transfer breaks).
    pub cut: bool,
    /// A streamed miss: its first bytes arrive at least this long before
    /// its last.
    pub streams: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub source: Source,
    pub options: &'static str,
    pub ext: Option<&'static str>,
    pub base64: bool,
    pub sign: Sign,
    pub method: &'static str,
    pub accept: Option<&'static str>,
    /// Identical requests sent at once.
    pub concurrent: usize,
    /// Sequential repeats after the first request (each checked too).
    pub repeat: usize,
    /// Then send `If-None-Match` with the ETag and expect 304.
    pub revalidate: bool,
    pub expect: Expect,
}

fn case(name: &'static str, route: Route, options: &'static str, expect: Expect) -> Case {
    Case {
        name,
        source: Source::Route(route),
        options,
        ext: None,
        base64: false,
        sign: Sign::Valid,
        method: "GET",
        accept: None,
        concurrent: 1,
        repeat: 0,
        revalidate: false,
        expect,
    }
}

/// Modifiers, so a row stays one line.
impl Case {
    fn accept(self, accept: &'static str) -> Self {
        Case {
            accept: Some(accept),
            ..self
        }
    }
    fn ext(self, ext: &'static str) -> Self {
        Case {
            ext: Some(ext),
            ..self
        }
    }
    fn base64(self) -> Self {
        Case {
            base64: true,
            ..self
        }
    }
    fn sign(self, sign: Sign) -> Self {
        Case { sign, ..self }
    }
    fn method(self, method: &'static str) -> Self {
        Case { method, ..self }
    }
    fn concurrent(self, concurrent: usize) -> Self {
        Case { concurrent, ..self }
    }
    fn repeat(self, repeat: usize) -> Self {
        Case { repeat, ..self }
    }
    fn revalidate(self) -> Self {
        Case {
            revalidate: true,
            ..self
        }
    }
    /// A literal source URL instead of the row's origin route.
    fn source(self, source: &'static str) -> Self {
        Case {
            source: Source::Literal(source),
            ..self
        }
    }
}

fn ok(ct: &'static str, dims: (u32, u32)) -> Expect {
    Expect {
        status: 200,
        content_type: Some(ct),
        dims: Some(dims),
        ..Expect::default()
    }
}

fn err(status: u16, body: &'static str) -> Expect {
    Expect {
        status,
        content_type: Some("text/plain; charset=utf-8"),
        body_contains: Some(body),
        ..Expect::default()
    }
}

/// Status only (no content type or size checked).
fn status(status: u16) -> Expect {
    Expect {
        status,
        ..Expect::default()
    }
}

impl Expect {
    fn pixels(self, check: PixelCheck) -> Self {
        Expect {
            pixels: Some(check),
            ..self
        }
    }
    fn vary(self, vary_accept: bool) -> Self {
        Expect {
            vary_accept: Some(vary_accept),
            ..self
        }
    }
    fn hits(self, origin_hits: u32) -> Self {
        Expect {
            origin_hits: Some(origin_hits),
            ..self
        }
    }
    fn cache_control(self, cc: &'static str) -> Self {
        Expect {
            cache_control: Some(cc),
            ..self
        }
    }
    fn header(self, name: &'static str, value: &'static str) -> Self {
        Expect {
            header: Some((name, value)),
            ..self
        }
    }
    fn dims(self, dims: (u32, u32)) -> Self {
        Expect {
            dims: Some(dims),
            ..self
        }
    }
    fn body_has(self, bytes: &'static [u8]) -> Self {
        Expect {
            body_has: Some(bytes),
            ..self
        }
    }
    fn body_len(self, range: std::ops::Range<usize>) -> Self {
        Expect {
            body_len: Some(range),
            ..self
        }
    }
    fn within(self, limit: Duration) -> Self {
        Expect {
            within: Some(limit),
            ..self
        }
    }
    fn animated(self) -> Self {
        Expect {
            animated: true,
            ..self
        }
    }
    fn streams(self, gap: Duration) -> Self {
        Expect {
            streams: Some(gap),
            ..self
        }
    }
}

const JPEG: &str = "image/jpeg";
const PNG: &str = "image/png";
const WEBP: &str = "image/webp";
const GIF: &str = "image/gif";
const AVIF: &str = "image/avif";

/// `bytes`, then zeros up to `len` bytes in all.
fn padded(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
    bytes.resize(len.max(bytes.len()), 0);
    bytes
}

fn photo() -> Route {
    Route::Body(fx::jpeg(400, 200), "image/jpeg")
}

fn centre_is_red(img: &DynamicImage) -> Result<(), String> {
    let p = px(img, img.width() / 2, img.height() / 2);
    is_red(p)
        .then_some(())
        .ok_or(format!("centre {p:?} is not red"))
}

/// `fx::png_alpha`'s clear border and opaque blue centre.
fn alpha_kept(img: &DynamicImage) -> Result<(), String> {
    let rgba = img.to_rgba8();
    let (corner, centre) = (
        rgba.get_pixel(1, 1).0,
        rgba.get_pixel(img.width() / 2, img.height() / 2).0,
    );
    check(
        corner[3] <= 8 && centre[3] >= 247 && centre[2] > 180,
        &format!("corner {corner:?} should be clear, centre {centre:?} opaque blue"),
        img,
    )
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 150 && p[1] < 110 && p[2] < 110
}

fn px(img: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.to_rgb8().get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn check(cond: bool, what: &str, img: &DynamicImage) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!(
            "{what}; corners: {:?} {:?} {:?} {:?}",
            px(img, 1, 1),
            px(img, img.width() - 2, 1),
            px(img, 1, img.height() - 2),
            px(img, img.width() - 2, img.height() - 2)
        ))
    }
}

fn red_top_left(img: &DynamicImage) -> Result<(), String> {
    check(
        is_red(px(img, 2, 2)),
        "the red marker should be top-left",
        img,
    )
}

fn red_top_right(img: &DynamicImage) -> Result<(), String> {
    let x = img.width() - 3;
    check(
        is_red(px(img, x, 2)) && !is_red(px(img, 2, 2)),
        "the marker should be top-right",
        img,
    )
}

fn red_bottom_right(img: &DynamicImage) -> Result<(), String> {
    let (x, y) = (img.width() - 3, img.height() - 3);
    check(
        is_red(px(img, x, y)) && !is_red(px(img, 2, 2)),
        "the marker should be bottom-right",
        img,
    )
}

fn white_top_band(img: &DynamicImage) -> Result<(), String> {
    let p = px(img, img.width() / 2, 2);
    check(
        p.iter().all(|&c| c > 240),
        "extend should pad with white",
        img,
    )
}

fn red_bottom_left(img: &DynamicImage) -> Result<(), String> {
    let y = img.height() - 3;
    check(
        is_red(px(img, 2, y)) && !is_red(px(img, 2, 2)),
        "the marker should be bottom-left",
        img,
    )
}

/// `pixelate:10`: every 10x10 block from the top-left is one colour, and
/// neighbouring blocks of the photo's gradient differ.
fn blocks_of_10(img: &DynamicImage) -> Result<(), String> {
    let rgb = img.to_rgb8();
    let flat = rgb
        .enumerate_pixels()
        .all(|(x, y, p)| p == rgb.get_pixel(x - x % 10, y - y % 10));
    let differ = rgb.get_pixel(50, 30) != rgb.get_pixel(60, 30);
    check(
        flat && differ,
        "pixelate:10 should make flat 10x10 blocks",
        img,
    )
}

fn is_green(p: [u8; 3]) -> bool {
    p[1] > 230 && p[0] < 25 && p[2] < 25
}

/// Green where the watermark should be (`at`), the picture where not.
fn green_at(img: &DynamicImage, at: &[(u32, u32)], not: &[(u32, u32)]) -> Result<(), String> {
    let ok = at.iter().all(|&(x, y)| is_green(px(img, x, y)))
        && not.iter().all(|&(x, y)| !is_green(px(img, x, y)));
    check(
        ok,
        &format!("the watermark should be at {at:?} and not at {not:?}"),
        img,
    )
}

/// `wm:1` on 100x50: the 20x10 mark at x 40..60, y 20..30.
fn watermark_centred(img: &DynamicImage) -> Result<(), String> {
    green_at(
        img,
        &[(41, 21), (58, 28)],
        &[(38, 25), (61, 25), (50, 18), (50, 31)],
    )
}

/// `wm:1:soea:5:5`: x 75..95, y 35..45.
fn watermark_bottom_right(img: &DynamicImage) -> Result<(), String> {
    green_at(img, &[(76, 36), (93, 43)], &[(97, 47), (73, 40), (85, 33)])
}

/// `wm:0.5`: half green over the picture at the centre.
fn watermark_half(img: &DynamicImage) -> Result<(), String> {
    let [r, g, b] = px(img, 50, 25);
    let ok = g > 150 && g < 240 && !is_green([r, g, b]);
    check(ok, "the centre should be half green", img)
}

/// `wm:1:re:10:10`: 30x20 tiles, 5 across and 3 down centred on 100x50,
/// marks at x 10..30, 40..60, 70..90 and y 0..10, 20..30, 40..50.
fn watermark_tiled(img: &DynamicImage) -> Result<(), String> {
    green_at(
        img,
        &[(15, 5), (45, 5), (75, 25), (15, 45), (85, 45)],
        &[(35, 5), (15, 15), (5, 5), (95, 25)],
    )
}

/// `wm:1:nowe:0:0:0.5`: fitted into 50x25, so 50x25 at the top-left.
fn watermark_scaled(img: &DynamicImage) -> Result<(), String> {
    green_at(img, &[(2, 2), (47, 22)], &[(53, 5), (10, 27)])
}

fn green_top_left(img: &DynamicImage) -> Result<(), String> {
    green_at(img, &[(2, 2), (17, 7)], &[(25, 15)])
}

fn white_bottom_band(img: &DynamicImage) -> Result<(), String> {
    let p = px(img, img.width() / 2, img.height() - 3);
    check(
        p.iter().all(|&c| c > 240),
        "the canvas below the image should be white",
        img,
    )
}

/// `padding` (10 px at 1x) all round: white at the edges, the photo's
/// red marker just inside the top-left padding.
fn padded_white(img: &DynamicImage) -> Result<(), String> {
    let edges = [px(img, 3, img.height() / 2), px(img, img.width() / 2, 3)];
    check(
        edges.iter().all(|p| p.iter().all(|&c| c > 240)) && is_red(px(img, 14, 14)),
        "padding should be white around the image, the marker inside it",
        img,
    )
}

fn red_corner(img: &DynamicImage) -> Result<(), String> {
    let p = px(img, img.width() / 2, 2);
    check(is_red(p), "extend with bg:ff0000 should pad with red", img)
}

fn transparent_corner(img: &DynamicImage) -> Result<(), String> {
    let a = img.to_rgba8().get_pixel(1, 1).0[3];
    check(a == 0, "alpha should survive as transparency", img)
}

/// Levels an output may stray from LittleCMS's sRGB at a stripe's centre:
/// two for fixed-point rounding (and a JPEG source's); a lossy output
/// (JPEG and WebP at quality 80) quantises a flat colour's chroma too, by
/// up to about six levels in one channel of a saturated colour.
const COLOUR_TOLERANCE: u8 = 2;
const LOSSY_COLOUR_TOLERANCE: u8 = 6;

/// The tolerance for a lossless or a lossy output.
fn tolerance(lossy: bool) -> u8 {
    if lossy {
        LOSSY_COLOUR_TOLERANCE
    } else {
        COLOUR_TOLERANCE
    }
}

/// Each of the four stripes' centres is within `tolerance` of `want`:
/// what LittleCMS makes of the stripe's `source` colour (for the message).
fn stripes_are<T: std::fmt::Debug>(
    img: &DynamicImage,
    source: &[T; 4],
    want: impl Fn(&T) -> [u8; 3],
    tolerance: u8,
) -> Result<(), String> {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    for (i, src) in source.iter().enumerate() {
        let want = want(src);
        let got = rgb.get_pixel((2 * i as u32 + 1) * w / 8, h / 2).0;
        let off = got.iter().zip(want).map(|(a, b)| a.abs_diff(b)).max();
        if off > Some(tolerance) {
            return Err(format!(
                "stripe {i}: {src:?} is {want:?} in sRGB (LittleCMS), served {got:?}"
            ));
        }
    }
    Ok(())
}

/// Each [`fx::stripes`] centre is LittleCMS's sRGB conversion of the
/// source colour from the profile `icc`.
fn stripes_as_lcms(img: &DynamicImage, icc: &[u8], lossy: bool) -> Result<(), String> {
    let want = |&src: &[u8; 3]| fx::lcms_to_srgb(icc, src);
    stripes_are(img, &fx::STRIPES, want, tolerance(lossy))
}

fn adobe_rgb_in_srgb(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::adobe_rgb_icc(), false)
}

fn adobe_rgb_in_srgb_lossy(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::adobe_rgb_icc(), true)
}

fn display_p3_in_srgb(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::display_p3_icc(), false)
}

fn display_p3_in_srgb_lossy(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::display_p3_icc(), true)
}

fn gamma_18_in_srgb(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::gamma_18_icc(), false)
}

/// A PNG's `cHRM` (Display P3's primaries) through LittleCMS's same space.
fn chrm_p3_in_srgb(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::chrm_p3_icc(), false)
}

/// A CMYK JPEG through its profile: LittleCMS's sRGB for each ink stripe.
fn cmyk_profile_in_srgb(img: &DynamicImage) -> Result<(), String> {
    let icc = fx::cmyk_icc();
    let want = |&ink: &[u8; 4]| fx::lcms_cmyk_to_srgb(&icc, ink);
    stripes_are(img, &fx::CMYK_STRIPES, want, tolerance(false))
}

/// sRGB to sRGB: the source's own colours.
fn stripes_unchanged(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::srgb_icc(), false)
}

/// A profile whose header declares 4 GiB (its first four bytes).
fn claims_4_gib(mut icc: Vec<u8>) -> Vec<u8> {
    icc[..4].copy_from_slice(&[0xFF; 4]);
    icc
}

fn stripes_unchanged_lossy(img: &DynamicImage) -> Result<(), String> {
    stripes_as_lcms(img, &fx::srgb_icc(), true)
}

/// The table's first row alone: a template for checks that build their
/// own URLs. Cheap, where [`cases`] makes every fixture (some are tens of
/// megapixels).
pub fn template() -> Case {
    case(
        "fit",
        photo(),
        "rs:fit:100:100",
        ok(JPEG, (100, 50)).vary(true),
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The table: one row per behaviour. Sources are 400×200 unless a row
/// says otherwise.
#[rustfmt::skip]
pub fn cases() -> Vec<Case> {
    let body = |bytes: Vec<u8>, ct: &'static str| Route::Body(bytes, ct);
    let mut v = vec![
        // Geometry, imgproxy semantics per resize type.
        template(),
        case("fill", photo(), "rs:fill:100:100", ok(JPEG, (100, 100))),
        case("fill_down_small_source", photo(), "rs:fill-down:800:800", ok(JPEG, (200, 200))),
        case("force", photo(), "rs:force:100:100", ok(JPEG, (100, 100))),
        case("auto_fits_other_orientation", photo(), "rs:auto:50:100", ok(JPEG, (50, 25))),
        case("auto_fills_same_orientation", photo(), "rs:auto:100:20", ok(JPEG, (100, 20))),
        case("zero_height_from_aspect", photo(), "rs:fit:80:0", ok(JPEG, (80, 40))),
        case("no_enlarge_by_default", photo(), "rs:fit:800:800", ok(JPEG, (400, 200))),
        case("enlarge", photo(), "rs:fit:800:800:1", ok(JPEG, (800, 400))),
        case("extend_pads_white_for_jpeg", photo(), "rs:fit:100:100:0:1", ok(JPEG, (100, 100)).pixels(white_top_band)),
        case("extend_with_background", photo(), "rs:fit:100:100:0:1/bg:ff0000", ok(JPEG, (100, 100)).pixels(red_corner)),
        case("dpr", photo(), "rs:fit:100:100/dpr:2", ok(JPEG, (200, 100))),
        case("size_and_width_aliases", photo(), "s:120:0/w:120", ok(JPEG, (120, 60))),
        case("crop_before_resize", photo(), "c:200:200:nowe/rs:fit:50:50", ok(JPEG, (50, 50)).pixels(red_top_left)),
        case("gravity_focus_point", photo(), "rs:fill:50:100/g:fp:0:0", ok(JPEG, (50, 100)).pixels(red_top_left)),
        case("gravity_smart", photo(), "rs:fill:100:100/g:sm", ok(JPEG, (100, 100))),
        case("blur", photo(), "rs:fit:100:0/bl:2", ok(JPEG, (100, 50))),
        case("sharpen", photo(), "rs:fit:100:0/sh:1", ok(JPEG, (100, 50))),
        case("pixelate", photo(), "rs:fit:100:0/pix:10/f:png", ok(PNG, (100, 50)).pixels(blocks_of_10)),
        case("quality", photo(), "rs:fit:100:0/q:30", ok(JPEG, (100, 50))),
        case("preset", photo(), "pr:thumb", ok(JPEG, (60, 30))),
        case("filename", photo(), "rs:fit:100:0/fn:cat", ok(JPEG, (100, 50)).header("content-disposition", "cat.jpg")),
        case("cachebuster", photo(), "rs:fit:100:0/cb:v2", ok(JPEG, (100, 50))),
        case("expires_in_the_future", photo(), "rs:fit:100:0/exp:4102444800", ok(JPEG, (100, 50))),
        // The photo at 200x100 is 1.3 KB as a JPEG at 80 (the first row
        // checks it), 0.5 KB at 10.
        case("quality_default_size", photo(), "rs:fit:200:0", ok(JPEG, (200, 100)).body_len(1000..2000)),
        case("format_quality", photo(), "rs:fit:200:0/fq:jpg:10:webp:90", ok(JPEG, (200, 100)).body_len(0..700)),
        case("quality_beats_format_quality", photo(), "rs:fit:200:0/fq:jpg:10/q:80", ok(JPEG, (200, 100)).body_len(1000..2000)),
        case("bad_format_quality", photo(), "fq:jpg", err(400, "format_quality")),
        case("max_bytes_lowers_the_quality", photo(), "rs:fit:200:0/mb:800", ok(JPEG, (200, 100)).body_len(500..801)),
        case("max_bytes_already_met", photo(), "rs:fit:200:0/mb:100000", ok(JPEG, (200, 100)).body_len(1000..2000)),
        case("max_bytes_unmet_gives_the_smallest", photo(), "rs:fit:200:0/mb:10", ok(JPEG, (200, 100)).body_len(0..600)),
        case("max_bytes_webp", photo(), "rs:fit:200:0/mb:600/f:webp", ok(WEBP, (200, 100)).body_len(300..601)),
        case("bad_max_bytes", photo(), "mb:lots", err(400, "max_bytes")),
        case("keep_copyright_and_enforce_thumbnail_accepted", photo(), "rs:fit:100:0/kcr:1/eth:1", ok(JPEG, (100, 50))),
        case("bad_keep_copyright", photo(), "kcr:perhaps", err(400, "keep_copyright")),
        case("bad_enforce_thumbnail", photo(), "eth:x", err(400, "enforce_thumbnail")),
        case("bad_pixelate", photo(), "pix:big", err(400, "pixelate")),
        case("bad_skip_processing", photo(), "skp:tiff", err(400, "skip_processing")),
        case("min_width_widens_a_height_only_resize", photo(), "h:50/mw:150", ok(JPEG, (150, 50))),
        case("min_height_then_cropped_to_width", photo(), "w:100/mh:100", ok(JPEG, (100, 100))),
        case("zoom", photo(), "rs:fit:100:100/z:0.5", ok(JPEG, (50, 25))),
        case("zoom_two_factors", photo(), "rs:force:100:100/zoom:0.5:0.25", ok(JPEG, (50, 25))),
        case("extend_aspect_ratio", photo(), "rs:fit:100:100/exar:1:no", ok(JPEG, (100, 100)).pixels(white_bottom_band)),
        case("extend_aspect_ratio_already_there", photo(), "rs:fit:200:100/extend_ar:1", ok(JPEG, (200, 100))),
        case("padding", photo(), "rs:fit:100:0/pd:10", ok(JPEG, (120, 70)).pixels(padded_white)),
        case("padding_css_order_and_dpr", photo(), "rs:fit:100:0/padding:10:20/dpr:2", ok(JPEG, (280, 140))),
        case("padding_with_background", photo(), "rs:fit:100:0/pd:10/bg:ff0000", ok(JPEG, (120, 70)).pixels(red_corner)),
        case("padding_clear_with_alpha", body(fx::png_alpha(400, 200), PNG), "rs:fit:100:0/pd:10", ok(PNG, (120, 70)).pixels(transparent_corner)),
        case("rotate_90", photo(), "rs:fit:100:100/rot:90", ok(JPEG, (50, 100)).pixels(red_top_right)),
        case("rotate_180", photo(), "rs:fit:100:100/rotate:-180", ok(JPEG, (100, 50)).pixels(red_bottom_right)),
        case("rotate_after_exif_orientation", body(fx::jpeg_exif(400, 200, 6), JPEG), "rs:fit:100:100/rot:270", ok(JPEG, (100, 50)).pixels(red_top_left)),
        case("flip_horizontal", photo(), "rs:fit:100:100/fl:1", ok(JPEG, (100, 50)).pixels(red_top_right)),
        case("flip_vertical", photo(), "rs:fit:100:100/flip::1", ok(JPEG, (100, 50)).pixels(red_bottom_left)),
        case("flip_after_rotate", photo(), "rs:fit:100:100/rot:90/fl:1", ok(JPEG, (50, 100)).pixels(red_top_left)),
        case("skip_processing_serves_the_source", photo(), "rs:fit:100:0/skp:jpg", ok(JPEG, (400, 200))).accept(CHROME_ACCEPT),
        case("skip_processing_not_for_another_format", photo(), "rs:fit:100:0/skp:png:jpg/f:png", ok(PNG, (100, 50))),
        case("skip_processing_not_for_other_sources", body(fx::png(400, 200), PNG), "rs:fit:100:0/skp:jpg", ok(JPEG, (100, 50))),
        case("content_disposition_inline_by_default", photo(), "rs:fit:100:0", ok(JPEG, (100, 50)).header("content-disposition", "inline; filename=")),
        case("filename_not_ascii", photo(), "rs:fit:100:0/fn:Y2Fmw6k:1", ok(JPEG, (100, 50)).header("content-disposition", "filename*=UTF-8''caf%C3%A9.jpg")),
        case("return_attachment", photo(), "rs:fit:100:0/att:1/fn:cat", ok(JPEG, (100, 50)).header("content-disposition", "attachment; filename=\"cat.jpg\"")),
        // watermark: every target has a 20x10 green one (`target_env`).
        case("watermark", photo(), "rs:fit:100:0/wm:1/f:png", ok(PNG, (100, 50)).pixels(watermark_centred)),
        case("watermark_position_and_offsets", photo(), "rs:fit:100:0/watermark:1:soea:5:5/f:png", ok(PNG, (100, 50)).pixels(watermark_bottom_right)),
        case("watermark_opacity", photo(), "rs:fit:100:0/wm:0.5/f:png", ok(PNG, (100, 50)).pixels(watermark_half)),
        case("watermark_tiled", photo(), "rs:fit:100:0/wm:1:re:10:10/f:png", ok(PNG, (100, 50)).pixels(watermark_tiled)),
        case("watermark_scaled", photo(), "rs:fit:100:0/wm:1:nowe:0:0:0.5/f:png", ok(PNG, (100, 50)).pixels(watermark_scaled)),
        case("watermark_opacity_zero_is_off", photo(), "rs:fit:100:0/wm:0/f:png", ok(PNG, (100, 50)).pixels(red_top_left)),
        case("watermark_on_a_banded_jpeg", body(fx::jpeg(1200, 800), JPEG), "rs:fit:600:0/wm:1:nowe", ok(JPEG, (600, 400)).pixels(green_top_left)),
        case("watermark_on_animation_frames", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0/wm:1:nowe", ok(GIF, (100, 50)).animated()),
        case("bad_watermark", photo(), "wm:2", err(400, "watermark")),
        case("bad_watermark_scale_too_large", photo(), "rs:fit:100:0/wm:1:ce:0:0:1000", err(400, "watermark")),
        // raw: the source as it came, whatever else the URL asks.
        case("raw", photo(), "raw:1/rs:fit:100:0/f:png", ok(JPEG, (400, 200)).vary(false).header("content-disposition", "inline; filename=\"raw.jpg\"")).accept(CHROME_ACCEPT),
        case("raw_png", body(fx::png(400, 200), PNG), "rs:fit:100:0/raw:t", ok(PNG, (400, 200))),
        case("raw_format_not_decoded_here", body(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00mif1avif".to_vec(), "image/avif"), "raw:1", Expect { status: 200, content_type: Some("image/avif"), ..Expect::default() }.body_has(b"ftypavif")),
        case("raw_not_an_image", body(b"<!doctype html><script>alert(1)</script>".to_vec(), "image/jpeg"), "raw:1", err(415, "not an image")),
        case("raw_over_the_byte_limit", Route::Large { len: 4_000_000, content_length: true }, "raw:1", err(413, "larger than")),
        // Streamed: the first bytes go out while the origin pauses; the
        // copy is stored whole (the repeat is a hit with an ETag).
        case("raw_streams_as_it_arrives", Route::Paused { body: fx::jpeg(400, 200), first: 6000, pause: ms(600), content_length: true }, "raw:1", ok(JPEG, (400, 200)).streams(ms(400))).repeat(1),
        // Past the byte limit with no declared length: found after the
        // 200 is out, so the transfer breaks, and nothing is stored (the
        // repeat is cut again, not a hit).
        case("raw_cut_past_the_byte_limit", Route::Paused { body: padded(fx::jpeg(400, 200), 3_500_000), first: 0, pause: ms(0), content_length: false }, "raw:1", Expect { status: 200, content_type: Some(JPEG), cut: true, ..Expect::default() }).repeat(1),
        case("bad_raw", photo(), "raw:maybe", err(400, "raw")),
        // trim: the framed fixture's block is 96x48 at (48, 64) of 400x200.
        case("trim", body(fx::framed_png(400, 200), PNG), "t:10", ok(JPEG, (96, 48)).pixels(red_top_left)),
        case("trim_then_resize", body(fx::framed_png(400, 200), PNG), "trim:10/rs:fit:48:0", ok(JPEG, (48, 24)).pixels(red_top_left)),
        case("trim_equal_hor", body(fx::framed_png(400, 200), PNG), "t:10::1", ok(JPEG, (304, 48))),
        case("trim_equal_hor_and_ver", body(fx::framed_png(400, 200), PNG), "t:10::1:1", ok(JPEG, (304, 72))),
        case("trim_colour", body(fx::framed_png(400, 200), PNG), "t:10:FFFFFF", ok(JPEG, (96, 48))),
        case("trim_colour_not_there_keeps_all", body(fx::framed_png(400, 200), PNG), "t:10:000000", ok(JPEG, (400, 200))),
        case("trim_transparent_background", body(fx::framed_png_alpha(400, 200), PNG), "t:10", ok(JPEG, (96, 48)).pixels(red_top_left)),
        case("trim_jpeg", body(fx::framed_jpeg(400, 200), JPEG), "t:10", ok(JPEG, (96, 48))),
        case("trim_nothing_to_cut", photo(), "rs:fit:100:0/t:10", ok(JPEG, (100, 50))),
        case("trim_empty_threshold_is_off", body(fx::framed_png(400, 200), PNG), "t:", ok(JPEG, (400, 200))),
        case("bad_trim", photo(), "t:10:red", err(400, "trim")),
        // A 24 MP PNG shrinks row by row for a thumbnail, but trimming
        // needs it whole (72 MB): over the table's 48 MB budget.
        case("trim_needs_the_whole_image", body(fx::png_blank(6000, 4000), PNG), "t:10/rs:fit:100:0", err(413, "MiB to transform")),
        // Source formats.
        case("jpeg_progressive", body(fx::jpeg_progressive(400, 200), JPEG), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("jpeg_grayscale", body(fx::jpeg_gray(400, 200), JPEG), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("jpeg_cmyk", body(fx::jpeg_cmyk(400, 200), JPEG), "rs:fit:100:0", ok(JPEG, (100, 50)).pixels(red_top_left)),
        case("exif_orientation_6", body(fx::jpeg_exif(400, 200, 6), JPEG), "rs:fit:100:100", ok(JPEG, (50, 100)).pixels(red_top_right)),
        case("exif_orientation_3", body(fx::jpeg_exif(400, 200, 3), JPEG), "rs:fit:100:100", ok(JPEG, (100, 50)).pixels(red_bottom_right)),
        case("exif_ignored_without_auto_rotate", body(fx::jpeg_exif(400, 200, 6), JPEG), "rs:fit:100:100/ar:0", ok(JPEG, (100, 50)).pixels(red_top_left)),
        case("png_opaque_to_jpeg", body(fx::png(400, 200), PNG), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("png_alpha_stays_png", body(fx::png_alpha(400, 200), PNG), "rs:fit:100:0", ok(PNG, (100, 50)).pixels(transparent_corner)),
        case("png_16_bit", body(fx::png16(400, 200), PNG), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("png_palette", body(fx::png_palette(400, 200), PNG), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("gif_first_frame", body(fx::gif(400, 200), GIF), "rs:fit:100:0", ok(JPEG, (100, 50))),
        // Animations (the table runs with EDGETHUMB_MAX_ANIMATION_FRAMES=50):
        // kept in WebP or GIF with every frame, delay and the loop count.
        case("animated_gif_stays_gif", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0", ok(GIF, (100, 50)).animated().vary(true)),
        case("animated_gif_to_webp_by_accept", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0", ok(WEBP, (100, 50)).animated().vary(true)).accept(CHROME_ACCEPT),
        case("animated_gif_to_webp_explicit", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0/f:webp", ok(WEBP, (100, 50)).animated().vary(false)),
        case("animated_webp_to_gif_without_webp_accept", body(fx::animated_webp(400, 200), WEBP), "rs:fit:100:0", ok(GIF, (100, 50)).animated()),
        case("animated_gif_filled", body(fx::animated_gif(400, 200), GIF), "rs:fill:60:60", ok(GIF, (60, 60)).animated()),
        case("format_gif_still", photo(), "rs:fit:100:0/f:gif", ok(GIF, (100, 50)).pixels(red_top_left)),
        case("animated_webp_stays_webp_by_accept", body(fx::animated_webp(400, 200), WEBP), "rs:fit:100:0", ok(WEBP, (100, 50)).animated()).accept(CHROME_ACCEPT),
        // A format that cannot animate, set by the URL, gets the first frame (imgproxy's rule).
        case("animated_gif_as_jpeg_is_its_first_frame", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0/f:jpg", ok(JPEG, (100, 50)).pixels(centre_is_red)),
        // Frames are counted before any is decoded: their pixels, summed, against the pixel limit; their memory against the budget.
        case("animated_frames_count_against_the_pixel_limit", body(fx::gif_many_frames(1000, 1000, 5000), GIF), "rs:fit:100:0", err(413, "frames").within(ms(1000))),
        case("animated_frames_count_against_the_memory_budget", body(fx::gif_many_frames(800, 800, 60), GIF), "rs:fit:800:0", err(413, "MiB").within(ms(1000))),
        case("webp_source", body(fx::webp(400, 200), WEBP), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("bmp_source", body(fx::bmp(400, 200), "image/bmp"), "rs:fit:100:0", ok(JPEG, (100, 50))),
        // Colour management: wide-gamut profiles (made by LittleCMS) are
        // converted to sRGB, to within a few levels of LittleCMS's own
        // conversion; sRGB-tagged and untagged sources keep their colours.
        case("icc_adobe_rgb_jpeg_to_srgb", body(fx::jpeg_stripes(400, 200, Some(&fx::adobe_rgb_icc())), JPEG), "rs:fit:100:0", ok(JPEG, (100, 50)).pixels(adobe_rgb_in_srgb_lossy)),
        case("icc_adobe_rgb_jpeg_to_srgb_png", body(fx::jpeg_stripes(400, 200, Some(&fx::adobe_rgb_icc())), JPEG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(adobe_rgb_in_srgb)),
        case("icc_adobe_rgb_jpeg_to_srgb_webp", body(fx::jpeg_stripes(400, 200, Some(&fx::adobe_rgb_icc())), JPEG), "rs:fit:100:0/f:webp", ok(WEBP, (100, 50)).pixels(adobe_rgb_in_srgb_lossy)),
        case("icc_display_p3_png_to_srgb", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(display_p3_in_srgb)),
        case("icc_display_p3_png_to_srgb_jpeg", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0", ok(JPEG, (100, 50)).pixels(display_p3_in_srgb_lossy)),
        case("icc_display_p3_png_to_srgb_webp", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:webp", ok(WEBP, (100, 50)).pixels(display_p3_in_srgb_lossy)),
        case("icc_display_p3_webp_to_srgb", body(fx::webp_stripes(400, 200, &fx::display_p3_icc()), WEBP), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(display_p3_in_srgb)),
        case("icc_cmyk_jpeg_to_srgb", body(fx::jpeg_cmyk_stripes(400, 200, &fx::cmyk_icc()), JPEG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(cmyk_profile_in_srgb)),
        case("png_gama_to_srgb", body(fx::png_gama_stripes(400, 200), PNG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(gamma_18_in_srgb)),
        case("png_chrm_display_p3_to_srgb", body(fx::png_chrm_p3_stripes(400, 200), PNG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(chrm_p3_in_srgb)),
        // strip_color_profile:0 keeps the profile, and the pixels as they are.
        case("icc_kept_with_scp_0_png", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:png/scp:0", ok(PNG, (100, 50)).pixels(stripes_unchanged).body_has(b"iCCP")),
        case("icc_kept_with_scp_0_jpeg", body(fx::jpeg_stripes(400, 200, Some(&fx::adobe_rgb_icc())), JPEG), "rs:fit:100:0/scp:0", ok(JPEG, (100, 50)).pixels(stripes_unchanged_lossy).body_has(b"ICC_PROFILE\0")),
        case("icc_kept_with_scp_0_webp", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:webp/scp:0", ok(WEBP, (100, 50)).pixels(stripes_unchanged_lossy).body_has(b"ICCP")),
        case("icc_srgb_tagged_unchanged", body(fx::jpeg_stripes(400, 200, Some(&fx::srgb_icc())), JPEG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(stripes_unchanged)),
        case("icc_untagged_unchanged", body(fx::jpeg_stripes(400, 200, None), JPEG), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).pixels(stripes_unchanged)),
        // Output formats and negotiation.
        case("format_option_png", photo(), "rs:fit:100:0/f:png", ok(PNG, (100, 50)).vary(false)),
        case("format_webp", photo(), "rs:fit:100:0/f:webp", ok(WEBP, (100, 50))),
        case("accept_negotiates_webp", photo(), "rs:fit:100:0", ok(WEBP, (100, 50)).vary(true)).accept(WEBP_ACCEPT),
        // AVIF (the table runs with EDGETHUMB_AUTO_FORMATS=avif,webp,jpeg
        // and EDGETHUMB_AVIF_MAX_PIXELS=250000).
        case("format_avif", photo(), "rs:fit:100:0/f:avif", ok(AVIF, (100, 50)).vary(false).pixels(red_top_left)),
        case("accept_negotiates_avif", photo(), "rs:fit:100:0", ok(AVIF, (100, 50)).vary(true).pixels(red_top_left)).accept(CHROME_ACCEPT),
        case("alpha_with_avif_accept", body(fx::png_alpha(400, 200), PNG), "rs:fit:100:0", ok(AVIF, (100, 50)).pixels(alpha_kept)).accept(CHROME_ACCEPT),
        case("avif_over_its_pixel_limit_becomes_webp", body(fx::jpeg(1200, 600), JPEG), "rs:fit:800:0", ok(WEBP, (800, 400)).vary(true)).accept(CHROME_ACCEPT),
        case("explicit_avif_over_its_pixel_limit_becomes_webp", body(fx::jpeg(1200, 600), JPEG), "rs:fit:800:0/f:avif", ok(WEBP, (800, 400)).vary(false)),
        case("avif_over_its_pixel_limit_without_webp_accept_falls_back", body(fx::jpeg(1200, 600), JPEG), "rs:fit:800:0", ok(JPEG, (800, 400)).vary(true)).accept("image/avif,image/*;q=0.8"),
        case("animated_gif_as_avif_is_its_first_frame", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0/f:avif", ok(AVIF, (100, 50)).pixels(centre_is_red)),
        case("animated_gif_with_only_avif_accept_stays_gif", body(fx::animated_gif(400, 200), GIF), "rs:fit:100:0", ok(GIF, (100, 50)).animated().vary(true)).accept("image/avif,image/*;q=0.8"),
        case("icc_display_p3_png_to_srgb_avif", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:avif", ok(AVIF, (100, 50)).pixels(display_p3_in_srgb_lossy)),
        // AVIF carries no profile, so scp:0 still converts.
        case("icc_converted_for_avif_even_with_scp_0", body(fx::png_stripes(400, 200, &fx::display_p3_icc()), PNG), "rs:fit:100:0/f:avif/scp:0", ok(AVIF, (100, 50)).pixels(display_p3_in_srgb_lossy)),
        case("accept_without_webp_gets_jpeg", photo(), "rs:fit:100:0", ok(JPEG, (100, 50))).accept("image/png,image/*;q=0.8"),
        case("explicit_format_beats_accept", photo(), "rs:fit:100:0/f:jpg", ok(JPEG, (100, 50)).vary(false)).accept(CHROME_ACCEPT),
        case("alpha_with_webp_accept", body(fx::png_alpha(400, 200), PNG), "rs:fit:100:0", ok(WEBP, (100, 50)).pixels(alpha_kept)).accept(WEBP_ACCEPT),
        case("extension_sets_format_plain", photo(), "rs:fit:100:0", ok(PNG, (100, 50))).ext("png"),
        case("base64_source_with_extension", photo(), "rs:fit:100:0", ok(WEBP, (100, 50))).ext("webp").base64(),
        // Caching, coalescing and revalidation.
        case("repeat_is_a_cache_hit", photo(), "rs:fit:90:0", ok(JPEG, (90, 45)).hits(1)).repeat(2),
        case("concurrent_misses_coalesce", Route::Slow(ms(300), fx::jpeg(400, 200)), "rs:fit:70:0", ok(JPEG, (70, 35)).hits(1)).concurrent(20),
        case("if_none_match_gives_304", photo(), "rs:fit:60:0", ok(JPEG, (60, 30))).revalidate(),
        case("head_request", photo(), "rs:fit:100:0", Expect { content_type: Some(JPEG), ..status(200) }).method("HEAD"),
        // Request errors.
        case("unknown_option", photo(), "frobnicate:1", err(400, "frobnicate")),
        case("bad_argument", photo(), "w:abc", err(400, "width")),
        case("bad_min_width", photo(), "mw:-5", err(400, "min-width")),
        case("bad_min_height", photo(), "mh:1.5", err(400, "min-height")),
        case("bad_zoom", photo(), "z:0", err(400, "zoom")),
        case("bad_zoom_arguments", photo(), "z:1:2:3", err(400, "zoom")),
        case("bad_extend_aspect_ratio_gravity", photo(), "exar:1:sm", err(400, "extend_aspect_ratio")),
        case("bad_padding", photo(), "pd:-1", err(400, "padding")),
        case("bad_rotate", photo(), "rot:45", err(400, "rotate")),
        case("bad_flip", photo(), "fl:maybe", err(400, "flip")),
        case("bad_return_attachment", photo(), "att:yes", err(400, "return_attachment")),
        case("padding_over_the_result_limit", photo(), "pd:9000", err(400, "over the limit")),
        // Validly signed, but no source: the grammar is checked after the
        // signature (an invalid signature is 403 whatever follows).
        case("bad_path", photo(), "", err(400, "bad URL")).sign(Sign::Build(|_| "/w:10".into())),
        case("tampered_signature", photo(), "rs:fit:100:0", err(403, "signature")).sign(Sign::Tampered),
        case("wrong_key", photo(), "rs:fit:100:0", err(403, "signature")).sign(Sign::WrongKey),
        case("padded_signature", photo(), "rs:fit:100:0", err(403, "signature")).sign(Sign::Padded),
        case("unsigned_refused", photo(), "rs:fit:100:0", err(403, "unsigned")).sign(Sign::Unsigned),
        case("source_not_allowed", photo(), "rs:fit:100:0", err(403, "not in the allowed sources")).source("http://127.0.0.2:9/x.jpg"),
        case("scheme_not_allowed", photo(), "rs:fit:100:0", err(403, "scheme")).source("ftp://example.com/x.jpg"),
        case("expired_url", photo(), "rs:fit:100:0/exp:1", err(404, "expired")),
        case("post_not_allowed", photo(), "rs:fit:100:0", err(405, "method")).method("POST"),
        // Upstream failures, negatively cached.
        case("upstream_404", Route::Status(404), "rs:fit:100:0", err(404, "upstream answered 404").hits(1).cache_control("max-age=300")).repeat(1),
        case("upstream_410", Route::Status(410), "rs:fit:100:0", err(404, "410")),
        case("upstream_500", Route::Status(500), "rs:fit:100:0", err(502, "upstream answered 500").hits(1).cache_control("max-age=5")).repeat(1),
        case("upstream_timeout", Route::Slow(Duration::from_secs(4), fx::jpeg(40, 20)), "rs:fit:100:0", err(504, "timed out").within(ms(2500))),
        case("upstream_refused", photo(), "rs:fit:100:0", err(502, "upstream failed")).source("{closed}/x.jpg"),
        case("redirect_followed", Route::Redirect("/c/redirect_target".into()), "rs:fit:100:0", ok(JPEG, (100, 50))),
        case("redirect_loop", Route::Redirect("/c/redirect_loop".into()), "rs:fit:100:0", err(502, "redirects")),
        case("redirect_to_disallowed_host", Route::Redirect("http://127.0.0.2:9/x.jpg".into()), "rs:fit:100:0", err(403, "not in the allowed sources")),
        // Bad sources.
        case("too_large_with_content_length", Route::Large { len: 4_000_000, content_length: true }, "rs:fit:100:0", err(413, "larger than")),
        case("too_large_streamed", Route::Large { len: 4_000_000, content_length: false }, "rs:fit:100:0", err(413, "larger than")),
        // A valid 6000x4000 WebP (24 MP, under the pixel limit) thumbnailed
        // at 2000 px: WebP decodes whole, 96 MB of RGBA, so it is refused
        // from its header against the transform budget (48 MB here),
        // quickly. (JPEG and PNG decode in bands, and fit.)
        case("over_transform_memory_budget", body(fx::webp_blank(6000, 4000), "image/webp"), "rs:fit:2000:0", err(413, "MiB to transform").within(ms(2000))),
        // The same size as a progressive JPEG fits: its coefficients (45 MB
        // at 1/2) are over 24 MiB, so it is decoded in two passes, a band
        // of rows at a time.
        case("large_progressive_jpeg_fits", body(fx::jpeg_blank_progressive(6000, 4000), JPEG), "rs:fit:2000:0", ok(JPEG, (2000, 1333))),
        // A 6000x4000 RGB PNG, 72 MB decoded, shrinks row by row as it
        // decodes, so it fits the same budget.
        case("large_png_shrinks_on_load", body(fx::png_blank(6000, 4000), PNG), "rs:fit:100:0", ok(JPEG, (100, 67))),
        case("too_many_pixels", body(fx::png_header_only(10_000, 10_000), PNG), "rs:fit:100:0", err(413, "pixels")),
        case("html_as_jpeg", body(b"<!doctype html><title>404</title>".to_vec(), JPEG), "rs:fit:100:0", err(415, "not an image")),
        case("empty_body", body(Vec::new(), JPEG), "rs:fit:100:0", err(415, "not an image")),
        case("truncated_jpeg", body(fx::jpeg(400, 200)[..600].to_vec(), JPEG), "rs:fit:100:0", err(415, "decode")),
        case("svg_refused", body(SVG_10X10.to_vec(), "image/svg+xml"), "rs:fit:100:0", err(415, "svg")),
    ];
    v.extend(bad_inputs());
    // Names are the origin paths and the report's rows: keep them unique.
    let mut names: Vec<&str> = v.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), v.len(), "duplicate case names");
    v
}

const SVG_10X10: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>";

/// Extra origin routes some rows point at.
pub fn support_routes() -> Vec<(&'static str, Route)> {
    vec![("/c/redirect_target", photo())]
}

/// The bad-input matrix: hostile images, upstreams and URLs. Each row is
/// answered within 3 s unless it says otherwise, and is sent twice
/// (`repeat`), which shows a failure is answered as a failure again (never
/// cached as a success); after every row the harness checks the server
/// still answers.
#[rustfmt::skip]
fn bad_inputs() -> Vec<Case> {
    let bad = |name, route, expect: Expect| {
        let within = expect.within.unwrap_or(Duration::from_secs(3));
        case(name, route, "rs:fit:100:0", expect.within(within)).repeat(1)
    };
    let bad_url = |name, sign: Sign, expect: Expect| bad(name, photo(), expect).sign(sign);
    let body = |bytes: Vec<u8>, ct: &'static str| Route::Body(bytes, ct);
    let png = fx::png(400, 200);
    vec![
        // Bad images.
        bad("bad_truncated_png", body(png[..png.len() / 2].to_vec(), PNG), err(415, "decode")),
        // Unfiltering is ours (codecs' png_shrink): a filter type PNG lacks is a decode error.
        bad("bad_png_unknown_filter", body(fx::png_unknown_filter(400, 200), PNG), err(415, "filter 7")),
        // The bytes decide, not the upstream's Content-Type.
        bad("bad_wrong_content_type", body(png.clone(), "text/html"), ok(JPEG, (100, 50))),
        bad("bad_png_claims_100000x100000", body(fx::png_header_only(100_000, 100_000), PNG), err(413, "pixels")),
        bad("bad_jpeg_claims_65500x65500", body(fx::jpeg_claiming(65_500, 65_500), JPEG), err(413, "pixels")),
        bad("bad_gif_5000_frames", body(fx::gif_many_frames(200, 100, 5000), GIF), status(200).dims((100, 50))),
        bad("bad_exif_orientation_99", body(fx::jpeg_exif(400, 200, 99), JPEG), ok(JPEG, (100, 50)).pixels(red_top_left)),
        bad("bad_exif_garbage", body(fx::jpeg_exif_garbage(400, 200), JPEG), ok(JPEG, (100, 50)).pixels(red_top_left)),
        // The security review's findings (issue 18): each answered at
        // once, never decoded at the cost the file claims.
        // 421 empty DC scans over 6144x6096 (under the harness's pixel
        // limit): 8.5 s of CPU before the work bound.
        bad("bad_jpeg_scan_flood", body(fx::jpeg_scan_flood(6144, 6096, 421), JPEG), err(413, "scans").within(ms(1000))),
        bad("bad_jpeg_scan_flood_under_the_scan_limit", body(fx::jpeg_scan_flood(6144, 6096, 90), JPEG), err(413, "blocks").within(ms(1000))),
        // 16 passes over a 512x512 CMYK frame: within our decoder's 32, over
        // the 12 allowed the frames jpeg-decoder takes.
        bad("bad_jpeg_cmyk_progressive_scan_flood", body(fx::jpeg_progressive_flood(512, 512, 4, 64), JPEG), err(413, "blocks").within(ms(1000))),
        bad("bad_gif_frame_outside_its_screen", body(fx::gif_frame_outside_screen(8000, 8000), GIF), err(415, "outside")),
        bad("bad_png_iccp_zlib_bomb", body(fx::png_iccp_bomb(64 << 20), PNG), err(413, "colour profile")),
        // A colour profile that does not parse is ignored: the picture is served as it is.
        bad("bad_icc_garbage_profile_ignored", body(fx::jpeg_stripes(400, 200, Some(&[0x5Au8; 3000])), JPEG), ok(JPEG, (100, 50)).pixels(stripes_unchanged_lossy)),
        bad("bad_icc_truncated_profile_ignored", body(fx::png_stripes(400, 200, &fx::display_p3_icc()[..300]), PNG), ok(JPEG, (100, 50)).pixels(stripes_unchanged_lossy)),
        // A header that claims 4 GiB allocates nothing: the profile is read from the bytes there are, and converts.
        bad("bad_icc_profile_claims_4_gib", body(fx::jpeg_stripes(400, 200, Some(&claims_4_gib(fx::display_p3_icc()))), JPEG), ok(JPEG, (100, 50)).pixels(display_p3_in_srgb_lossy)),
        // Bad upstreams.
        bad("bad_huge_content_length", Route::LyingLength { claimed: 1 << 50 }, err(413, "larger than")),
        bad("bad_slow_drip", Route::Drip { every: ms(100), bytes: 100 }, err(504, "timed out")),
        bad("bad_cut_off_mid_body", Route::CutOff { body: fx::jpeg(400, 200), sent: 1000 }, err(502, "upstream failed")),
        bad("bad_redirect_to_metadata_ip", Route::Redirect("http://169.254.169.254/latest/meta-data/".into()), err(403, "source not allowed")),
        // Bad URLs.
        bad_url("bad_url_signature_elsewhere", Sign::Edit(swap_first_two_segments), err(403, "signature")),
        bad_url("bad_url_double_slash", Sign::Edit(|p| p.replacen("/rs:", "//rs:", 1)), err(403, "signature")),
        bad_url("bad_url_percent_encoded_after_signing", Sign::Edit(|p| p.replacen("rs:fit:100", "rs:fit:1%30%30", 1)), err(403, "signature")),
        // Proxies that encode `:` in options are undone, as imgproxy does.
        bad_url("bad_url_colon_encoded_by_a_proxy", Sign::Edit(|p| p.replacen("rs:fit:100:0", "rs%3Afit%3A100%3A0", 1)), ok(JPEG, (100, 50))),
        bad_url("bad_url_percent_encoded_source", Sign::Build(|src| format!("/rs:fit:100:0/plain/{}", encode_colons_and_slashes(src))), ok(JPEG, (100, 50))),
        // Base64, so no client resolves the `..` before edgethumb does.
        bad_url("bad_url_dot_segments_in_source", Sign::Build(dot_segments_in_base64_source), ok(JPEG, (100, 50))),
        bad_url("bad_url_non_utf8_source", Sign::Build(|src| format!("/rs:fit:100:0/plain/{src}%FF%FE")), err(400, "not UTF-8")),
        bad_url("bad_url_very_long", Sign::Build(|src| format!("/rs:fit:100:0/cb:{}/plain/{src}", "a".repeat(20_000))), err(400, "longer than")),
        bad("bad_url_userinfo_trick", photo(), err(403, "credentials")).source("{origin}@127.0.0.2:9/x.jpg"),
    ]
}

fn swap_first_two_segments(path: &str) -> String {
    let mut s: Vec<&str> = path.split('/').collect();
    s.swap(1, 2);
    s.join("/")
}

fn encode_colons_and_slashes(src: &str) -> String {
    src.bytes()
        .map(|b| match b {
            b':' | b'/' => format!("%{b:02X}"),
            _ => (b as char).to_string(),
        })
        .collect()
}

fn dot_segments_in_base64_source(src: &str) -> String {
    edgethumb::request::url_builder::unsigned_path(
        "rs:fit:100:0",
        &src.replacen("/c/", "/c/x/%2e%2e/../c/", 1),
        None,
        edgethumb::request::url_builder::SourceEncoding::Base64,
    )
}
