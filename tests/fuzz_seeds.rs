//! Writes the fuzzers' seed corpora from the conformance table: its source
//! images (decode, transform) and its request paths (url); and ICC
//! profiles made by LittleCMS (icc). Run by
//! `scripts/fuzz`, which sets `EDGETHUMB_FUZZ_SEEDS`; a no-op otherwise.

mod support {
    #![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
    pub mod cases;
    pub mod fixtures;
    pub mod harness;
    pub mod log;
    pub mod origin;
}

use std::path::PathBuf;

use support::cases::{cases, Source};
use support::origin::Route;

#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("EDGETHUMB_FUZZ_SEEDS").map(PathBuf::from) else {
        return;
    };
    for t in ["url", "decode", "transform", "icc"] {
        std::fs::create_dir_all(dir.join(t)).unwrap();
    }
    let write = |target: &str, name: String, bytes: &[u8]| {
        std::fs::write(dir.join(target).join(name), bytes).unwrap();
    };
    // icc: the pixel model's byte (0 RGB, 1 grey, 2 CMYK), then the profile.
    let grey = lcms2::Profile::new_gray(
        &lcms2::CIExyY {
            x: 0.3127,
            y: 0.329,
            Y: 1.0,
        },
        &lcms2::ToneCurve::new(1.8),
    )
    .unwrap()
    .icc()
    .unwrap();
    let profiles = [
        ("adobe-rgb", 0, support::fixtures::adobe_rgb_icc()),
        ("display-p3", 0, support::fixtures::display_p3_icc()),
        ("srgb", 0, support::fixtures::srgb_icc()),
        ("grey-1.8", 1, grey),
        ("cmyk", 2, support::fixtures::cmyk_icc()),
    ];
    for (name, model, icc) in profiles {
        let mut seed = vec![model];
        seed.extend_from_slice(&icc);
        write("icc", name.to_string(), &seed);
    }
    for (i, c) in cases().iter().enumerate() {
        let source = match &c.source {
            Source::Route(_) => format!("http://127.0.0.1:9/c/{}", c.name),
            Source::Literal(s) => s
                .replace("{origin}", "http://127.0.0.1:9")
                .replace("{closed}", "http://127.0.0.1:1"),
        };
        let path = support::harness::case_path(c, &source);
        write("url", format!("{}.txt", c.name), path.as_bytes());
        // The same, unsigned, so the fuzzer starts past the signature.
        if let Some((_, rest)) = path[1..].split_once('/') {
            write(
                "url",
                format!("{}.insecure.txt", c.name),
                format!("/insecure/{rest}").as_bytes(),
            );
        }
        if let Source::Route(Route::Body(bytes, _)) = &c.source {
            // Big fixtures slow the fuzzer down more than they teach it.
            if bytes.len() <= 256 * 1024 {
                write("decode", c.name.to_string(), bytes);
                let mut t = vec![i as u8];
                t.extend_from_slice(bytes);
                write("transform", c.name.to_string(), &t);
            }
        }
    }
}
