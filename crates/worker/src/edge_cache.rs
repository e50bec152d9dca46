//! The result cache: Cloudflare's edge Cache API (`caches.default`).
//!
//! - Keys are the core's cache key (canonical options, source, negotiated
//!   format) under a fixed internal URL, so equivalent signed URLs share an
//!   entry and the signature is not in it.
//! - Writes are queued and handed to `ctx.waitUntil` by the handler, so the
//!   response is not delayed by them.
//! - Every entry carries its own `Cache-Control: max-age`, so negative
//!   entries expire after their short TTLs.

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
        let status = StatusCode::from_u16(resp.status_code()).ok()?;
        // Copied out: a cached response's headers are immutable.
        let mut headers = HeaderMap::new();
        copy_headers(resp.headers(), &mut headers);
        let body = resp.bytes().await.ok()?;
        Some(CachedResponse {
            status,
            headers,
            body: Bytes::from(body),
            ttl: 0,
        })
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        // `no-store` failures are not stored; everything else carries its
        // own max-age (set by the core), which the Cache API honours.
        if response.ttl == 0 {
            return;
        }
        let url = key_url(key);
        let Ok(resp) = Response::from_bytes(response.body.to_vec()) else {
            return;
        };
        let resp = resp
            .with_status(response.status.as_u16())
            .with_headers(to_js_headers(&response.headers));
        let write = async move {
            // A failed write only costs a later miss.
            let _ = worker::Cache::default().put(url, resp).await;
        };
        self.pending.borrow_mut().push(write.boxed_local());
    }
}
