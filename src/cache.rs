//! The result cache seam and its policy. Keys come from the canonical plan
//! (normalised options, source URL, negotiated format), never from the raw
//! URL, so equivalent URLs share an entry and the signature is not in it.

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

/// A complete response as stored: successes and (negative-cached) failures
/// alike, each with its own status, so a failure is never read back as a
/// success.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Seconds this entry may be served.
    pub ttl: u32,
}

/// A result cache. `put` may return before the write lands (a Worker hands
/// it to `waitUntil`). It is only given entries with a TTL over 0: the
/// service keeps "do not store" responses out.
pub trait Cache: 'static {
    fn get(&self, key: &str) -> impl Future<Output = Option<CachedResponse>>;
    fn put(&self, key: &str, response: CachedResponse) -> impl Future<Output = ()>;
}

/// No cache at all (the CDN in front does the caching).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl Cache for NoCache {
    async fn get(&self, _key: &str) -> Option<CachedResponse> {
        None
    }
    async fn put(&self, _key: &str, _response: CachedResponse) {}
}

/// The cache key: a hex SHA-256 of the plan's parts.
pub fn key(options_identity: &str, source: &str, negotiated: &str) -> String {
    let mut h = Sha256::new();
    for part in [options_identity, source, negotiated] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The `Cache-Control` of a response cached for `ttl` seconds: the one
/// place it is written, so a TTL of 0 always means "do not store".
pub fn cache_control(ttl: u32) -> String {
    if ttl == 0 {
        return "no-store".to_string();
    }
    format!("public, max-age={ttl}")
}

/// A strong ETag from the body bytes.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_zero_is_never_stored() {
        assert_eq!(cache_control(0), "no-store");
        assert_eq!(cache_control(300), "public, max-age=300");
    }
}
