//! Shared test support: the conformance table, its harness, a counting
//! local origin, generated fixtures and target launchers. Each test binary
//! uses a different part, hence `dead_code`.
#![allow(dead_code)]

pub mod browser;
pub mod cases;
pub mod clients;
pub mod fixtures;
pub mod harness;
pub mod native;
pub mod origin;
pub mod wasmtime;
pub mod wrangler;
