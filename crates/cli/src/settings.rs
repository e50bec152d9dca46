//! Configuration for the native binary: the core's `EDGETHUMB_*` loader fed
//! from the process environment, plus dev mode and native-only settings.
//!
//! Dev mode (the published test key) is only ever asked for, with
//! `--dev`: a deployment whose secret failed to mount must not start with
//! a key anyone can sign with.

use edgethumb::config::{DEV_KEY_HEX, DEV_SALT_HEX};
use edgethumb::{Config, ConfigError};

/// Names that, when any is set, mean the operator configured signing.
const SIGNING_VARS: [&str; 5] = [
    "EDGETHUMB_KEY",
    "EDGETHUMB_SALT",
    "IMGPROXY_KEY",
    "IMGPROXY_SALT",
    "EDGETHUMB_ALLOW_UNSIGNED",
];

/// The header every dev-mode response carries.
pub const DEV_HEADER: (&str, &str) = (
    "x-edgethumb-dev",
    "published test key; anyone can sign URLs; never deploy",
);

/// A variable's value; blank counts as unset.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Loads the configuration. With `dev`, the published test key replaces
/// any configured signing (said on stderr), and, if `dev_sources` is given
/// and no allowlist is set, only those sources (the embedded sample) may be
/// fetched, loopback included. Without it, a missing key is an error
/// whose message points at `--dev`.
pub fn load(dev: bool, dev_sources: Option<&str>) -> Result<Config, ConfigError> {
    if dev && SIGNING_VARS.iter().any(|v| env(v).is_some()) {
        eprintln!("edgethumb: --dev: signing with the published test key; EDGETHUMB_KEY and the like are ignored");
    }
    let sample_only = dev && dev_sources.is_some() && env("EDGETHUMB_ALLOWED_SOURCES").is_none();
    Config::from_lookup(|name| {
        if dev {
            match name {
                "EDGETHUMB_KEY" => return Some(DEV_KEY_HEX.into()),
                "EDGETHUMB_SALT" => return Some(DEV_SALT_HEX.into()),
                "IMGPROXY_KEY" | "IMGPROXY_SALT" | "EDGETHUMB_ALLOW_UNSIGNED" => return None,
                "EDGETHUMB_ALLOWED_SOURCES" if sample_only => return dev_sources.map(Into::into),
                "EDGETHUMB_ALLOW_PRIVATE_SOURCES" if sample_only => return Some("true".into()),
                _ => {}
            }
        }
        env(name)
    })
    .map_err(|mut e| {
        if !dev && e.var == "EDGETHUMB_KEY" && e.reason.starts_with("not set") {
            e.reason
                .push_str("; for local use only, `--dev` signs with the published test key");
        }
        e
    })
}

/// Bytes the in-memory result cache may hold (`EDGETHUMB_CACHE_MAX_BYTES`).
pub fn cache_max_bytes() -> Result<u64, ConfigError> {
    match env("EDGETHUMB_CACHE_MAX_BYTES") {
        None => Ok(256 * 1024 * 1024),
        Some(v) => v.trim().parse().map_err(|_| {
            ConfigError::new(
                "EDGETHUMB_CACHE_MAX_BYTES",
                format!("`{v}` is not a number"),
            )
        }),
    }
}

/// Extra certificate authorities for upstream TLS
/// (`EDGETHUMB_UPSTREAM_CA_FILE`, PEM): origins behind a private CA.
/// The public roots stay trusted as well.
pub fn upstream_ca_pem() -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = env("EDGETHUMB_UPSTREAM_CA_FILE") else {
        return Ok(None);
    };
    std::fs::read(&path)
        .map(Some)
        .map_err(|e| ConfigError::new("EDGETHUMB_UPSTREAM_CA_FILE", format!("{path}: {e}")))
}
