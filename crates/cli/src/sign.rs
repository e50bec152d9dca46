//! `edgethumb sign`: prints a signed path, or a full URL with `--base`.

use clap::Args;
use edgethumb::request::url_builder::{self, SourceEncoding};

use crate::settings;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The source image URL.
    pub source: String,
    /// Processing options, `/`-separated, e.g. `rs:fill:300:200/q:80`.
    #[arg(short, long, default_value = "")]
    pub options: String,
    /// Output extension (`jpg`, `png`, `webp`); otherwise negotiated.
    #[arg(short, long)]
    pub ext: Option<String>,
    /// Encode the source as base64url instead of `plain/`.
    #[arg(long)]
    pub base64: bool,
    /// Print a full URL with this origin, e.g. `https://thumbs.example.com`.
    #[arg(long)]
    pub base: Option<String>,
    /// Sign with the published test key (local use only).
    #[arg(long)]
    pub dev: bool,
}

pub fn run(args: &SignArgs) -> Result<String, edgethumb::ConfigError> {
    let cfg = settings::load(args.dev, None)?;
    let enc = if args.base64 {
        SourceEncoding::Base64
    } else {
        SourceEncoding::Plain
    };
    let path = url_builder::unsigned_path(&args.options, &args.source, args.ext.as_deref(), enc);
    let signed = url_builder::sign_path(&path, cfg.keys.first(), cfg.signature_size);
    Ok(match &args.base {
        Some(base) => format!("{}{signed}", base.trim_end_matches('/')),
        None => signed,
    })
}
