//! The codecs edgethumb owns rather than takes from a crate, and with them
//! all of the project's `unsafe`, so the core can `forbid` it:
//! - [`jpeg`]: a JPEG decoder at 1/8, 1/4, 1/2 and full scale that keeps
//!   only the coefficients a scale needs (shrink-on-load), and the cost
//!   check every JPEG passes before any decoder runs;
//! - [`jpeg_encode`]: the JPEG encoder for results, baseline written as
//!   rows arrive or progressive with tables made for the picture;
//! - [`png_shrink`]: a non-interlaced PNG box-shrunk row by row as it
//!   decodes, so the full-size image is never resident;
//! - [`webp`]: lossy WebP through libwebp (C, FFI);
//! - [`avif_encode`]: AVIF through libaom (C, FFI) and avif-serialize;
//! - [`avif_decode`] (feature `avif-decode`): AVIF read back by rav1d, for
//!   the tests and the bench to check what we serve;
//! - `cpu`: runtime dispatch of the hot loops to x86-64-v3 (AVX2) where
//!   the CPU has it;
//! - `wasm_libc`: `malloc`, `calloc`, `free` and `qsort` for libwebp on
//!   wasm32-unknown-unknown (the Worker), which has no libc.
//!
//! Every `unsafe` block carries a `// SAFETY:` note (`clippy::
//! undocumented_unsafe_blocks` is denied in Cargo.toml). See README.md for
//! what each codec covers and its limits.

#[cfg(feature = "avif-decode")]
pub mod avif_decode;
pub mod avif_encode;
mod cpu;
pub mod jpeg;
pub mod jpeg_encode;
pub mod png_shrink;
mod wasm_libc;
pub mod webp;

/// Why a decoder gave no image: the same answers from each, so the core
/// maps them once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a file this decoder can read to the end (damaged, cut, or
    /// outside what it covers).
    #[error("{0}")]
    Decode(String),
    /// It would cost more than its limits allow (`jpeg::cost::check`,
    /// `png_shrink::Limits`).
    #[error("{0}")]
    OverLimit(String),
    /// The caller's `stop` said so.
    #[error("stopped")]
    Stopped,
    /// The caller's [`Rows`] failed: its fault, not the file's.
    #[error("{0}")]
    Sink(String),
}

/// Asked by a decoder as it goes (every JPEG scan and row of blocks, every
/// PNG output row); `true` stops it with its `Stopped` error. The core
/// passes its deadline.
pub type Stop<'a> = &'a dyn Fn() -> bool;

/// Where a banded decoder puts its rows, top to bottom, as each band is
/// ready: the caller's resampler, so the full-size image is never held.
pub trait Rows {
    /// Called once, before the first row: the size of the image the rows
    /// make, and bytes per pixel (3 RGB, 4 RGBA).
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError>;
    /// The next row: `width × channels` bytes.
    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError>;
}

/// [`Rows`] gathered into one image: for callers that want it whole.
#[derive(Debug, Default)]
pub struct Gather {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

impl Rows for Gather {
    fn start(&mut self, width: u32, height: u32, channels: usize) -> Result<(), DecodeError> {
        (self.width, self.height, self.channels) = (width, height, channels);
        self.pixels.clear();
        // Keeps a reservation made before the decode ([`Gather::reserved`]).
        self.pixels
            .reserve_exact(width as usize * height as usize * channels);
        Ok(())
    }

    fn row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        self.pixels.extend_from_slice(row);
        Ok(())
    }
}

impl Gather {
    /// A gather whose pixels are allocated now, before the decoder's own
    /// buffers: in wasm, what the decoder frees then lies above the image
    /// and joins the free top of the heap, instead of leaving holes below
    /// it that the encoder's larger blocks do not fit.
    pub fn reserved(bytes: usize) -> Self {
        Gather {
            pixels: Vec::with_capacity(bytes),
            ..Gather::default()
        }
    }

    /// The image, if every row arrived.
    pub fn into_image(self) -> Result<image::DynamicImage, DecodeError> {
        let short = || DecodeError::Decode("decoder gave fewer rows than it declared".into());
        let (w, h) = (self.width, self.height);
        match self.channels {
            3 => image::RgbImage::from_raw(w, h, self.pixels).map(image::DynamicImage::ImageRgb8),
            4 => image::RgbaImage::from_raw(w, h, self.pixels).map(image::DynamicImage::ImageRgba8),
            _ => None,
        }
        .ok_or_else(short)
    }
}

/// A `stop` that never stops.
pub fn never() -> bool {
    false
}
