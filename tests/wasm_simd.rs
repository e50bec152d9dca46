//! The wasm builds really use wasm SIMD. `.cargo/config.toml` turns on
//! `+simd128` for every wasm target, and `fast_image_resize` picks its
//! simd128 kernels only when that is on at compile time, so a build without
//! it would still work, just several times slower. Counts the SIMD
//! instructions in every function of the Worker, the Spin component and the
//! benchmark's runner.

mod support;

use std::path::PathBuf;

/// (SIMD instructions, all instructions) in every code body, nested core
/// modules of a component included.
fn count(bytes: &[u8]) -> (usize, usize) {
    let (mut simd, mut all) = (0, 0);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut ops = body.get_operators_reader().unwrap();
            while !ops.eof() {
                let op = format!("{:?}", ops.read().unwrap());
                all += 1;
                let lanes = ["V128", "I8x16", "I16x8", "I32x4", "I64x2", "F32x4", "F64x2"];
                if lanes.iter().any(|p| op.starts_with(p)) {
                    simd += 1;
                }
            }
        }
    }
    (simd, all)
}

fn assert_uses_simd(name: &str, path: PathBuf) {
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{name}: {}: {e} (scripts/test builds it)", path.display()));
    let (simd, all) = count(&bytes);
    println!("{name}: {simd} SIMD instructions of {all}");
    // Without simd128 there are none at all.
    assert!(simd > 1000, "{name}: {simd} SIMD instructions");
}

#[test]
fn the_worker_uses_wasm_simd() {
    let root = support::harness::repo_root();
    assert_uses_simd("Worker", root.join("build/worker/index_bg.wasm"));
}

#[test]
fn the_spin_component_uses_wasm_simd() {
    assert_uses_simd("Spin component", support::wasmtime::component());
}

#[test]
fn the_bench_runner_uses_wasm_simd() {
    assert_uses_simd("bench runner", support::native::bench_runner_wasm());
}
