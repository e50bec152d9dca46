//! The result cache: Cloudflare's edge Cache API (`caches.default`).
//!
//! - Keys are the core's cache key (canonical options, source, negotiated
//!   format) under a fixed internal URL, so equivalent signed URLs share an
//!   entry and the signature is not in it.
//! - Writes are queued and handed to `ctx.waitUntil` by the handler, so the
//!   response is not delayed by them.
//! - Every entry carries its own `Cache-Control: max-age`, so negative
//!   entries expire after their short TTLs.
//! - Entries are stored as the core's `cache::stored::to_http` makes them:
//!   status 200 with the real status in a header, since the Cache API
//!   (workerd's local one at least) does not store statuses such as 502
//!   or 413. The core reads the real status back, so a failure is never
//!   served as a success.

use bytes::Bytes;
use edgethumb::seams::cache::stored;
use edgethumb::{Cache, CachedResponse};
use http::HeaderMap;
use worker::Response;

use crate::after_response::AfterResponse;
use crate::{copy_headers, to_js_headers};

/// Never a real host: entries are reachable only through this Worker.
/// Bump the version to orphan every entry after an output-changing release.
const KEY_PREFIX: &str = "https://edgethumb.cache/v1/";

#[derive(Default)]
pub struct EdgeCache {
    /// Writes, for `ctx.waitUntil`.
    pub writes: AfterResponse,
}

fn key_url(key: &str) -> String {
    format!("{KEY_PREFIX}{key}")
}

impl Cache for EdgeCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let mut resp = worker::Cache::default()
            .get(key_url(key), false)
            .await
            .ok()??;
        // Copied out: a cached response's headers are immutable.
        let mut headers = HeaderMap::new();
        copy_headers(resp.headers(), &mut headers);
        let body = resp.bytes().await.ok()?;
        stored::from_http(headers, Bytes::from(body))
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        // Every entry carries its own max-age (set by the core), which the
        // Cache API honours; the core never hands over a TTL of 0.
        let url = key_url(key);
        // The JS response is built inside the write, in the I/O context of
        // the request whose `waitUntil` runs it (a body stream belongs to
        // the context that made it).
        let write = async move {
            let (parts, body) = stored::to_http(&response).into_parts();
            let Ok(resp) = Response::from_bytes(body.to_vec()) else {
                return;
            };
            let resp = resp
                .with_status(parts.status.as_u16())
                .with_headers(to_js_headers(&parts.headers));
            // A failed write only costs a later miss.
            let _ = worker::Cache::default().put(url, resp).await;
        };
        self.writes.push(write);
    }
}
