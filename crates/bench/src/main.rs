//! `edgethumb-bench-runner`: the benchmark's measured work as a program,
//! built for wasm32-wasip1 and run by `edgethumb bench` under wasmtime and
//! Node. Arguments and output: [`edgethumb_bench::main`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(edgethumb_bench::main(&args));
}
