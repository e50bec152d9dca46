//! The conformance table: one row per behaviour (request, origin
//! behaviour, expected response). Every runtime (native server, `wrangler
//! dev`, `wasmtime serve`) runs these same rows; a runtime may skip a row
//! only with a reason (see `Target::skip`).

use std::time::Duration;

use image::DynamicImage;

use super::fixtures as fx;
use super::origin::Route;

pub const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

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
    /// The response must arrive within this time.
    pub within: Option<Duration>,
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

const JPEG: &str = "image/jpeg";
const PNG: &str = "image/png";
const WEBP: &str = "image/webp";

fn photo() -> Route {
    Route::Body(fx::jpeg(400, 200), "image/jpeg")
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
        "EXIF 6: the marker should be top-right",
        img,
    )
}

fn red_bottom_right(img: &DynamicImage) -> Result<(), String> {
    let (x, y) = (img.width() - 3, img.height() - 3);
    check(
        is_red(px(img, x, y)) && !is_red(px(img, 2, 2)),
        "EXIF 3: the marker should be bottom-right",
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

fn red_corner(img: &DynamicImage) -> Result<(), String> {
    let p = px(img, img.width() / 2, 2);
    check(is_red(p), "extend with bg:ff0000 should pad with red", img)
}

fn transparent_corner(img: &DynamicImage) -> Result<(), String> {
    let a = img.to_rgba8().get_pixel(1, 1).0[3];
    check(a == 0, "alpha should survive as transparency", img)
}

/// The table. Sources are 400×200 unless a row says otherwise.
/// The table's first row alone: a template for checks that build their
/// own URLs. Cheap, where [`cases`] makes every fixture (some are tens of
/// megapixels).
pub fn template() -> Case {
    case(
        "fit",
        photo(),
        "rs:fit:100:100",
        Expect {
            vary_accept: Some(true),
            ..ok(JPEG, (100, 50))
        },
    )
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        // Geometry, imgproxy semantics per resize type.
        template(),
        case("fill", photo(), "rs:fill:100:100", ok(JPEG, (100, 100))),
        case(
            "fill_down_small_source",
            photo(),
            "rs:fill-down:800:800",
            ok(JPEG, (200, 200)),
        ),
        case("force", photo(), "rs:force:100:100", ok(JPEG, (100, 100))),
        case(
            "auto_fits_other_orientation",
            photo(),
            "rs:auto:50:100",
            ok(JPEG, (50, 25)),
        ),
        case(
            "auto_fills_same_orientation",
            photo(),
            "rs:auto:100:20",
            ok(JPEG, (100, 20)),
        ),
        case(
            "zero_height_from_aspect",
            photo(),
            "rs:fit:80:0",
            ok(JPEG, (80, 40)),
        ),
        case(
            "no_enlarge_by_default",
            photo(),
            "rs:fit:800:800",
            ok(JPEG, (400, 200)),
        ),
        case("enlarge", photo(), "rs:fit:800:800:1", ok(JPEG, (800, 400))),
        case(
            "extend_pads_white_for_jpeg",
            photo(),
            "rs:fit:100:100:0:1",
            Expect {
                pixels: Some(white_top_band),
                ..ok(JPEG, (100, 100))
            },
        ),
        case(
            "extend_with_background",
            photo(),
            "rs:fit:100:100:0:1/bg:ff0000",
            Expect {
                pixels: Some(red_corner),
                ..ok(JPEG, (100, 100))
            },
        ),
        case("dpr", photo(), "rs:fit:100:100/dpr:2", ok(JPEG, (200, 100))),
        case(
            "size_and_width_aliases",
            photo(),
            "s:120:0/w:120",
            ok(JPEG, (120, 60)),
        ),
        case(
            "crop_before_resize",
            photo(),
            "c:200:200:nowe/rs:fit:50:50",
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (50, 50))
            },
        ),
        case(
            "gravity_focus_point",
            photo(),
            "rs:fill:50:100/g:fp:0:0",
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (50, 100))
            },
        ),
        case(
            "gravity_smart",
            photo(),
            "rs:fill:100:100/g:sm",
            ok(JPEG, (100, 100)),
        ),
        case("blur", photo(), "rs:fit:100:0/bl:2", ok(JPEG, (100, 50))),
        case("sharpen", photo(), "rs:fit:100:0/sh:1", ok(JPEG, (100, 50))),
        case("quality", photo(), "rs:fit:100:0/q:30", ok(JPEG, (100, 50))),
        case("preset", photo(), "pr:thumb", ok(JPEG, (60, 30))),
        case(
            "filename",
            photo(),
            "rs:fit:100:0/fn:cat",
            Expect {
                header: Some(("content-disposition", "cat.jpg")),
                ..ok(JPEG, (100, 50))
            },
        ),
        case(
            "cachebuster",
            photo(),
            "rs:fit:100:0/cb:v2",
            ok(JPEG, (100, 50)),
        ),
        case(
            "expires_in_the_future",
            photo(),
            "rs:fit:100:0/exp:4102444800",
            ok(JPEG, (100, 50)),
        ),
        // Source formats.
        case(
            "jpeg_progressive",
            Route::Body(fx::jpeg_progressive(400, 200), "image/jpeg"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "jpeg_grayscale",
            Route::Body(fx::jpeg_gray(400, 200), "image/jpeg"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "jpeg_cmyk",
            Route::Body(fx::jpeg_cmyk(400, 200), "image/jpeg"),
            "rs:fit:100:0",
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (100, 50))
            },
        ),
        case(
            "exif_orientation_6",
            Route::Body(fx::jpeg_exif(400, 200, 6), "image/jpeg"),
            "rs:fit:100:100",
            Expect {
                pixels: Some(red_top_right),
                ..ok(JPEG, (50, 100))
            },
        ),
        case(
            "exif_orientation_3",
            Route::Body(fx::jpeg_exif(400, 200, 3), "image/jpeg"),
            "rs:fit:100:100",
            Expect {
                pixels: Some(red_bottom_right),
                ..ok(JPEG, (100, 50))
            },
        ),
        case(
            "exif_ignored_without_auto_rotate",
            Route::Body(fx::jpeg_exif(400, 200, 6), "image/jpeg"),
            "rs:fit:100:100/ar:0",
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (100, 50))
            },
        ),
        case(
            "png_opaque_to_jpeg",
            Route::Body(fx::png(400, 200), "image/png"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "png_alpha_stays_png",
            Route::Body(fx::png_alpha(400, 200), "image/png"),
            "rs:fit:100:0",
            Expect {
                pixels: Some(transparent_corner),
                ..ok(PNG, (100, 50))
            },
        ),
        case(
            "png_16_bit",
            Route::Body(fx::png16(400, 200), "image/png"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "png_palette",
            Route::Body(fx::png_palette(400, 200), "image/png"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "gif_first_frame",
            Route::Body(fx::gif(400, 200), "image/gif"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "webp_source",
            Route::Body(fx::webp(400, 200), "image/webp"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "bmp_source",
            Route::Body(fx::bmp(400, 200), "image/bmp"),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        // Output formats and negotiation.
        case(
            "format_option_png",
            photo(),
            "rs:fit:100:0/f:png",
            Expect {
                vary_accept: Some(false),
                ..ok(PNG, (100, 50))
            },
        ),
        case(
            "format_webp",
            photo(),
            "rs:fit:100:0/f:webp",
            ok(WEBP, (100, 50)),
        ),
        Case {
            accept: Some(CHROME_ACCEPT),
            ..case(
                "accept_negotiates_webp",
                photo(),
                "rs:fit:100:0",
                Expect {
                    vary_accept: Some(true),
                    ..ok(WEBP, (100, 50))
                },
            )
        },
        Case {
            accept: Some("image/png,image/*;q=0.8"),
            ..case(
                "accept_without_webp_gets_jpeg",
                photo(),
                "rs:fit:100:0",
                ok(JPEG, (100, 50)),
            )
        },
        Case {
            accept: Some(CHROME_ACCEPT),
            ..case(
                "explicit_format_beats_accept",
                photo(),
                "rs:fit:100:0/f:jpg",
                Expect {
                    vary_accept: Some(false),
                    ..ok(JPEG, (100, 50))
                },
            )
        },
        Case {
            accept: Some(CHROME_ACCEPT),
            ..case(
                "alpha_with_webp_accept",
                Route::Body(fx::png_alpha(400, 200), "image/png"),
                "rs:fit:100:0",
                ok(WEBP, (100, 50)),
            )
        },
        Case {
            ext: Some("png"),
            ..case(
                "extension_sets_format_plain",
                photo(),
                "rs:fit:100:0",
                ok(PNG, (100, 50)),
            )
        },
        Case {
            ext: Some("webp"),
            base64: true,
            ..case(
                "base64_source_with_extension",
                photo(),
                "rs:fit:100:0",
                ok(WEBP, (100, 50)),
            )
        },
        // Caching, coalescing and revalidation.
        Case {
            repeat: 2,
            ..case(
                "repeat_is_a_cache_hit",
                photo(),
                "rs:fit:90:0",
                Expect {
                    origin_hits: Some(1),
                    ..ok(JPEG, (90, 45))
                },
            )
        },
        Case {
            concurrent: 20,
            ..case(
                "concurrent_misses_coalesce",
                Route::Slow(Duration::from_millis(300), fx::jpeg(400, 200)),
                "rs:fit:70:0",
                Expect {
                    origin_hits: Some(1),
                    ..ok(JPEG, (70, 35))
                },
            )
        },
        Case {
            revalidate: true,
            ..case(
                "if_none_match_gives_304",
                photo(),
                "rs:fit:60:0",
                ok(JPEG, (60, 30)),
            )
        },
        Case {
            method: "HEAD",
            ..case(
                "head_request",
                photo(),
                "rs:fit:100:0",
                Expect {
                    status: 200,
                    content_type: Some(JPEG),
                    ..Expect::default()
                },
            )
        },
        // Request errors.
        case(
            "unknown_option",
            photo(),
            "frobnicate:1",
            err(400, "frobnicate"),
        ),
        case("bad_argument", photo(), "w:abc", err(400, "width")),
        // Validly signed, but no source: the grammar is checked after the
        // signature (an invalid signature is 403 whatever follows).
        Case {
            sign: Sign::Build(|_| "/w:10".into()),
            ..case("bad_path", photo(), "", err(400, "bad URL"))
        },
        Case {
            sign: Sign::Tampered,
            ..case(
                "tampered_signature",
                photo(),
                "rs:fit:100:0",
                err(403, "signature"),
            )
        },
        Case {
            sign: Sign::WrongKey,
            ..case("wrong_key", photo(), "rs:fit:100:0", err(403, "signature"))
        },
        Case {
            sign: Sign::Padded,
            ..case(
                "padded_signature",
                photo(),
                "rs:fit:100:0",
                err(403, "signature"),
            )
        },
        Case {
            sign: Sign::Unsigned,
            ..case(
                "unsigned_refused",
                photo(),
                "rs:fit:100:0",
                err(403, "unsigned"),
            )
        },
        Case {
            source: Source::Literal("http://127.0.0.2:9/x.jpg"),
            ..case(
                "source_not_allowed",
                photo(),
                "rs:fit:100:0",
                err(403, "not in the allowed sources"),
            )
        },
        Case {
            source: Source::Literal("ftp://example.com/x.jpg"),
            ..case(
                "scheme_not_allowed",
                photo(),
                "rs:fit:100:0",
                err(403, "scheme"),
            )
        },
        case(
            "expired_url",
            photo(),
            "rs:fit:100:0/exp:1",
            err(404, "expired"),
        ),
        Case {
            method: "POST",
            ..case(
                "post_not_allowed",
                photo(),
                "rs:fit:100:0",
                err(405, "method"),
            )
        },
        // Upstream failures, negatively cached.
        Case {
            repeat: 1,
            ..case(
                "upstream_404",
                Route::Status(404),
                "rs:fit:100:0",
                Expect {
                    origin_hits: Some(1),
                    cache_control: Some("max-age=300"),
                    ..err(404, "upstream answered 404")
                },
            )
        },
        case(
            "upstream_410",
            Route::Status(410),
            "rs:fit:100:0",
            err(404, "410"),
        ),
        Case {
            repeat: 1,
            ..case(
                "upstream_500",
                Route::Status(500),
                "rs:fit:100:0",
                Expect {
                    origin_hits: Some(1),
                    cache_control: Some("max-age=5"),
                    ..err(502, "upstream answered 500")
                },
            )
        },
        case(
            "upstream_timeout",
            Route::Slow(Duration::from_secs(4), fx::jpeg(40, 20)),
            "rs:fit:100:0",
            Expect {
                within: Some(Duration::from_millis(2500)),
                ..err(504, "timed out")
            },
        ),
        Case {
            source: Source::Literal("{closed}/x.jpg"),
            ..case(
                "upstream_refused",
                photo(),
                "rs:fit:100:0",
                err(502, "upstream failed"),
            )
        },
        case(
            "redirect_followed",
            Route::Redirect("/c/redirect_target".into()),
            "rs:fit:100:0",
            ok(JPEG, (100, 50)),
        ),
        case(
            "redirect_loop",
            Route::Redirect("/c/redirect_loop".into()),
            "rs:fit:100:0",
            err(502, "redirects"),
        ),
        case(
            "redirect_to_disallowed_host",
            Route::Redirect("http://127.0.0.2:9/x.jpg".into()),
            "rs:fit:100:0",
            err(403, "not in the allowed sources"),
        ),
        // Bad sources.
        case(
            "too_large_with_content_length",
            Route::Large {
                len: 4_000_000,
                content_length: true,
            },
            "rs:fit:100:0",
            err(413, "larger than"),
        ),
        case(
            "too_large_streamed",
            Route::Large {
                len: 4_000_000,
                content_length: false,
            },
            "rs:fit:100:0",
            err(413, "larger than"),
        ),
        // A valid 6000x4000 progressive JPEG (24 MP, under the pixel limit)
        // thumbnailed at 2000 px: decoded at 1/2, it would hold ~72 MB of
        // DCT coefficients, so it is refused from its header against the
        // transform budget (48 MB here), quickly.
        case(
            "over_transform_memory_budget",
            Route::Body(fx::jpeg_blank_progressive(6000, 4000), "image/jpeg"),
            "rs:fit:2000:0",
            Expect {
                within: Some(Duration::from_secs(2)),
                ..err(413, "MiB to transform")
            },
        ),
        // A 6000x4000 RGB PNG, 72 MB decoded, shrinks row by row as it
        // decodes, so it fits the same budget.
        case(
            "large_png_shrinks_on_load",
            Route::Body(fx::png_blank(6000, 4000), "image/png"),
            "rs:fit:100:0",
            ok(JPEG, (100, 67)),
        ),
        case(
            "too_many_pixels",
            Route::Body(fx::png_header_only(10_000, 10_000), "image/png"),
            "rs:fit:100:0",
            err(413, "pixels"),
        ),
        case(
            "html_as_jpeg",
            Route::Body(b"<!doctype html><title>404</title>".to_vec(), "image/jpeg"),
            "rs:fit:100:0",
            err(415, "not an image"),
        ),
        case(
            "empty_body",
            Route::Body(Vec::new(), "image/jpeg"),
            "rs:fit:100:0",
            err(415, "not an image"),
        ),
        case(
            "truncated_jpeg",
            Route::Body(fx::jpeg(400, 200)[..600].to_vec(), "image/jpeg"),
            "rs:fit:100:0",
            err(415, "decode"),
        ),
        case(
            "svg_refused",
            Route::Body(
                b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>".to_vec(),
                "image/svg+xml",
            ),
            "rs:fit:100:0",
            err(415, "svg"),
        ),
    ];
    v.extend(bad_inputs());
    // Names are the origin paths and the report's rows: keep them unique.
    let mut names: Vec<&str> = v.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), v.len(), "duplicate case names");
    v
}

/// Extra origin routes some rows point at.
pub fn support_routes() -> Vec<(&'static str, Route)> {
    vec![("/c/redirect_target", photo())]
}

/// The bad-input matrix: hostile images, upstreams and URLs. Each row has
/// a time bound; `repeat: 1` shows a failure is answered as a failure
/// again (never cached as a success); after every row the harness checks
/// the server still answers.
fn bad_inputs() -> Vec<Case> {
    let quick = Duration::from_secs(3);
    let bad = |name, route, expect: Expect| Case {
        repeat: 1,
        ..case(
            name,
            route,
            "rs:fit:100:0",
            Expect {
                within: Some(expect.within.unwrap_or(quick)),
                ..expect
            },
        )
    };
    let png = fx::png(400, 200);
    let bad_url = |name, sign: Sign, expect: Expect| Case {
        sign,
        ..bad(name, photo(), expect)
    };
    vec![
        // Bad images.
        bad(
            "bad_truncated_png",
            Route::Body(png[..png.len() / 2].to_vec(), PNG),
            err(415, "decode"),
        ),
        // The bytes decide, not the upstream's Content-Type.
        bad(
            "bad_wrong_content_type",
            Route::Body(png.clone(), "text/html"),
            ok(JPEG, (100, 50)),
        ),
        bad(
            "bad_png_claims_100000x100000",
            Route::Body(fx::png_header_only(100_000, 100_000), PNG),
            err(413, "pixels"),
        ),
        bad(
            "bad_jpeg_claims_65500x65500",
            Route::Body(fx::jpeg_claiming(65_500, 65_500), JPEG),
            err(413, "pixels"),
        ),
        bad(
            "bad_gif_5000_frames",
            Route::Body(fx::gif_many_frames(200, 100, 5000), "image/gif"),
            Expect {
                status: 200,
                dims: Some((100, 50)),
                ..Expect::default()
            },
        ),
        bad(
            "bad_exif_orientation_99",
            Route::Body(fx::jpeg_exif(400, 200, 99), JPEG),
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (100, 50))
            },
        ),
        bad(
            "bad_exif_garbage",
            Route::Body(fx::jpeg_exif_garbage(400, 200), JPEG),
            Expect {
                pixels: Some(red_top_left),
                ..ok(JPEG, (100, 50))
            },
        ),
        // The security review's findings (issue 18): each answered at
        // once, never decoded at the cost the file claims.
        bad(
            "bad_jpeg_scan_flood",
            // 421 empty DC scans over 6144x6096 (under the harness's pixel
            // limit): 8.5 s of CPU before the work bound.
            Route::Body(fx::jpeg_scan_flood(6144, 6096, 421), JPEG),
            Expect {
                within: Some(Duration::from_secs(1)),
                ..err(413, "scans")
            },
        ),
        bad(
            "bad_jpeg_scan_flood_under_the_scan_limit",
            Route::Body(fx::jpeg_scan_flood(6144, 6096, 90), JPEG),
            Expect {
                within: Some(Duration::from_secs(1)),
                ..err(413, "blocks")
            },
        ),
        bad(
            "bad_gif_frame_outside_its_screen",
            Route::Body(fx::gif_frame_outside_screen(8000, 8000), "image/gif"),
            err(415, "outside"),
        ),
        bad(
            "bad_png_iccp_zlib_bomb",
            Route::Body(fx::png_iccp_bomb(64 << 20), PNG),
            err(413, "colour profile"),
        ),
        // Bad upstreams.
        bad(
            "bad_huge_content_length",
            Route::LyingLength { claimed: 1 << 50 },
            err(413, "larger than"),
        ),
        bad(
            "bad_slow_drip",
            Route::Drip {
                every: Duration::from_millis(100),
                bytes: 100,
            },
            err(504, "timed out"),
        ),
        bad(
            "bad_cut_off_mid_body",
            Route::CutOff {
                body: fx::jpeg(400, 200),
                sent: 1000,
            },
            err(502, "upstream failed"),
        ),
        bad(
            "bad_redirect_to_metadata_ip",
            Route::Redirect("http://169.254.169.254/latest/meta-data/".into()),
            err(403, "source not allowed"),
        ),
        // Bad URLs.
        bad_url(
            "bad_url_signature_elsewhere",
            Sign::Edit(|p| {
                let mut s: Vec<&str> = p.split('/').collect();
                s.swap(1, 2);
                s.join("/")
            }),
            err(403, "signature"),
        ),
        bad_url(
            "bad_url_double_slash",
            Sign::Edit(|p| p.replacen("/rs:", "//rs:", 1)),
            err(403, "signature"),
        ),
        bad_url(
            "bad_url_percent_encoded_after_signing",
            Sign::Edit(|p| p.replacen("rs:fit:100", "rs:fit:1%30%30", 1)),
            err(403, "signature"),
        ),
        // Proxies that encode `:` in options are undone, as imgproxy does.
        bad_url(
            "bad_url_colon_encoded_by_a_proxy",
            Sign::Edit(|p| p.replacen("rs:fit:100:0", "rs%3Afit%3A100%3A0", 1)),
            ok(JPEG, (100, 50)),
        ),
        bad_url(
            "bad_url_percent_encoded_source",
            Sign::Build(|src| {
                let enc: String = src
                    .bytes()
                    .map(|b| match b {
                        b':' | b'/' => format!("%{b:02X}"),
                        _ => (b as char).to_string(),
                    })
                    .collect();
                format!("/rs:fit:100:0/plain/{enc}")
            }),
            ok(JPEG, (100, 50)),
        ),
        bad_url(
            "bad_url_dot_segments_in_source",
            // Base64, so no client resolves the `..` before edgethumb does.
            Sign::Build(|src| {
                edgethumb::url_builder::unsigned_path(
                    "rs:fit:100:0",
                    &src.replacen("/c/", "/c/x/%2e%2e/../c/", 1),
                    None,
                    edgethumb::url_builder::SourceEncoding::Base64,
                )
            }),
            ok(JPEG, (100, 50)),
        ),
        bad_url(
            "bad_url_non_utf8_source",
            Sign::Build(|src| format!("/rs:fit:100:0/plain/{src}%FF%FE")),
            err(400, "not UTF-8"),
        ),
        bad_url(
            "bad_url_very_long",
            Sign::Build(|src| format!("/rs:fit:100:0/cb:{}/plain/{src}", "a".repeat(20_000))),
            err(400, "longer than"),
        ),
        Case {
            source: Source::Literal("{origin}@127.0.0.2:9/x.jpg"),
            ..bad("bad_url_userinfo_trick", photo(), err(403, "credentials"))
        },
    ]
}
