//! The codecs edgethumb owns rather than takes from a crate, and with them
//! all of the project's `unsafe`, so the core can `forbid` it:
//! - [`webp`]: lossy WebP through libwebp (C, FFI);
//! - `wasm_libc`: `malloc`, `calloc`, `free` and `qsort` for libwebp on
//!   wasm32-unknown-unknown (the Worker), which has no libc.
//!
//! Every `unsafe` block carries a `// SAFETY:` note (`clippy::
//! undocumented_unsafe_blocks` is denied). See README.md for what each
//! codec covers and its limits.
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod wasm_libc;
pub mod webp;
