//! The native `edgethumb` binary.

mod bench;
mod exit;
mod log;
mod malloc;
mod metrics;
mod misses;
mod native;
mod result_store;
mod sample;
mod serve;
mod settings;
mod sign;
mod warm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::Exit;

#[derive(Debug, Parser)]
#[command(
    name = "edgethumb",
    version,
    about = "Signed, imgproxy-compatible image thumbnails"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve thumbnails over HTTP (local use and self-hosting).
    Serve(serve::ServeArgs),
    /// Print a signed path or URL.
    Sign(sign::SignArgs),
    /// Warm the cache from a list of thumbnails (sharded, resumable).
    Warm(warm::WarmArgs),
    /// Measure the pipeline (native, wasm under wasmtime and V8) beside
    /// sharp and photon-rs over a folder of images.
    Bench(bench::BenchArgs),
    /// One benchmark measurement in this process (used by `bench`).
    #[command(hide = true)]
    BenchRun { args: Vec<String> },
}

fn main() -> ExitCode {
    malloc::reuse_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Warm(args) => warm::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchRun { args } => match edgethumb_bench::main(&args) {
            0 => Exit::Done.into(),
            _ => Exit::Failed.into(),
        },
        Command::Sign(args) => match sign::run(&args) {
            Ok(url) => {
                println!("{url}");
                Exit::Done.into()
            }
            Err(e) => {
                eprintln!("edgethumb: configuration error: {e}");
                Exit::from(&e).into()
            }
        },
    }
}
