//! The response as sent: a stored entry plus per-request headers (cache
//! status, `Server-Timing`, 304 for a matching `If-None-Match`), and the
//! one-line error bodies.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::access_log::{Failure, Served};
use super::ServerTiming;
use crate::error::Error;
use crate::request::client_hints;
use crate::seams::cache::{self, CachedResponse};

/// `hit`, `store-hit` (the persistent result store behind the cache), `miss`
/// or `coalesced` (joined another request's miss).
pub const CACHE_STATUS_HEADER: &str = "x-edgethumb-cache";

/// Set on a response (in its extensions) when the failure behind it has
/// more to say than its public line: adapters log it.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Builds the response for a stored entry: adds per-request headers and
/// answers `If-None-Match` with 304.
pub(super) fn finish(
    stored: &CachedResponse,
    cache_status: &'static str,
    timing: &ServerTiming,
    if_none_match: Option<&HeaderValue>,
) -> Response<Bytes> {
    // Copy the stored headers; they are shared (and immutable on Workers).
    let mut headers = stored.headers.clone();
    per_request(&mut headers, cache_status, timing);
    let not_modified = stored.status == StatusCode::OK
        && match (if_none_match, headers.get(header::ETAG)) {
            (Some(inm), Some(etag)) => etag_matches(inm, etag),
            _ => false,
        };
    let (status, body) = if not_modified {
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_DISPOSITION);
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        (stored.status, stored.body.clone())
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp.extensions_mut().insert(served(cache_status, timing));
    resp
}

/// For the access log: the cache status and the steps.
pub(super) fn served(cache_status: &'static str, timing: &ServerTiming) -> Served {
    Served {
        cache: Some(cache_status),
        timing: timing.clone(),
        host: None,
        failure: None,
    }
}

/// The headers every answer gets for itself: `Server-Timing` and the
/// cache status.
pub(super) fn per_request(headers: &mut HeaderMap, cache_status: &str, timing: &ServerTiming) {
    insert(
        headers,
        HeaderName::from_static("server-timing"),
        &timing.header_value(),
    );
    insert(
        headers,
        HeaderName::from_static(CACHE_STATUS_HEADER),
        cache_status,
    );
}

/// `If-None-Match` uses weak comparison (RFC 9110 §13.1.2).
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(inm) = if_none_match.to_str() else {
        return false;
    };
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    inm.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// A plain-text error: one line, the status from [`Error::status`], cached
/// for `ttl` seconds if any.
pub fn error_response(e: &Error, ttl: Option<u32>, vary: Vary) -> Response<Bytes> {
    error_response_with(e, ttl, vary, None)
}

/// [`error_response`] with the configured status for upstream failures.
pub(super) fn error_response_with(
    e: &Error,
    ttl: Option<u32>,
    vary: Vary,
    upstream_failure: Option<StatusCode>,
) -> Response<Bytes> {
    let mut resp = text_response(e.status_with(upstream_failure), &e.public_line());
    resp.extensions_mut().insert(Served {
        failure: Some(Failure::of(e)),
        ..Served::default()
    });
    let h = resp.headers_mut();
    insert(
        h,
        header::CACHE_CONTROL,
        &cache::cache_control(ttl.unwrap_or(0)),
    );
    if let Some(secs) = e.retry_after() {
        insert(h, header::RETRY_AFTER, &secs.to_string());
    }
    common_headers(h, vary);
    resp
}

pub(super) fn text_response(status: StatusCode, line: &str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(format!("{line}\n")));
    *resp.status_mut() = status;
    insert(
        resp.headers_mut(),
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    resp
}

/// The request headers a response depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vary {
    /// The format was negotiated from `Accept`.
    pub accept: bool,
    /// Client hints are on: they may have set `dpr` and `width`.
    pub client_hints: bool,
}

pub(super) fn common_headers(h: &mut HeaderMap, vary: Vary) {
    insert(h, header::CONTENT_SECURITY_POLICY, "script-src 'none'");
    insert(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let mut names = Vec::new();
    if vary.accept {
        names.push("Accept");
    }
    if vary.client_hints {
        names.push(client_hints::HEADER_LIST);
        // Asks the browser to send them on its next requests to this host.
        insert(
            h,
            HeaderName::from_static("accept-ch"),
            client_hints::HEADER_LIST,
        );
    }
    if !names.is_empty() {
        insert(h, header::VARY, &names.join(", "));
    }
}

pub(super) fn insert(h: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values are built here from checked parts; anything unprintable is dropped.
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}
