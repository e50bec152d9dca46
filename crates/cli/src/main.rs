//! The native `edgethumb` binary.

mod native;
mod sample;
mod serve;
mod settings;
mod sign;
mod warm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Warm(args) => warm::run(args),
        Command::Sign(args) => match sign::run(&args) {
            Ok(url) => {
                println!("{url}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("edgethumb: configuration error: {e}");
                ExitCode::from(78)
            }
        },
    }
}
