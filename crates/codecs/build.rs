//! The Worker's wasm32-unknown-unknown has no libc: the C parts of ours
//! (src/wasm_libc.c, beside the Rust half in src/wasm_libc.rs) are built
//! for that target only, with scripts/wasm-cc (cargo's CC for it).
fn main() {
    println!("cargo::rerun-if-changed=src/wasm_libc.c");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "wasm32-unknown-unknown" {
        cc::Build::new()
            .file("src/wasm_libc.c")
            .flag("-fno-builtin")
            .opt_level(2)
            .compile("edgethumb_wasm_libc");
    }
}
