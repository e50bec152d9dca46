//! Fetching the original: the adapter supplies one plain GET (no redirects
//! followed); the core owns the policy around it, so every runtime behaves
//! the same:
//! - one deadline for the whole fetch, redirects and body included;
//! - every redirect target re-checked against the source policy;
//! - the body counted while it streams, never trusting `Content-Length`.

use std::future::Future;
use std::pin::pin;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{CONTENT_LENGTH, LOCATION};
use http::{HeaderMap, Response};
use url::Url;

use std::time::Duration;

use crate::error::Error;
use crate::request::source_policy::{self, SourcePolicy};
use crate::resilience::shedding::Claim;
use crate::seams::runtime::Runtime;

/// The `Accept` header every adapter sends upstream.
pub const UPSTREAM_ACCEPT: &str = "image/*,*/*;q=0.8";

/// What one fetch of a source may take.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Body bytes, counted as they arrive.
    pub max_bytes: u64,
    /// The whole fetch, redirects and body included.
    pub timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_bytes: 20 * 1024 * 1024,
            timeout: Duration::from_millis(4000),
        }
    }
}

/// A transport failure, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// A response body read chunk by chunk; `None` at the end.
pub trait Body {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, FetchError>>;
}

/// One GET of one URL, without following redirects. The adapter only
/// converts its platform's response; the core reads every header it needs
/// (`Location`, `Content-Length`) itself.
pub trait Fetch: 'static {
    type Body: Body;
    fn get(&self, url: &Url) -> impl Future<Output = Result<Response<Self::Body>, FetchError>>;
}

/// The declared body length, if there is exactly one well-formed one.
/// Only a hint: the body is counted as it arrives either way.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

/// Fetches the source bytes within the configured limits, counting them
/// against `claim` as they arrive.
pub async fn fetch_source<F: Fetch, R: Runtime>(
    fetch: &F,
    runtime: &R,
    url: Url,
    limits: &FetchLimits,
    policy: &SourcePolicy,
    claim: &mut Claim,
) -> Result<Bytes, Error> {
    let timeout = limits.timeout;
    let work = pin!(async {
        let source = open_source(fetch, url, limits, policy).await?;
        read_whole(source, claim).await
    });
    let timer = pin!(runtime.sleep(timeout));
    match select(work, timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(Error::UpstreamTimeout(timeout.as_millis() as u64)),
    }
}

/// An upstream answer past its redirects and status checks, its body not
/// yet read. Its chunks are counted against the byte limit as they come,
/// and a body shorter than its declared length is an error.
pub struct SourceBody<B> {
    body: B,
    declared: Option<u64>,
    received: u64,
    max_bytes: u64,
    timeout_ms: u64,
}

impl<B: Body> SourceBody<B> {
    /// The `Content-Length` the upstream declared (at most the byte limit).
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// Whether every declared byte is in (a server that knows the length
    /// may stop reading here, before the end is seen).
    pub fn complete(&self) -> bool {
        self.declared == Some(self.received)
    }

    /// The next chunk; `None` at the end of a complete body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        let chunk = self
            .body
            .next_chunk()
            .await
            .map_err(|e| transport_error(e, self.timeout_ms))?;
        let Some(chunk) = chunk else {
            return match self.declared {
                Some(n) if n != self.received => Err(Error::UpstreamFailed(format!(
                    "body ended after {} of {n} bytes",
                    self.received
                ))),
                _ => Ok(None),
            };
        };
        self.received += chunk.len() as u64;
        if self.received > self.max_bytes {
            return Err(Error::SourceTooLarge(self.max_bytes));
        }
        Ok(Some(chunk))
    }
}

fn transport_error(e: FetchError, timeout_ms: u64) -> Error {
    match e {
        FetchError::Timeout => Error::UpstreamTimeout(timeout_ms),
        FetchError::Failed(m) => Error::UpstreamUnreachable(m),
    }
}

/// Follows redirects (each target re-checked against the source policy)
/// to a 2xx whose declared length is within the limit. No deadline of its
/// own: the caller's covers this and the body.
pub async fn open_source<F: Fetch>(
    fetch: &F,
    mut url: Url,
    limits: &FetchLimits,
    policy: &SourcePolicy,
) -> Result<SourceBody<F::Body>, Error> {
    let max_bytes = limits.max_bytes;
    let timeout_ms = limits.timeout.as_millis() as u64;
    let mut redirects = 0u8;
    loop {
        let resp = fetch
            .get(&url)
            .await
            .map_err(|e| transport_error(e, timeout_ms))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            301 | 302 | 303 | 307 | 308 => {
                if redirects >= policy.max_redirects {
                    return Err(Error::TooManyRedirects(policy.max_redirects));
                }
                redirects += 1;
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Error::UpstreamFailed("redirect without Location".into()))?;
                let next = url
                    .join(location)
                    .map_err(|_| Error::UpstreamFailed("redirect to an invalid URL".into()))?;
                source_policy::check_url(&next, policy)?;
                url = next;
                continue;
            }
            404 | 410 => return Err(Error::UpstreamNotFound(status)),
            s => return Err(Error::UpstreamStatus(s)),
        }
        let declared = content_length(resp.headers());
        if declared.is_some_and(|n| n > max_bytes) {
            return Err(Error::SourceTooLarge(max_bytes));
        }
        return Ok(SourceBody {
            body: resp.into_body(),
            declared,
            received: 0,
            max_bytes,
            timeout_ms,
        });
    }
}

/// The whole body in one buffer.
async fn read_whole<B: Body>(mut source: SourceBody<B>, claim: &mut Claim) -> Result<Bytes, Error> {
    // The declared length is reserved at once (one allocation, no copies
    // as it grows), so the reservation is claimed before any byte
    // arrives: slow origins that each declare 20 MB cannot hold more than
    // the budget (in wasm, memory once grown stays).
    let cap = source.declared.unwrap_or(64 * 1024).min(source.max_bytes);
    claim.grow(cap.saturating_sub(claim.held()))?;
    let mut buf = Vec::with_capacity(cap as usize);
    while let Some(chunk) = source.next().await? {
        let len = (buf.len() + chunk.len()) as u64;
        claim.grow(len.saturating_sub(claim.held()))?;
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONTENT_LENGTH, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_declared_length_is_one_well_formed_number() {
        assert_eq!(content_length(&headers(&["1234"])), Some(1234));
        assert_eq!(content_length(&headers(&[" 7 "])), Some(7));
        for bad in [&[][..], &["-1"], &["12x"], &[""], &["1", "2"]] {
            assert_eq!(content_length(&headers(bad)), None, "{bad:?}");
        }
    }
}
