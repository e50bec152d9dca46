//! The memory a transform will need, estimated from the header alone, so a
//! source over the budget is refused (413) before any decoder allocates.
//! A Cloudflare isolate is killed above 128 MB, and wasm memory never
//! shrinks, so on the edge a refusal is far better than an attempt.
//!
//! The model follows what the decoders actually hold (checked against
//! measured wasm linear memory in `tests/worker_memory.rs`):
//! - JPEG decodes at a DCT scale (1/8..1) into one plane per component,
//!   then to RGB. Progressive JPEGs also keep coefficients until the last
//!   scan: our decoder (`jpeg`) keeps the n×n it needs and, above 1/8, a
//!   64-bit nonzero mask per block; jpeg-decoder (CMYK, 12-bit,
//!   arithmetic) keeps all 64 × i16 (baseline frames at full scale also go
//!   to jpeg-decoder, and keep no coefficients);
//! - other formats decode at full size in their native layout, then
//!   convert to 8-bit RGB(A) unless already there; except large PNGs,
//!   which shrink row by row and never hold the full-size image;
//! - effects and encoding hold a copy or two of the output;
//! - EXIF rotation copies the decoded image; the resize adds its
//!   intermediate (output width × decoded height) and output, and for
//!   images with alpha a premultiplied copy of the source.

use edgethumb_codecs::{jpeg, jpeg_encode};

use super::banded;
use super::decode::Header;
use super::encode::jpeg_rows::JpegRows;
use super::sniff::SourceFormat;

/// What the PNG decoder holds besides its rows: the inflate window and
/// buffers.
const INFLATE_STATE: u64 = 256 * 1024;

/// Rows of the source's width the PNG decoder holds (`png_shrink`): three
/// unfiltered, and up to eight still filtered in its inflate buffer, which
/// is compacted at four times the window and two rows.
const PNG_ROWS: u64 = 11;

/// Bytes one transform of `bytes` is expected to need at its peak, the
/// source itself included. `decoded` is the size the decoder will produce
/// (after DCT scaling), `output` the result size.
pub fn estimate(bytes: &[u8], header: &Header, decoded: (u32, u32), output: (u32, u32)) -> u64 {
    let px = |(w, h): (u32, u32)| w as u64 * h as u64;
    let (decode_peak, decoded_bpp, alpha) = match header.format {
        SourceFormat::Jpeg => {
            let (peak, bpp) = jpeg_peak(bytes, header, decoded);
            (peak, bpp, false)
        }
        _ => {
            let (native, alpha) = native_layout(bytes, header.format);
            let peak = if decoded != (header.width, header.height) {
                // A PNG shrinking row by row (`png_shrink`): the decoder's
                // rows and its inflate state, a full-width row of u32
                // column sums, and the shrunk image.
                let row = header.width as u64 * native;
                PNG_ROWS * row + INFLATE_STATE + header.width as u64 * 16 + px(decoded) * 4
            } else {
                // Converted to 8-bit RGB(A) unless the native layout
                // already is.
                let converted = if native == 3 || native == 4 { 0 } else { 4 };
                px(decoded) * (native + converted)
            };
            (peak, 4, alpha)
        }
    };
    // The resizer premultiplies alpha into a copy of the source.
    let premultiplied = if alpha { px(decoded) * 4 } else { 0 };
    let rotated = if header.orientation != 1 {
        px(decoded) * decoded_bpp
    } else {
        0
    };
    let resize = (output.0 as u64 * decoded.1 as u64 + px(output)) * 4;
    // Effects and the encoder work at the output size: a copy or two.
    let output_work = px(output) * 8;
    bytes.len() as u64 + decode_peak + rotated + premultiplied + resize + output_work
}

/// What an animation of `frames` frames adds to one still frame's
/// estimate: the decoder's canvas, the one kept for disposal and the
/// frame it composites (RGBA each), every finished frame (RGBA at the
/// output size) and the encoded output, budgeted at its worst: lossy WebP
/// at 1 byte a pixel a frame, GIF at 2 (LZW's codes grow to 12 bits for
/// 8-bit indices, and the buffer grows by doubling). Typical outputs are
/// far smaller, so this overshoots (`tests/worker_memory.rs`: 1.3–1.5×
/// the Worker's measured memory) and refuses sooner rather than later.
pub fn animation(header: &Header, output: (u32, u32), frames: u32, gif: bool) -> u64 {
    let canvas = header.width as u64 * header.height as u64 * 4;
    let out = output.0 as u64 * output.1 as u64;
    let encoded = if gif { 2 } else { 1 };
    3 * canvas + frames as u64 * out * (4 + encoded)
}

/// Where the banded resampler's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resampled {
    /// Into an image of this size (before crops, orientation and effects).
    Gathered((u32, u32)),
    /// Into the JPEG encoder as they come (`encode::jpeg_rows`).
    Streamed,
}

/// Bytes the banded path needs at its peak: the source, and its two
/// phases as wasm's heap lays them out (measured natively with
/// `edgethumb-heap-peak`, in the Worker by `tests/worker_memory.rs`):
/// - decoding: what takes the resampled rows ([`Resampled`]: the image,
///   allocated first, or the streaming encoder and its `reserve`d
///   output), what the decoder holds (a band of rows; a progressive
///   JPEG's coefficients) and the resampler's band, all at once;
/// - after: the decoder and the band are freed, which leaves that much
///   free at the top of the heap for orientation, effects and the encoder
///   ([`after_resample`]); only what does not fit there grows memory.
pub fn banded(
    bytes: &[u8],
    header: &Header,
    decoded: (u32, u32),
    resampled: (u32, u32),
    held: Resampled,
    after: &After,
) -> u64 {
    let px = |(w, h): (u32, u32)| w as u64 * h as u64;
    let (decoder, channels) = match header.format {
        SourceFormat::Jpeg => (jpeg_banded(bytes, header, decoded), 3),
        _ => {
            // PNG: the decoder's rows and its inflate state, a full-width
            // row of u32 sums when shrinking, the row handed on.
            let (native, alpha) = native_layout(bytes, header.format);
            let channels = if alpha { 4 } else { 3 };
            let width = header.width as u64;
            let sums = if decoded.0 < header.width {
                width * native * 4
            } else {
                0
            };
            (
                PNG_ROWS * width * native + INFLATE_STATE + sums + decoded.0 as u64 * channels,
                channels,
            )
        }
    };
    let band = banded::peak(decoded.0, decoded.1, resampled, channels as usize);
    let decoding = decoder + band;
    let (held, grown) = match held {
        Resampled::Gathered(size) => {
            let image = px(size) * channels;
            (image, after_resample(image, decoding, after))
        }
        Resampled::Streamed => (JpegRows::held(after.output.0) + after.reserve, 0),
    };
    bytes.len() as u64 + SMALL + held + decoding + grown
}

/// Allocations too small to model one by one: tables, a few rows, state.
const SMALL: u64 = 512 * 1024;

/// Wasm's page: the unit linear memory grows by.
const PAGE: u64 = 64 * 1024;

/// What happens to the resampled image: its `output` size, the effects
/// on it, the encoder, and the bytes reserved for a JPEG result
/// ([`jpeg_reserve`]).
#[derive(Debug, Clone, Copy)]
pub struct After {
    pub output: (u32, u32),
    pub effects: Effects,
    pub encode: Encode,
    pub reserve: u64,
}

/// How much the steps after the resample grow memory, given an `image` of
/// that many bytes at the bottom of the heap and `free` bytes above it.
/// Each step allocates its blocks, then frees its input: a flip or turn
/// copies the image; flattening makes an RGB copy (3 a pixel); then the
/// encoder: ours, progressive, its output, then Y, Cb and Cr's
/// coefficients (two bytes each: 2, ½ and ½ a pixel over whole MCUs);
/// baseline, only its output; PNG's filters and deflate, and
/// libwebp's ARGB and YUV pictures, about 6 and 7 a pixel (its alpha
/// coder: [`webp_extra`]). Blur (RGBA and back, 12 a pixel), sharpen
/// (which also keeps the original and the blur, 20) and extend (an RGBA
/// canvas, 8) are added whole: they are rare on large outputs, and an
/// overestimate there only refuses sooner.
pub fn after_resample(image: u64, free: u64, after: &After) -> u64 {
    let px = after.output.0 as u64 * after.output.1 as u64;
    let e = &after.effects;
    let mut heap = Heap::new(free);
    // A turn's copy is the image's size, so it frees as much as it takes.
    if e.orient {
        heap.alloc(image);
        heap.free(image);
    }
    if e.flatten {
        heap.alloc(3 * px);
        heap.free(image);
    }
    match after.encode {
        Encode::ProgressiveJpeg => {
            let [y, cb, cr] = jpeg_encode::coefficient_bytes(after.output.0, after.output.1);
            for block in [after.reserve, y, cb, cr] {
                heap.alloc(block);
            }
        }
        Encode::BaselineJpeg => heap.alloc(after.reserve),
        Encode::StreamedJpeg => {}
        Encode::Png => heap.alloc(6 * px),
        Encode::Webp => heap.alloc(7 * px),
        // An RGBA copy, the indexed frame and LZW's output.
        Encode::Gif => heap.alloc(7 * px),
        Encode::Avif => heap.alloc(avif(px)),
    }
    let on_top = px
        * (if e.blur { 12 } else { 0 }
            + if e.sharpen { 20 } else { 0 }
            + if e.extend { 8 } else { 0 });
    heap.grown + on_top
}

/// What the AVIF encoder may hold for `px` output pixels. Fitted for
/// rav1e, the encoder before libaom (its source, reconstruction and their
/// lookahead copies at 4:4:4: 24.5 bytes a pixel measured with
/// `edgethumb-heap-peak`, rounded up). libaom at 4:2:0 holds less: in the
/// Worker the whole estimate for an AVIF was 1.9–2.1× what it used
/// (`worker_memory_for_avif`), so this errs on the safe side. libaom's C
/// allocations are not seen natively by `edgethumb-heap-peak`, which counts
/// Rust's allocator; on the Worker they go through it (`wasm_libc`).
pub fn avif(px: u64) -> u64 {
    28 * px + 2 * 1024 * 1024
}

/// Wasm's heap as its allocator (dlmalloc, std's) treats large blocks: a
/// block goes into the smallest free hole it fits, else the free top;
/// when neither holds it, memory grows by the whole block and the free top
/// stays as it was. Linear memory never shrinks, so what grows is kept.
struct Heap {
    top: u64,
    holes: Vec<u64>,
    grown: u64,
}

impl Heap {
    fn new(top: u64) -> Self {
        Heap {
            top,
            holes: Vec::new(),
            grown: 0,
        }
    }

    fn alloc(&mut self, block: u64) {
        let best = (0..self.holes.len())
            .filter(|&i| self.holes[i] >= block)
            .min_by_key(|&i| self.holes[i]);
        match best {
            Some(i) => self.holes[i] -= block,
            None if self.top >= block => self.top -= block,
            // Memory grows in whole 64 KiB pages, with the allocator's
            // own few bytes on top.
            None => self.grown += block.next_multiple_of(PAGE) + PAGE,
        }
    }

    /// A block below the free top (the image the step replaced).
    fn free(&mut self, block: u64) {
        self.holes.push(block);
    }
}

/// What runs on the resampled image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Effects {
    pub orient: bool,
    pub blur: bool,
    pub sharpen: bool,
    pub extend: bool,
    pub flatten: bool,
}

/// The encoder, as far as memory goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encode {
    ProgressiveJpeg,
    BaselineJpeg,
    StreamedJpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

/// Bytes to reserve for a JPEG result of `output` pixels, reserved once so
/// it never grows: a growing buffer is copied, and in wasm both copies
/// are held at once. Predicted from the source's bytes per pixel, since
/// resizing adds no detail: half again a JPEG source's density (a source
/// of lower quality than ours grows), half a PNG's or another lossless
/// source's (lossless costs more than JPEG for the same picture). Between
/// an eighth of a byte a pixel (flat pictures) and two (noise). A result
/// larger than this still works: its buffer grows, as before.
pub fn jpeg_reserve(source_bytes: usize, header: &Header, output: (u32, u32)) -> u64 {
    let out = output.0 as u64 * output.1 as u64;
    let source = (header.width as u64 * header.height as u64).max(1);
    let (num, den) = match header.format {
        SourceFormat::Jpeg => (3, 2),
        _ => (1, 2),
    };
    let predicted = (source_bytes as u128 * out as u128 * num / (source as u128 * den)) as u64;
    predicted.clamp(out / 8, out * 2)
}

/// What our JPEG decoder holds decoding in bands: two rows of MCUs of
/// each component's samples (sequential), or every block's kept
/// coefficients until the last scan (progressive, as in [`jpeg_peak`]),
/// and the converter's rows. Frames it does not cover decode whole with
/// jpeg-decoder: [`jpeg_peak`] and the whole image then.
fn jpeg_banded(bytes: &[u8], header: &Header, decoded: (u32, u32)) -> u64 {
    let Some(frame) = jpeg_frame(bytes).filter(|f| f.ours) else {
        let (peak, _) = jpeg_peak(bytes, header, decoded);
        return peak;
    };
    let (hmax, _) = frame.max_sampling();
    let dw = decoded.0 as u64;
    let e = eighths(header, decoded);
    let mcus_x = (header.width as u64).div_ceil(8 * hmax);
    let rings: u64 = frame
        .components
        .iter()
        .map(|&(ch, cv)| mcus_x * ch as u64 * e * 2 * cv as u64 * e)
        .sum();
    let coefficients = coefficients(&frame, header, e, true);
    let converter = dw * (frame.components.len() as u64 + 3) + dw * 4;
    coefficients + rings + converter
}

/// libwebp codes an alpha plane losslessly (VP8L), holding about 14.5
/// bytes per output pixel beyond the RGBA image: a 2000×2000 RGBA PNG
/// made into a 2000 px WebP peaked at 103 MB of wasm memory, 58 MB above
/// the same made into a PNG. Opaque WebP needs less than `output_work`.
const WEBP_ALPHA_PER_PIXEL: u64 = 16;

/// What a WebP result adds to [`estimate`]: nothing when it can have no
/// alpha; `adds_alpha` is for transparent padding (`extend`).
pub fn webp_extra(bytes: &[u8], header: &Header, output: (u32, u32), adds_alpha: bool) -> u64 {
    let alpha = adds_alpha
        || (header.format != SourceFormat::Jpeg && native_layout(bytes, header.format).1);
    if alpha {
        output.0 as u64 * output.1 as u64 * WEBP_ALPHA_PER_PIXEL
    } else {
        0
    }
}

/// Peak bytes of a JPEG decode, and bytes per pixel of its result.
fn jpeg_peak(bytes: &[u8], header: &Header, decoded: (u32, u32)) -> (u64, u64) {
    let frame = jpeg_frame(bytes).unwrap_or(Frame {
        progressive: true,
        ours: false,
        components: vec![(1, 1); 3],
    });
    let n = frame.components.len().max(1) as u64;
    let (dw, dh) = (decoded.0 as u64, decoded.1 as u64);
    // One plane per component at the decoded size (upper bound: no
    // subsampling), then the RGB result (grey and CMYK convert to RGB).
    let planes = dw * dh * n;
    let result = dw * dh * 3 * if n == 3 { 1 } else { 2 };
    // The DCT scale in eighths, from the decoded size.
    let eighths = eighths(header, decoded);
    // Our decoder (`jpeg`) covers frames of 1 or 3 components: e×e
    // coefficients a block, and above 1/8 a 64-bit mask of which are
    // nonzero. jpeg-decoder (CMYK, 12-bit, arithmetic) keeps all 64, 8
    // bytes fewer than ours at full scale, so this bounds both.
    let ours = matches!(n, 1 | 3);
    let coefficients = coefficients(&frame, header, eighths, ours);
    (coefficients + planes + result, 3)
}

/// The coefficients a progressive frame keeps until its last scan (none
/// for a sequential one). Our decoder: e×e at `eighths`/8 scale, two
/// bytes each, and above 1/8 a 64-bit mask of which are nonzero; for a
/// large frame, the masks and one band of coefficients instead
/// ([`jpeg::progressive_coefficient_bytes`]). Blocks are padded to whole
/// MCUs.
fn coefficients(frame: &Frame, header: &Header, eighths: u64, ours: bool) -> u64 {
    if !frame.progressive {
        return 0;
    }
    let (hmax, vmax) = frame.max_sampling();
    let mcus_x = (header.width as u64).div_ceil(8 * hmax);
    let mcus_y = (header.height as u64).div_ceil(8 * vmax);
    let per_mcu: u64 = frame
        .components
        .iter()
        .map(|&(ch, cv)| ch as u64 * cv as u64)
        .sum();
    let blocks = mcus_x * mcus_y * per_mcu;
    if ours {
        jpeg::progressive_coefficient_bytes(blocks, mcus_x * per_mcu, eighths)
    } else {
        blocks * (eighths * eighths * 2 + 8)
    }
}

impl Frame {
    /// The largest horizontal and vertical sampling factors (the MCU's
    /// size in blocks).
    fn max_sampling(&self) -> (u64, u64) {
        let max = |f: fn(&(u8, u8)) -> u8| self.components.iter().map(f).max().unwrap_or(1).max(1);
        (max(|c| c.0) as u64, max(|c| c.1) as u64)
    }
}

/// The DCT scale in eighths that decodes `header` to `decoded`.
fn eighths(header: &Header, decoded: (u32, u32)) -> u64 {
    let (w, h) = (header.width as u64, header.height as u64);
    let (dw, dh) = (decoded.0 as u64, decoded.1 as u64);
    [1, 2, 4]
        .into_iter()
        .find(|&e| (dw, dh) == ((w * e).div_ceil(8), (h * e).div_ceil(8)))
        .unwrap_or(8)
}

struct Frame {
    progressive: bool,
    /// A frame our decoder takes: Huffman, 8-bit, one or three components.
    ours: bool,
    /// Sampling factors (H, V) per component.
    components: Vec<(u8, u8)>,
}

/// Reads the frame header (SOFn). `None` if it cannot be found in the
/// bytes; the caller then assumes the worst case.
fn jpeg_frame(bytes: &[u8]) -> Option<Frame> {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = bytes.get(i + 4..i + 2 + len)?;
            let count = *seg.get(5)? as usize;
            let mut components = Vec::with_capacity(count);
            for c in 0..count {
                let sampling = *seg.get(6 + c * 3 + 1)?;
                components.push(((sampling >> 4).max(1), (sampling & 0x0F).max(1)));
            }
            let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            let ours =
                matches!(marker, 0xC0..=0xC2) && seg.first() == Some(&8) && matches!(count, 1 | 3);
            return Some(Frame {
                progressive,
                ours,
                components,
            });
        }
        if len < 2 {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// Whether our JPEG decoder takes this frame (Huffman, 8-bit, one or three
/// components), so it decodes in rows; other frames go to jpeg-decoder,
/// whole.
pub fn jpeg_in_rows(bytes: &[u8]) -> bool {
    jpeg_frame(bytes).is_some_and(|f| f.ours)
}

/// Whether a source may decode with alpha (JPEG never does).
pub fn may_have_alpha(bytes: &[u8], format: SourceFormat) -> bool {
    format != SourceFormat::Jpeg && native_layout(bytes, format).1
}

/// Bytes per pixel of the decoder's native output, and whether it may
/// carry alpha.
fn native_layout(bytes: &[u8], format: SourceFormat) -> (u64, bool) {
    match format {
        SourceFormat::Png => {
            // IHDR: bit depth at byte 24, colour type at 25.
            let depth = bytes.get(24).copied().unwrap_or(16);
            let (channels, alpha) = match bytes.get(25).copied().unwrap_or(6) {
                0 => (1, false),
                2 => (3, false),
                // Palette expands to RGB, or RGBA with a tRNS chunk.
                3 => (4, true),
                4 => (2, true),
                _ => (4, true),
            };
            (channels * if depth == 16 { 2 } else { 1 }, alpha)
        }
        // GIF frames and WebP decode to RGBA at most; BMP and others too.
        _ => (4, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: SourceFormat, w: u32, h: u32) -> Header {
        Header {
            format,
            width: w,
            height: h,
            orientation: 1,
            interlaced: false,
        }
    }

    fn sof(marker: u8, w: u16, h: u16, sampling: &[u8]) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, marker];
        let len = 8 + 3 * sampling.len() as u16;
        b.extend_from_slice(&len.to_be_bytes());
        b.push(8);
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&w.to_be_bytes());
        b.push(sampling.len() as u8);
        for (id, s) in sampling.iter().enumerate() {
            b.extend_from_slice(&[id as u8 + 1, *s, 0]);
        }
        b
    }

    #[test]
    fn webp_with_alpha_counts_libwebps_alpha_coder() {
        let mut rgba_png = vec![0u8; 33];
        rgba_png[25] = 6;
        let mut rgb_png = rgba_png.clone();
        rgb_png[25] = 2;
        let h = header(SourceFormat::Png, 2000, 2000);
        let out = (2000, 2000);
        assert_eq!(webp_extra(&rgba_png, &h, out, false), 64_000_000);
        assert_eq!(webp_extra(&rgb_png, &h, out, false), 0);
        assert_eq!(webp_extra(&rgb_png, &h, out, true), 64_000_000);
        let jpeg = sof(0xC0, 2000, 2000, &[0x11]);
        assert_eq!(
            webp_extra(&jpeg, &header(SourceFormat::Jpeg, 2000, 2000), out, false),
            0
        );
    }

    #[test]
    fn progressive_jpeg_counts_the_coefficients_its_decoder_keeps() {
        // 4:2:0: Y 2x2, Cb and Cr 1x1 → 6 blocks per 16x16 MCU; 100² MCUs.
        let progressive = sof(0xC2, 1600, 1600, &[0x22, 0x11, 0x11]);
        let baseline = sof(0xC0, 1600, 1600, &[0x22, 0x11, 0x11]);
        let h = header(SourceFormat::Jpeg, 1600, 1600);
        let blocks = 100 * 100 * 6;
        for (decoded, output, per_block) in [
            // Full scale: all 64 coefficients and the mask.
            ((1600, 1600), (1200, 1200), 64 * 2 + 8),
            // 1/2 and 1/4 (`jpeg`): the n×n needed and a nonzero mask.
            ((800, 800), (500, 500), 16 * 2 + 8),
            ((400, 400), (300, 300), 4 * 2 + 8),
            // 1/8: DC alone.
            ((200, 200), (100, 100), 2),
        ] {
            let extra = estimate(&progressive, &h, decoded, output)
                - estimate(&baseline, &h, decoded, output);
            assert_eq!(extra, blocks * per_block, "{decoded:?}");
        }
        // Baseline: only the scaled planes and the result.
        assert!(estimate(&baseline, &h, (200, 200), (100, 100)) < 1_000_000);
    }

    #[test]
    fn wasm_memory_grows_by_whole_blocks_and_keeps_its_free_top() {
        let mut heap = Heap::new(10 * PAGE);
        // Fits the free top.
        heap.alloc(6 * PAGE);
        assert_eq!((heap.top, heap.grown), (4 * PAGE, 0));
        // Does not: memory grows by the whole block (and a page), and the
        // free top stays for what comes next.
        heap.alloc(5 * PAGE);
        assert_eq!((heap.top, heap.grown), (4 * PAGE, 6 * PAGE));
        // A freed block below is a hole the smallest fitting block takes.
        heap.free(3 * PAGE);
        heap.alloc(2 * PAGE);
        assert_eq!(
            (heap.holes[0], heap.top, heap.grown),
            (PAGE, 4 * PAGE, 6 * PAGE)
        );
    }

    #[test]
    fn a_jpeg_result_reserves_by_the_sources_density() {
        let h = header(SourceFormat::Jpeg, 4000, 3000);
        let out = (2000, 1500);
        // 1 MB over 12 MP: half again its density over 3 MP.
        assert_eq!(jpeg_reserve(1_000_000, &h, out), 375_000);
        // Flat, then noise: an eighth of a byte a pixel, at most two.
        assert_eq!(jpeg_reserve(1_000, &h, out), 375_000);
        assert_eq!(jpeg_reserve(100_000_000, &h, out), 6_000_000);
        // PNG: half its density.
        let png = header(SourceFormat::Png, 4000, 3000);
        assert_eq!(jpeg_reserve(24_000_000, &png, out), 3_000_000);
    }

    #[test]
    fn progressive_encoding_after_the_band_grows_only_past_what_it_freed() {
        let px = 1000 * 1000;
        let after = |free| {
            after_resample(
                3 * px,
                free,
                &After {
                    output: (1000, 1000),
                    effects: Effects::default(),
                    encode: Encode::ProgressiveJpeg,
                    reserve: px / 4,
                },
            )
        };
        // Nothing freed: the output and three components' coefficients
        // over whole MCUs (3.25 bytes a pixel), each block rounded up to
        // pages.
        let all = after(0);
        assert!((3 * px + px / 4..4 * px).contains(&all), "{all}");
        // Room for everything: no growth.
        assert_eq!(after(4 * px), 0);
    }

    #[test]
    fn png_follows_the_native_layout() {
        let mut bytes = vec![0u8; 33];
        bytes[24] = 16;
        bytes[25] = 6;
        let h = header(SourceFormat::Png, 1000, 1000);
        // 16-bit RGBA (8 B/px) converted to RGBA8 (4 B/px), then
        // premultiplied for the resize (4 B/px).
        let est = estimate(&bytes, &h, (1000, 1000), (100, 100));
        assert!((16_000_000..17_000_000).contains(&est), "{est}");
    }

    #[test]
    fn garbage_headers_assume_the_worst_and_never_panic() {
        for bytes in [
            &[][..],
            &[0xFF, 0xD8, 0xFF],
            &[0xFF, 0xD8, 0xFF, 0xC2, 0, 1],
        ] {
            let h = header(SourceFormat::Jpeg, 64, 64);
            assert!(estimate(bytes, &h, (8, 8), (8, 8)) > 0);
        }
    }
}
