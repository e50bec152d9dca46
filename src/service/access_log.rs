//! One access-log record per request, built here from the response so
//! every runtime logs the same fields: the native server through
//! `tracing`, a Worker and the Spin component as one JSON line each.
//!
//! No secrets and no source URLs: the path carries the signature and the
//! source, so the record names only the source's host.

use http::header::{self, HeaderMap};
use http::{Method, Response};

use super::{ErrorDetail, ResponseBody, ServerTiming};
use crate::error::{Error, Fault};

/// What the service did for a request, left in the response's extensions
/// for the log.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// `hit`, `store-hit`, `miss` or `coalesced`; `None` when no cache was consulted
    /// (routes, bad URLs, shed misses).
    pub cache: Option<&'static str>,
    pub timing: ServerTiming,
    /// The source's host, once the URL was verified.
    pub host: Option<String>,
    /// The error behind a failure made for this request (not one served
    /// from the cache).
    pub failure: Option<Failure>,
}

/// An error as the log and the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// [`Error::kind`].
    pub kind: &'static str,
    pub fault: Fault,
    /// [`Error::shed_reason`].
    pub shed: Option<&'static str>,
}

impl Failure {
    pub fn of(e: &Error) -> Self {
        Failure {
            kind: e.kind(),
            fault: e.fault(),
            shed: e.shed_reason(),
        }
    }
}

/// The fields of one access-log line.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    /// The client's `X-Request-Id` (or the platform's, such as `cf-ray`)
    /// when it is sane, else one the adapter made.
    pub id: String,
    pub method: String,
    pub status: u16,
    /// `hit`, `store-hit`, `miss`, `coalesced`, or `none`.
    pub cache: &'static str,
    /// Body bytes, when the body is whole (a streamed `raw` miss: none).
    pub bytes: Option<u64>,
    /// From the request to the response's head, in ms.
    pub ms: f64,
    pub fetch_ms: Option<f64>,
    pub decode_ms: Option<f64>,
    pub resize_ms: Option<f64>,
    pub encode_ms: Option<f64>,
    /// Every step, as the response's `Server-Timing` says it.
    pub timing: String,
    pub host: Option<String>,
    /// A failure made for this request (`error` in the line: its kind).
    pub failure: Option<Failure>,
    /// The one-line public reason of a failure.
    pub reason: Option<String>,
    /// What the operator gets beyond it ([`ErrorDetail`]).
    pub detail: Option<String>,
}

/// The longest request id taken from a client.
const MAX_ID: usize = 128;

/// A request id the client or the platform gave: `X-Request-Id`, else
/// `cf-ray`; only short, printable ones, so a client cannot forge log
/// lines through it.
pub fn given_request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "cf-ray"].iter().find_map(|name| {
        let v = headers.get(*name)?.to_str().ok()?;
        let ok = !v.is_empty()
            && v.len() <= MAX_ID
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        ok.then(|| v.to_string())
    })
}

/// The request's id: the one it brings ([`given_request_id`]), else a new
/// one, unique in the process. The prefix is random where std has a
/// random source (native, WASI); a Worker always brings `cf-ray`.
pub fn request_id(headers: &HeaderMap) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::LazyLock;
    static BOOT: LazyLock<u64> = LazyLock::new(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            & 0xffff_ffff
    });
    static NEXT: AtomicU64 = AtomicU64::new(1);
    given_request_id(headers)
        .unwrap_or_else(|| format!("{:08x}-{:x}", *BOOT, NEXT.fetch_add(1, Ordering::Relaxed)))
}

impl AccessRecord {
    /// The record for `resp`, answered in `ms`.
    pub fn new(id: String, method: &Method, resp: &Response<ResponseBody>, ms: f64) -> Self {
        let served = resp.extensions().get::<Served>();
        let timing = served.map(|s| &s.timing);
        let stage = |name: &str| timing.and_then(|t| t.total(name)).map(round);
        let status = resp.status();
        let (bytes, reason) = match resp.body() {
            ResponseBody::Full(b) => {
                let text = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
                let reason = (status.as_u16() >= 400 && text).then(|| {
                    let line = String::from_utf8_lossy(b);
                    line.lines().next().unwrap_or("").to_string()
                });
                (Some(b.len() as u64), reason)
            }
            ResponseBody::Streamed(_) => (None, None),
        };
        AccessRecord {
            id,
            method: method.as_str().to_string(),
            status: status.as_u16(),
            cache: served.and_then(|s| s.cache).unwrap_or("none"),
            bytes,
            ms: round(ms),
            fetch_ms: stage("fetch"),
            // A streamed decode resizes as it goes: its time is the decode's.
            decode_ms: sum(stage("decode"), stage("stream")),
            resize_ms: stage("resize"),
            encode_ms: stage("encode"),
            timing: timing.map(ServerTiming::header_value).unwrap_or_default(),
            host: served.and_then(|s| s.host.clone()),
            failure: served.and_then(|s| s.failure),
            reason,
            detail: resp.extensions().get::<ErrorDetail>().map(|d| d.0.clone()),
        }
    }

    /// Whether an edge runtime logs it: misses and failures, not hits,
    /// which the platform's own request log already counts.
    pub fn worth_an_edge_line(&self) -> bool {
        self.cache == "miss" || self.status >= 400
    }

    /// The record as one JSON object on one line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            // `message`, as the native server's `tracing` JSON names it.
            "message": "access",
            "id": self.id,
            "method": self.method,
            "status": self.status,
            "cache": self.cache,
            "bytes": self.bytes,
            "ms": self.ms,
            "fetch_ms": self.fetch_ms,
            "decode_ms": self.decode_ms,
            "resize_ms": self.resize_ms,
            "encode_ms": self.encode_ms,
            "timing": self.timing,
            "host": self.host,
            "error": self.failure.map(|f| f.kind),
            "reason": self.reason,
            "detail": self.detail,
        })
        .to_string()
    }
}

fn sum(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// To 0.1 ms, as `Server-Timing` says them: both sinks print the same.
fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderValue, StatusCode};

    fn response(status: u16, body: &str, served: Option<Served>) -> Response<ResponseBody> {
        let mut r = Response::new(ResponseBody::Full(Bytes::from(body.to_string())));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(s) = served {
            r.extensions_mut().insert(s);
        }
        r
    }

    #[test]
    fn a_miss_has_its_stages_host_and_size() {
        let mut timing = ServerTiming::default();
        timing
            .dur("fetch", 12.34)
            .dur("decode", 3.0)
            .dur("resize", 1.0)
            .dur("encode", 2.0)
            .desc("cache", "miss");
        let served = Served {
            cache: Some("miss"),
            timing,
            host: Some("img.example".into()),
            failure: None,
        };
        let mut resp = response(200, "0123456789", Some(served));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/webp"));
        let r = AccessRecord::new("r1".into(), &Method::GET, &resp, 20.06);
        assert!(r.worth_an_edge_line());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["cache"], "miss");
        assert_eq!(v["bytes"], 10);
        assert_eq!(v["ms"], 20.1);
        assert_eq!(v["fetch_ms"], 12.3);
        assert_eq!(v["decode_ms"], 3.0);
        assert_eq!(v["host"], "img.example");
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert!(v["timing"].as_str().unwrap().starts_with("fetch;dur=12.3"));
    }

    #[test]
    fn a_failure_has_its_reason_and_a_route_no_cache() {
        let resp = response(403, "invalid signature\n", None);
        let r = AccessRecord::new("r2".into(), &Method::GET, &resp, 0.2);
        assert_eq!(r.cache, "none");
        assert_eq!(r.reason.as_deref(), Some("invalid signature"));
        assert!(r.worth_an_edge_line());
        let hit = response(
            200,
            "x",
            Some(Served {
                cache: Some("hit"),
                ..Served::default()
            }),
        );
        assert!(!AccessRecord::new("r3".into(), &Method::GET, &hit, 0.1).worth_an_edge_line());
    }

    #[test]
    fn only_sane_request_ids_are_taken() {
        let mut h = HeaderMap::new();
        assert_eq!(given_request_id(&h), None);
        h.insert("cf-ray", HeaderValue::from_static("8a1b2c3d4e5f-LHR"));
        assert_eq!(given_request_id(&h).as_deref(), Some("8a1b2c3d4e5f-LHR"));
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(given_request_id(&h).as_deref(), Some("abc-123"));
        h.insert("x-request-id", HeaderValue::from_static("two words"));
        assert_eq!(given_request_id(&h).as_deref(), Some("8a1b2c3d4e5f-LHR"));
        let long = "a".repeat(MAX_ID + 1);
        h.insert("x-request-id", HeaderValue::from_str(&long).unwrap());
        h.remove("cf-ray");
        assert_eq!(given_request_id(&h), None);
        let (a, b) = (request_id(&h), request_id(&h));
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
    }
}
