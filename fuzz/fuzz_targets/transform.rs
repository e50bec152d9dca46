//! The whole transform for a small output: the first byte picks the
//! options, the rest is the source image. Invariants: no panic, no abort,
//! no internal error, and the output has the size it reports. Animated
//! GIF and WebP sources are made as animations of up to 8 frames.
#![no_main]

use edgethumb::pipeline::Limits;
use edgethumb::pipeline::{run, Job};
use edgethumb::request::negotiate::negotiate;
use edgethumb::request::options::{build, Format, Presets, RawOption};
use edgethumb::Error;
use libfuzzer_sys::fuzz_target;

const OPTIONS: [&str; 16] = [
    "rs:fit:64:64",
    "rs:fill:48:48/g:sm",
    "rs:fill:40:20/g:nowe",
    "rs:force:30:90",
    "rs:auto:64:32/el:1",
    "w:50/bl:2/sh:1",
    "rs:fit:64:64/ex:1/bg:ff0000",
    "c:20:20:ce/rs:fit:32:32",
    "rs:fit:32:0/dpr:2/f:png",
    "rs:fit:32:0/f:webp/q:50",
    "rs:fill:64:64/g:fp:0.2:0.8/ar:0",
    "rs:fit:64:64/f:jpg/q:10",
    "rs:fit:48:0/f:gif",
    // Small: rav1e's time grows with the output.
    "rs:fit:24:24/ex:1/f:avif",
    // trim decodes whole at full size, then plans again.
    "t:10/rs:fit:48:0",
    "t:0::1:1/rs:fill:32:32/pd:2:3/rot:90/fl:1/pix:4",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, image)) = data.split_first() else {
        return;
    };
    let text = OPTIONS[pick as usize % OPTIONS.len()];
    let raw: Vec<RawOption> = text.split('/').filter_map(RawOption::split).collect();
    let Ok(options) = build(&raw, None, &Presets::default()) else {
        return;
    };
    let negotiated = negotiate(
        options.format,
        Some("image/webp,*/*"),
        &[Format::Webp, Format::Jpeg],
    );
    let job = Job {
        options,
        negotiated,
        limits: Limits {
            max_src_pixels: 4_000_000,
            max_result_dimension: 512,
            max_transform_bytes: 64 * 1024 * 1024,
            max_animation_frames: 8,
            ..Limits::default()
        },
        default_quality: 80,
        format_quality: Vec::new(),
        skip_processing: Vec::new(),
        watermark: None,
    };
    match run(image, &job, || 0.0) {
        Ok(out) => {
            assert!(out.width > 0 && out.height > 0 && out.width <= 1024 && out.height <= 1024);
            assert!(!out.body.is_empty());
        }
        Err(Error::Internal(e)) => panic!("internal error: {e}"),
        Err(_) => {}
    }
});
