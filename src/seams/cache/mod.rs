//! The result cache seam and its policy. Keys come from the canonical plan
//! (normalised options, source URL, negotiated format), never from the raw
//! URL, so equivalent URLs share an entry and the signature is not in it.

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use crate::error::{Error, TtlClass};

pub mod stored;
pub mod tiered;

/// Cache lifetimes in seconds.
#[derive(Debug, Clone)]
pub struct Ttls {
    pub success: u32,
    /// Upstream 404/410 and bad source bytes.
    pub not_found: u32,
    /// Upstream 5xx, timeouts, resets.
    pub upstream_error: u32,
}

impl Default for Ttls {
    fn default() -> Self {
        Ttls {
            success: 31_536_000,
            not_found: 300,
            upstream_error: 10,
        }
    }
}

impl Ttls {
    /// Seconds a failure may be cached; `None` means never.
    pub fn for_failure(&self, e: &Error) -> Option<u32> {
        e.ttl_class().map(|class| match class {
            TtlClass::NotFound => self.not_found,
            TtlClass::UpstreamError { cap } => {
                cap.map_or(self.upstream_error, |c| self.upstream_error.min(c))
            }
        })
    }
}

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

/// Set (naming the failure) on a fallback image served for a failed
/// source: a failure, whatever its status.
pub const FALLBACK_HEADER: &str = "x-edgethumb-fallback";

impl CachedResponse {
    /// A made thumbnail, as opposed to a (negative-cached) failure or a
    /// fallback image: only these go to a persistent result store.
    pub fn is_result(&self) -> bool {
        self.status.is_success() && !self.headers.contains_key(FALLBACK_HEADER)
    }
}

/// Which tier held a cached response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The runtime's cache (the Cache API, the process's memory).
    Cache,
    /// The persistent result store behind it ([`tiered`]).
    Store,
}

/// A result cache. `put` may return before the write lands (a Worker hands
/// it to `waitUntil`). It is only given entries with a TTL over 0: the
/// service keeps "do not store" responses out.
pub trait Cache: 'static {
    /// Whether `put` stores anything: a streamed `raw` keeps a copy of
    /// what it sends only for a cache that does.
    const STORES: bool = true;
    fn get(&self, key: &str) -> impl Future<Output = Option<CachedResponse>>;
    fn put(&self, key: &str, response: CachedResponse) -> impl Future<Output = ()>;

    /// [`Cache::get`], with the tier that answered; a cache of one tier
    /// need not say.
    fn lookup(&self, key: &str) -> impl Future<Output = Option<(CachedResponse, Tier)>> {
        async move { self.get(key).await.map(|r| (r, Tier::Cache)) }
    }

    /// [`Cache::lookup`] without the slow tiers: a second look just after
    /// a whole one missed (a miss handed to another service).
    fn lookup_again(&self, key: &str) -> impl Future<Output = Option<(CachedResponse, Tier)>> {
        self.lookup(key)
    }
}

/// No cache at all (the CDN in front does the caching).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl Cache for NoCache {
    const STORES: bool = false;
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

/// A body as a cache may keep it: its allocation no larger than it. An
/// encoder's buffer is reserved for a predicted size, and a `Bytes` made
/// from it holds the whole reservation for as long as the entry lives: a
/// low-quality thumbnail kept several times its bytes, so a cache bounded
/// by its bodies' lengths was not bounded in memory (the soak test's heap
/// settled at 23 MiB, and at 15 once shrunk). Shrinking in place is a
/// realloc that seldom copies.
pub fn body(mut bytes: Vec<u8>) -> Bytes {
    if bytes.capacity() - bytes.len() > bytes.len() / 16 {
        bytes.shrink_to_fit();
    }
    Bytes::from(bytes)
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
    fn a_kept_body_holds_no_spare_capacity() {
        let mut v = Vec::with_capacity(1 << 20);
        v.extend_from_slice(b"a thumbnail");
        let kept = body(v);
        assert_eq!(&kept[..], b"a thumbnail");
        // Back to a Vec without a copy when nothing else shares it: its
        // capacity is what the cache holds.
        assert!(Vec::from(kept).capacity() < 64);
    }

    #[test]
    fn failures_are_cached_for_their_class_only() {
        let t = Ttls::default();
        assert_eq!(t.for_failure(&Error::UpstreamNotFound(404)), Some(300));
        assert_eq!(t.for_failure(&Error::UpstreamStatus(503)), Some(10));
        assert_eq!(t.for_failure(&Error::NotAnImage), Some(300));
        // Load-dependent, so short; and never past a breaker's retry.
        assert_eq!(t.for_failure(&Error::TransformTimeout(10)), Some(10));
        let open = Error::CircuitOpen {
            host: "h".into(),
            retry_in: 3,
        };
        assert_eq!(t.for_failure(&open), Some(3));
        assert_eq!(t.for_failure(&Error::BadSignature), None);
        assert_eq!(t.for_failure(&Error::Internal("x".into())), None);
    }

    #[test]
    fn ttl_zero_is_never_stored() {
        assert_eq!(cache_control(0), "no-store");
        assert_eq!(cache_control(300), "public, max-age=300");
    }
}
