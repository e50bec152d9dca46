//! Upstream GETs through the Workers `fetch`, with `cf` options so that
//! Cloudflare's CDN also caches the originals. Redirects are returned, not
//! followed: the core re-checks every hop against the source policy.

use std::collections::HashMap;

use bytes::Bytes;
use edgethumb::seams::fetch::{Body, Fetch, FetchError, UPSTREAM_ACCEPT};
use futures_util::StreamExt;
use worker::{
    AbortController, ByteStream, CfProperties, Headers, Method, Request, RequestInit,
    RequestRedirect,
};

/// Default seconds Cloudflare keeps a fetched original.
const DEFAULT_SOURCE_TTL: i32 = 86_400;

/// How originals are cached at the edge (`EDGETHUMB_SOURCE_CACHE_TTL`,
/// seconds; 0 turns it off).
#[derive(Debug, Clone, Copy)]
pub struct SourceCaching {
    ttl: i32,
}

impl SourceCaching {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let ttl = lookup("EDGETHUMB_SOURCE_CACHE_TTL")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|t| *t >= 0)
            .unwrap_or(DEFAULT_SOURCE_TTL);
        SourceCaching { ttl }
    }
}

pub struct WorkerFetch {
    caching: SourceCaching,
}

impl WorkerFetch {
    pub fn new(caching: SourceCaching) -> Self {
        WorkerFetch { caching }
    }

    fn cf(&self) -> CfProperties {
        let mut cf = CfProperties::new();
        if self.caching.ttl > 0 {
            // `cacheTtlByStatus` is `cacheTtl` per status class: originals
            // are kept, failures and redirects never are.
            cf.cache_everything = Some(true);
            cf.cache_ttl_by_status = Some(HashMap::from([
                ("200-299".to_string(), self.caching.ttl),
                ("300-599".to_string(), -1),
            ]));
        }
        cf
    }
}

/// The body stream. Dropping it (a deadline passed, or the byte limit was
/// hit) aborts the subrequest.
pub struct WorkerBody {
    stream: Option<ByteStream>,
    abort: Option<AbortController>,
}

impl Drop for WorkerBody {
    fn drop(&mut self) {
        if let Some(a) = self.abort.take() {
            a.abort();
        }
    }
}

impl Body for WorkerBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        match stream.next().await {
            None => {
                // Read to the end: nothing left to abort.
                self.abort = None;
                Ok(None)
            }
            Some(Ok(chunk)) => Ok(Some(Bytes::from(chunk))),
            Some(Err(e)) => Err(FetchError::Failed(format!("body read failed: {e}"))),
        }
    }
}

impl Fetch for WorkerFetch {
    type Body = WorkerBody;

    async fn get(&self, url: &url::Url) -> Result<http::Response<WorkerBody>, FetchError> {
        let headers = Headers::new();
        let _ = headers.set("accept", UPSTREAM_ACCEPT);
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual)
            .with_cf_properties(self.cf());
        let req = Request::new_with_init(url.as_str(), &init)
            .map_err(|e| FetchError::Failed(format!("cannot build the request: {e}")))?;
        let abort = AbortController::default();
        let mut resp = worker::Fetch::Request(req)
            .send_with_signal(&abort.signal())
            .await
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        let mut out = http::Response::new(());
        *out.status_mut() = http::StatusCode::from_u16(resp.status_code())
            .map_err(|_| FetchError::Failed(format!("bad status {}", resp.status_code())))?;
        crate::copy_headers(resp.headers(), out.headers_mut());
        // A response without a body (204, some redirects) has no stream.
        let stream = resp.stream().ok();
        Ok(out.map(|()| WorkerBody {
            stream,
            abort: Some(abort),
        }))
    }
}
