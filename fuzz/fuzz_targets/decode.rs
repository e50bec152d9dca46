//! Source bytes from anyone: sniffing, header and dimension reading, colour
//! management, and decoding under the limits (small ones, so the fuzzer explores refusals
//! as well as decodes). Invariants: no panic, no abort, and a decoded image
//! is never larger than the header said. Run with a 5-second per-input
//! timeout (`scripts/fuzz`) and no transform deadline, so a source that
//! costs more CPU than its size allows (a JPEG scan flood) is a finding.
#![no_main]

use edgethumb::pipeline::deadline::Deadline;
use edgethumb::pipeline::Limits;
use edgethumb::pipeline::{colour, decode, preflight, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_src_pixels: 4_000_000,
        max_transform_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let Ok(format) = sniff::sniff(data) else {
        return;
    };
    if preflight::check(data, format).is_err() {
        return;
    }
    let Ok(header) = decode::probe(data, format, &limits) else {
        return;
    };
    assert!(header.width as u64 * header.height as u64 <= limits.max_src_pixels);
    // One scale per input (full size, or a JPEG shrink-on-load), so each
    // run does one decode.
    let scale = [1.0, 0.3, 0.1][data.len() % 3];
    // Its colour space too: a CMYK profile converts in the decoder, others
    // after it.
    let to_srgb = colour::ToSrgb::for_source(data, format);
    let decoded = decode::decode(
        data,
        &header,
        scale,
        &limits,
        &Deadline::none(),
        to_srgb.as_ref(),
    );
    if let Ok(mut img) = decoded {
        assert!(img.width() <= header.width && img.height() <= header.height);
        if let Some(to) = &to_srgb {
            let size = (img.width(), img.height());
            to.convert_image(&mut img);
            assert_eq!((img.width(), img.height()), size);
        }
    }
});
