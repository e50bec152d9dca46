//! Our JPEG encoder (`edgethumb_codecs::jpeg_encode`): any size up to 300
//! px a side, any quality, either mode, rows pushed in pieces of any
//! count, sometimes a piece of the wrong length (which must be refused),
//! sometimes too few rows (`finish` must refuse). What it writes must be
//! the file the whole picture makes in one go, and decode with
//! jpeg-decoder at its size; a flat colour at quality 50 or more must
//! come back as that colour, within YCbCr rounding.
#![no_main]

use edgethumb_codecs::jpeg_encode::{encode_rgb, JpegWriter, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, flags, quality, piece, ref pixels @ ..] = *data else {
        return;
    };
    let (width, height) = (
        1 + w as u32 % 255 + (flags as u32 >> 5) * 6,
        1 + h as u32 % 255,
    );
    let mode = if flags & 1 == 1 {
        Mode::Progressive
    } else {
        Mode::Baseline
    };
    let flat = flags & 2 == 2;
    let wrong_piece = flags & 4 == 4;
    let short = flags & 8 == 8;
    let quality = 1 + quality % 100;
    if pixels.len() < 3 {
        return;
    }
    let len = (width * height * 3) as usize;
    let rgb: Vec<u8> = if flat {
        pixels[..3].iter().cycle().take(len).copied().collect()
    } else {
        pixels.iter().cycle().take(len).copied().collect()
    };
    let whole = encode_rgb(&rgb, width, height, quality, mode, Vec::new())
        .expect("a whole picture of a valid size encodes");

    let row = width as usize * 3;
    let rows_a_piece = 1 + piece as usize % 40;
    let mut writer =
        JpegWriter::new(width, height, quality, mode, Vec::new()).expect("a valid size");
    if wrong_piece {
        assert!(
            writer.push_rows(&rgb[..row - 1]).is_err(),
            "a short row was taken"
        );
    }
    let pushed = if short { len - row } else { len };
    for p in rgb[..pushed].chunks(rows_a_piece * row) {
        writer.push_rows(p).expect("whole rows within the height");
    }
    let result = writer.finish();
    if short {
        assert!(result.is_err(), "finish took fewer rows than the height");
        return;
    }
    assert_eq!(
        result.expect("all rows pushed"),
        whole,
        "pieces changed the file"
    );

    let mut decoder = jpeg_decoder::Decoder::new(&whole[..]);
    let back = decoder.decode().expect("what we wrote decodes");
    let info = decoder.info().expect("decoded");
    assert_eq!((info.width as u32, info.height as u32), (width, height));
    if flat && quality >= 50 {
        for (p, &want) in back.iter().zip(rgb[..3].iter().cycle()) {
            assert!(p.abs_diff(want) <= 6, "flat {want} came back {p}");
        }
    }
});
