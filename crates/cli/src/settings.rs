//! Configuration for the native binary: the core's `EDGETHUMB_*` loader fed
//! from the process environment, plus dev mode and native-only settings.

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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether nothing about signing is configured: then the binary runs in
/// dev mode with the published test key.
pub fn dev_mode() -> bool {
    SIGNING_VARS.iter().all(|v| env(v).is_none())
}

/// Loads the configuration. In dev mode the published test key is used,
/// and, if `dev_sources` is given and no allowlist is set, only those
/// sources (the embedded sample) may be fetched, loopback included.
pub fn load(dev_sources: Option<&str>) -> Result<Config, ConfigError> {
    let dev = dev_mode();
    let sample_only = dev && dev_sources.is_some() && env("EDGETHUMB_ALLOWED_SOURCES").is_none();
    Config::from_lookup(|name| {
        if dev {
            match name {
                "EDGETHUMB_KEY" => return Some(DEV_KEY_HEX.into()),
                "EDGETHUMB_SALT" => return Some(DEV_SALT_HEX.into()),
                "EDGETHUMB_ALLOWED_SOURCES" if sample_only => return dev_sources.map(Into::into),
                "EDGETHUMB_ALLOW_PRIVATE_SOURCES" if sample_only => return Some("true".into()),
                _ => {}
            }
        }
        env(name)
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
