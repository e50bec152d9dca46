//! The result cache: Cloudflare's edge Cache API (`caches.default`).
//!
//! - Keys are the core's cache key (canonical options, source, negotiated
//!   format) under a fixed internal URL, so equivalent signed URLs share an
//!   entry and the signature is not in it.
//! - Writes are queued and handed to `ctx.waitUntil` by the handler, so the
//!   response is not delayed by them.
//! - Every entry carries its own `Cache-Control: max-age`, so negative
//!   entries expire after their short TTLs.
//! - Entries are stored with status 200 and their real status in
//!   [`STATUS_HEADER`]: the Cache API (workerd's local one at least) does
//!   not store statuses such as 502 or 413 even with a `max-age`. The core
//!   reads back the real status, so a failure is never served as a success.

use std::cell::RefCell;

use bytes::Bytes;
use edgethumb::{Cache, CachedResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use http::{HeaderMap, StatusCode};
use worker::Response;

use crate::{copy_headers, to_js_headers};

/// Never a real host: entries are reachable only through this Worker.
/// Bump the version to orphan every entry after an output-changing release.
const KEY_PREFIX: &str = "https://edgethumb.cache/v1/";
/// The stored entry's real status.
const STATUS_HEADER: &str = "x-edgethumb-status";

#[derive(Default)]
pub struct EdgeCache {
    pending: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
}

impl EdgeCache {
    /// Writes queued since the last call, for `ctx.waitUntil`.
    pub fn take_pending(&self) -> Vec<LocalBoxFuture<'static, ()>> {
        std::mem::take(&mut *self.pending.borrow_mut())
    }
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
        // Entries this Worker did not write (no status header) are ignored.
        let status = headers
            .remove(STATUS_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
            .and_then(|s| StatusCode::from_u16(s).ok())?;
        let body = resp.bytes().await.ok()?;
        Some(CachedResponse {
            status,
            headers,
            body: Bytes::from(body),
            ttl: 0,
        })
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        // Every entry carries its own max-age (set by the core), which the
        // Cache API honours; the core never hands over a TTL of 0.
        let url = key_url(key);
        // The JS response is built inside the write, in the I/O context of
        // the request whose `waitUntil` runs it (a body stream belongs to
        // the context that made it).
        let write = async move {
            let Ok(resp) = Response::from_bytes(response.body.to_vec()) else {
                return;
            };
            let headers = to_js_headers(&response.headers);
            let _ = headers.set(STATUS_HEADER, response.status.as_str());
            let resp = resp.with_status(200).with_headers(headers);
            // A failed write only costs a later miss.
            let _ = worker::Cache::default().put(url, resp).await;
        };
        self.pending.borrow_mut().push(write.boxed_local());
    }
}
