//! Shared test support for the runtime tier (`crates/e2e`): the conformance
//! table, its harness, the test origin over HTTP, generated fixtures and
//! the launchers of each runtime. The fast tier (`tests/conformance.rs`)
//! declares the part it needs itself. Each test binary uses a different
//! part, hence `dead_code`.
#![allow(dead_code)]

pub mod browser;
pub mod cases;
pub mod clients;
pub mod fixtures;
pub mod harness;
pub mod log;
pub mod moto;
pub mod native;
pub mod origin;
pub mod over_http;
pub mod wasmtime;
pub mod wrangler;

/// Every file under `dir`, however deep.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
