//! Everything about a request that needs no I/O: the signature first,
//! then options, expiry, source policy, negotiation and the cache key.

use super::respond::Vary;
use crate::config::Config;
use crate::error::Error;
use crate::request::client_hints::Hints;
use crate::request::negotiate::{self, Negotiated};
use crate::request::options::{self, Options};
use crate::request::path;
use crate::request::signature;
use crate::request::source_policy;
use crate::seams::cache;

/// Signature placeholders imgproxy accepts for unsigned URLs.
const UNSIGNED_MARKERS: [&str; 3] = ["insecure", "unsafe", "_"];

/// A request that passed every check and can be served.
pub(super) struct Plan {
    pub options: Options,
    pub source: url::Url,
    pub negotiated: Negotiated,
    /// The request headers the response depends on.
    pub vary: Vary,
    pub key: String,
}

/// Parses and checks a request path; `now_unix` decides expiry.
pub(super) fn plan(
    cfg: &Config,
    now_unix: u64,
    raw_path: &str,
    accept: Option<&str>,
    hints: Hints,
) -> Result<Plan, Error> {
    // The signature first: nothing else of an unsigned path is decoded.
    let (sig, signed_path) = path::split_signed(raw_path)?;
    if UNSIGNED_MARKERS.contains(&sig) {
        if !cfg.allow_unsigned {
            return Err(Error::Unsigned);
        }
    } else if !signature::verify(sig, &signed_path, &cfg.keys, cfg.signature_size) {
        return Err(Error::BadSignature);
    }
    let parsed = match cfg.only_presets {
        true => path::parse_presets_only(raw_path)?,
        false => path::parse(raw_path)?,
    };
    let ext = parsed.extension.as_deref();
    // Hints change only the options, so their identity keys the cache.
    let options = options::build_with_hints(&parsed.options, ext, &cfg.presets, hints)?;
    if let Some(exp) = options.expires {
        if exp < now_unix as i64 {
            return Err(Error::Expired);
        }
    }
    let source = source_policy::check(&parsed.source, &cfg.sources)?;
    let negotiated = negotiate::negotiate(options.format, accept, &cfg.auto_formats);
    // `raw` serves the source as it is, whatever the client accepts.
    let format_key = match options.raw {
        true => "raw".to_string(),
        false => negotiated.key(),
    };
    let key = cache::key(&options.identity(), source.as_str(), &format_key);
    let vary = Vary {
        accept: negotiated.varies() && !options.raw,
        client_hints: cfg.client_hints,
    };
    Ok(Plan {
        options,
        source,
        negotiated,
        vary,
        key,
    })
}
