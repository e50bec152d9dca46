//! A miss's work: breaker, fetch, transform (or the fallback image), made
//! into the response to store, failures included, each with its TTL.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::StatusCode;

use super::access_log::Failure;
use super::plan::Plan;
use super::respond::{common_headers, error_response_with, insert, Vary};
use super::{Inner, ServerTiming};
use crate::config::{AuxImage, Config};
use crate::error::Error;
use crate::pipeline::watermark::WatermarkImage;
use crate::pipeline::{self, Job};
use crate::request::source_policy::SourcePolicy;
use crate::resilience::breaker;
use crate::seams::cache::{self, Cache, CachedResponse, FALLBACK_HEADER};
use crate::seams::fetch::{self, Fetch};
use crate::seams::runtime::{OffloadError, Runtime};

/// A produced response, shared by every request that coalesced on it.
pub(super) struct Produced {
    pub response: CachedResponse,
    /// `Server-Timing` entries for the work done.
    pub timing: ServerTiming,
    /// For the operator's log ([`ErrorDetail`]).
    pub detail: Option<String>,
    /// The error behind a failure (or a fallback image), for the log.
    pub failure: Option<Failure>,
}

/// Fetches and transforms; every failure becomes a response too.
pub(super) async fn produce<F: Fetch, C: Cache, R: Runtime>(
    inner: &Inner<F, C, R>,
    plan: Plan,
) -> Produced {
    let cfg = &inner.config;
    let clock = inner.runtime.clock();
    let vary = plan.vary;
    // A watermark that cannot be had fails the request: an image meant to
    // carry one is never served (or cached) without it.
    let watermark = match (&plan.options.watermark, &cfg.watermark) {
        (Some(_), Some(wm)) if !plan.options.raw => {
            let Some(bytes) = aux_image(inner, &wm.image, &inner.watermark_image).await else {
                // Not cached: the next request tries the operator's URL again.
                let e = Error::UpstreamFailed("the watermark image could not be fetched".into());
                return failure_for(e, None, cfg, vary, ServerTiming::default());
            };
            Some(WatermarkImage {
                bytes,
                opacity: wm.opacity,
            })
        }
        _ => None,
    };
    let job = &Reply::new(cfg, &plan, watermark);
    let t0 = clock();
    let ticket = match admit(inner, &plan.source, job, t0).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    // Held until the transform is done: the source bytes live that long.
    let mut claim = inner.budget.claim();
    let fetched = fetch::fetch_source(
        &inner.fetch,
        &inner.runtime,
        plan.source,
        &cfg.fetch,
        &cfg.sources,
        &mut claim,
    )
    .await;
    ticket.record(breaker::counts_as_failure(&fetched), clock());
    let fetch_ms = clock() - t0;
    let mut timing = ServerTiming::default();
    timing.dur("fetch", fetch_ms);
    let bytes = match fetched {
        Ok(b) => b,
        Err(e) => return fail_or_fallback(inner, e, job, timing).await,
    };
    if cfg.svg_passthrough && pipeline::sniff::looks_like_svg(&bytes) {
        return svg_as_is(bytes, cfg, timing);
    }
    match transform(inner, bytes, job.job.clone()).await {
        Ok(out) => image_response(out, job, StatusCode::OK, cfg.ttls.success, timing),
        Err(e) => fail_or_fallback(inner, e, job, timing).await,
    }
}

/// The breaker's leave to fetch from `source`'s host; refused, the
/// answer (the fallback image, or the error).
pub(super) async fn admit<'a, F: Fetch, C, R: Runtime>(
    inner: &'a Inner<F, C, R>,
    source: &url::Url,
    job: &Reply,
    now: f64,
) -> Result<breaker::Ticket<'a>, Produced> {
    match inner.breaker.admit(&breaker::host_key(source), now) {
        Ok(t) => Ok(t),
        Err(e) => {
            let mut timing = ServerTiming::default();
            timing.desc("fetch", "circuit-open");
            Err(fail_or_fallback(inner, e, job, timing).await)
        }
    }
}

/// A job and what its response needs besides the image.
pub(super) struct Reply {
    pub job: Job,
    /// The request headers the response depends on.
    pub vary: Vary,
    /// The file name offered (`Content-Disposition`), without extension.
    name: String,
}

impl Reply {
    pub fn new(cfg: &Config, plan: &Plan, watermark: Option<WatermarkImage>) -> Reply {
        let job = Job {
            options: plan.options.clone(),
            negotiated: plan.negotiated,
            limits: cfg.limits.clone(),
            default_quality: cfg.default_quality,
            format_quality: cfg.format_quality.clone(),
            skip_processing: cfg.skip_processing.clone(),
            watermark,
        };
        let name = download_name(&job.options, &plan.source);
        Reply {
            job,
            vary: plan.vary,
            name,
        }
    }
}

/// `disposition; filename="name.ext"`: printable ASCII only (quotes,
/// backslashes and controls dropped, anything else `_`), and the exact
/// name as RFC 6266's `filename*` when it is not plain ASCII, which every
/// browser reads first.
fn content_disposition(disposition: &str, name: &str, ext: &str) -> String {
    let ascii: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let mut value = format!("{disposition}; filename=\"{ascii}.{ext}\"");
    if !name.is_ascii() {
        let exact = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        value.push_str(&format!("; filename*=UTF-8''{exact}.{ext}"));
    }
    value
}

/// imgproxy's download name: `filename` if given, else the source's last
/// path segment without its extension, else `image`.
fn download_name(o: &crate::request::options::Options, source: &url::Url) -> String {
    if let Some(name) = &o.filename {
        return name.clone();
    }
    let last = source
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    let stem = match decoded.rsplit_once('.') {
        Some((stem, _)) => stem,
        None => &decoded,
    };
    match stem.is_empty() {
        true => "image".to_string(),
        false => stem.to_string(),
    }
}

async fn transform<F, C, R: Runtime>(
    inner: &Inner<F, C, R>,
    bytes: Bytes,
    job: Job,
) -> Result<pipeline::Output, Error> {
    let clock = inner.runtime.clock();
    inner
        .runtime
        .offload(move || pipeline::run(&bytes, &job, clock))
        .await
        .unwrap_or_else(|e| match e {
            OffloadError::Busy {
                reason,
                retry_after,
            } => Err(Error::Overloaded {
                what: reason,
                retry_after,
            }),
            OffloadError::Lost => Err(Error::Internal("transform worker lost".into())),
        })
}

/// A failure of the upstream or of its bytes, answered with the configured
/// fallback image (made with the same options, so it fits the `<img>`)
/// when there is one: with its own status, its own short TTL and
/// `x-edgethumb-fallback` naming the failure. Otherwise the error.
pub(super) async fn fail_or_fallback<F: Fetch, C, R: Runtime>(
    inner: &Inner<F, C, R>,
    e: Error,
    job: &Reply,
    timing: ServerTiming,
) -> Produced {
    let cfg = &inner.config;
    if let Some(fb) = &cfg.fallback {
        if matches!(e.fault(), crate::Fault::Upstream | crate::Fault::Source) {
            let ttl = fb
                .ttl
                .unwrap_or_else(|| cfg.ttls.for_failure(&e).unwrap_or(0));
            let made = match aux_image(inner, &fb.image, &inner.fallback_image).await {
                Some(bytes) => transform(inner, bytes, job.job.clone()).await.ok(),
                None => None,
            };
            if let Some(out) = made {
                let status = e.status_with(cfg.upstream_failure_status);
                let mut timing = timing;
                timing.desc("fallback", status.as_u16().to_string());
                let mut p = image_response(out, job, fb.status, ttl, timing);
                insert(
                    &mut p.response.headers,
                    HeaderName::from_static(FALLBACK_HEADER),
                    &format!("{} {}", status.as_u16(), e.public_line()),
                );
                p.failure = Some(Failure::of(&e));
                return p;
            }
        }
    }
    failure(e, cfg, job.vary, timing)
}

/// An operator's image (the fallback, the watermark): embedded, or by URL
/// fetched once with the source limits (it is the operator's own URL, so
/// any public host may serve it), then kept in `slot`. `None` while it
/// cannot be had; the next request tries again.
async fn aux_image<F: Fetch, C, R: Runtime>(
    inner: &Inner<F, C, R>,
    image: &AuxImage,
    slot: &std::cell::RefCell<Option<Bytes>>,
) -> Option<Bytes> {
    let url = match image {
        AuxImage::Data(bytes) => return Some(bytes.clone()),
        AuxImage::Url(url) => url,
    };
    if let Some(b) = slot.borrow().as_ref() {
        return Some(b.clone());
    }
    let cfg = &inner.config;
    let any_public_host = SourcePolicy {
        allowed_prefixes: Vec::new(),
        ..cfg.sources.clone()
    };
    let mut claim = inner.budget.claim();
    let bytes = fetch::fetch_source(
        &inner.fetch,
        &inner.runtime,
        url.clone(),
        &cfg.fetch,
        &any_public_host,
        &mut claim,
    )
    .await
    .ok()?;
    pipeline::sniff::sniff(&bytes).ok()?;
    *slot.borrow_mut() = Some(bytes.clone());
    Some(bytes)
}

/// A transformed image, cached for `ttl` seconds.
fn image_response(
    out: pipeline::Output,
    job: &Reply,
    status: StatusCode,
    ttl: u32,
    mut timing: ServerTiming,
) -> Produced {
    for &(step, ms) in &out.timings {
        timing.dur(step, ms);
    }
    let (mime, ext) = (out.format.mime(), out.format.extension());
    image_bytes(cache::body(out.body), (mime, ext), job, status, ttl, timing)
}

/// An image's bytes with its headers: type, cache time, ETag, a download
/// name with the format's extension.
fn image_bytes(
    body: Bytes,
    kind: (&str, &str),
    job: &Reply,
    status: StatusCode,
    ttl: u32,
    timing: ServerTiming,
) -> Produced {
    let mut headers = image_headers(kind, job, ttl);
    insert(&mut headers, header::ETAG, &cache::etag(&body));
    Produced {
        response: CachedResponse {
            status,
            headers,
            body,
            ttl,
        },
        timing,
        detail: None,
        failure: None,
    }
}

/// An image's headers but its ETag (which needs the whole body).
pub(super) fn image_headers((mime, ext): (&str, &str), job: &Reply, ttl: u32) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, mime);
    insert(
        &mut headers,
        header::CACHE_CONTROL,
        &cache::cache_control(ttl),
    );
    // As imgproxy: always a name, so "Save image as" offers a sensible one.
    let disposition = match job.job.options.return_attachment {
        true => "attachment",
        false => "inline",
    };
    insert(
        &mut headers,
        header::CONTENT_DISPOSITION,
        &content_disposition(disposition, &job.name, ext),
    );
    common_headers(&mut headers, job.vary);
    headers
}

/// What `raw` serves, known from the source's first bytes: an image (by
/// its bytes: any format the `image` crate knows, AVIF, HEIC) or an SVG
/// (as [`svg_as_is`] serves it), so this origin never serves a page.
/// With the headers, the kind's name for `Server-Timing`.
pub(super) fn raw_headers(
    head: &[u8],
    job: &Reply,
    cfg: &Config,
) -> Result<(HeaderMap, &'static str), Error> {
    if pipeline::sniff::looks_like_svg(head) {
        return Ok((svg_headers(cfg), "svg"));
    }
    let kind = pipeline::sniff::image_type(head).ok_or(Error::NotAnImage)?;
    Ok((image_headers(kind, job, cfg.ttls.success), kind.1))
}

/// An SVG source, served as it is: vector, so no resizing is needed, and
/// `Content-Security-Policy: script-src 'none'; sandbox` keeps its scripts
/// and forms inert.
/// It does not depend on `Accept`, so no `Vary`.
fn svg_as_is(bytes: Bytes, cfg: &Config, mut timing: ServerTiming) -> Produced {
    let mut headers = svg_headers(cfg);
    insert(&mut headers, header::ETAG, &cache::etag(&bytes));
    Produced {
        response: CachedResponse {
            status: StatusCode::OK,
            headers,
            body: bytes,
            ttl: cfg.ttls.success,
        },
        timing: {
            timing.desc("svg", "passthrough");
            timing
        },
        detail: None,
        failure: None,
    }
}

/// [`svg_as_is`]'s headers but its ETag.
fn svg_headers(cfg: &Config) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, "image/svg+xml");
    insert(
        &mut headers,
        header::CACHE_CONTROL,
        &cache::cache_control(cfg.ttls.success),
    );
    common_headers(&mut headers, Vary::default());
    // `sandbox` too: an SVG opened as a document is then a unique origin
    // with no forms, popups or navigation (as camo and svg-hush do).
    insert(
        &mut headers,
        header::CONTENT_SECURITY_POLICY,
        "script-src 'none'; sandbox",
    );
    headers
}

pub(super) fn failure(e: Error, cfg: &Config, vary: Vary, timing: ServerTiming) -> Produced {
    let ttl = cfg.ttls.for_failure(&e);
    failure_for(e, ttl, cfg, vary, timing)
}

/// A failure cached for `ttl` seconds (`None`: not at all).
fn failure_for(
    e: Error,
    ttl: Option<u32>,
    cfg: &Config,
    vary: Vary,
    timing: ServerTiming,
) -> Produced {
    let resp = error_response_with(&e, ttl, vary, cfg.upstream_failure_status);
    let (parts, body) = resp.into_parts();
    Produced {
        response: CachedResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            ttl: ttl.unwrap_or(0),
        },
        timing,
        detail: e.detail().map(str::to_string),
        failure: Some(Failure::of(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_always_a_valid_header() {
        assert_eq!(
            content_disposition("inline", "cat", "jpg"),
            "inline; filename=\"cat.jpg\""
        );
        assert_eq!(
            content_disposition("attachment", "a\"b\\c\n", "png"),
            "attachment; filename=\"abc.png\""
        );
        let v = content_disposition("inline", "café", "webp");
        assert_eq!(
            v,
            "inline; filename=\"caf_.webp\"; filename*=UTF-8''caf%C3%A9.webp"
        );
        assert!(http::HeaderValue::from_str(&v).is_ok());
        let src = |s: &str| url::Url::parse(s).unwrap();
        let o = crate::request::options::Options::default();
        assert_eq!(
            download_name(&o, &src("http://e.com/p/%D1%84%D0%BE%D1%82%D0%BE.jpg")),
            "фото"
        );
        assert_eq!(download_name(&o, &src("http://e.com/a.b.png")), "a.b");
        assert_eq!(download_name(&o, &src("http://e.com/")), "image");
    }
}
