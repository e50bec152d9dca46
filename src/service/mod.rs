//! The request path, runtime-neutral: `http::Request` in, `http::Response`
//! out. Adapters only convert and supply [`Fetch`], [`Cache`] and
//! [`Runtime`].
//!
//! parse → verify signature → options → expiry → source policy →
//! negotiate → cache lookup → (coalesced) fetch + transform → respond,
//! writing successes and failures (with their short TTLs) through the cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{FutureExt, Shared};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::breaker::{self, Breaker};
use crate::cache::{self, Cache, CachedResponse};
use crate::config::{Config, FallbackImage};
use crate::error::Error;
use crate::fetch::{self, Fetch};
use crate::negotiate::{self, Negotiated};
use crate::options::{self, Options};
use crate::path;
use crate::pipeline::{self, Job};
use crate::runtime::{Detached, OffloadError, Runtime};
use crate::shedding::SourceBudget;
use crate::signature;
use crate::source_policy;
use crate::source_policy::SourcePolicy;

mod timing;
pub use timing::ServerTiming;

/// `hit`, `miss` or `coalesced` (joined another request's miss).
pub const CACHE_STATUS_HEADER: &str = "x-edgethumb-cache";
/// Signature placeholders imgproxy accepts for unsigned URLs.
const UNSIGNED_MARKERS: [&str; 3] = ["insecure", "unsafe", "_"];

/// A produced response, shared by every request that coalesced on it.
struct Produced {
    response: CachedResponse,
    /// `Server-Timing` entries for the work done.
    timing: ServerTiming,
    /// For the operator's log ([`ErrorDetail`]).
    detail: Option<String>,
}

/// Set on a response (in its extensions) when the failure behind it has
/// more to say than its public line: adapters log it.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Resolves when the request doing a miss has its result; `Err` if that
/// request was dropped first (its client went away).
type InFlight = Shared<oneshot::Receiver<Rc<Produced>>>;

/// How often a request that joined a miss may find it abandoned and try
/// again (each try either joins another miss or does the work itself).
const JOIN_ATTEMPTS: usize = 3;
/// How often a waiting request checks, where it cannot be woken
/// ([`Runtime::CROSS_REQUEST_WAKEUPS`]).
const JOIN_POLL: std::time::Duration = std::time::Duration::from_millis(10);

struct Inner<F, C, R> {
    config: Config,
    fetch: F,
    cache: C,
    runtime: R,
    inflight: RefCell<HashMap<String, InFlight>>,
    breaker: Breaker,
    /// Source bytes held by misses at once.
    budget: SourceBudget,
    /// The fallback image once fetched (`EDGETHUMB_FALLBACK_IMAGE_URL`).
    fallback_image: RefCell<Option<Bytes>>,
}

/// The thumbnail service. Cheap to clone; one per process or isolate.
pub struct Service<F, C, R> {
    inner: Rc<Inner<F, C, R>>,
}

impl<F, C, R> Clone for Service<F, C, R> {
    fn clone(&self) -> Self {
        Service {
            inner: Rc::clone(&self.inner),
        }
    }
}

/// A request that passed every check and can be served.
struct Plan {
    options: Options,
    source: url::Url,
    negotiated: Negotiated,
    key: String,
}

impl<F: Fetch, C: Cache, R: Runtime> Service<F, C, R> {
    pub fn new(config: Config, fetch: F, cache: C, runtime: R) -> Self {
        Service {
            inner: Rc::new(Inner {
                breaker: Breaker::new(config.breaker),
                budget: SourceBudget::new(config.shedding.max_source_bytes_in_flight),
                fallback_image: RefCell::new(None),
                config,
                fetch,
                cache,
                runtime,
                inflight: RefCell::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The result cache, for adapters that finish its writes themselves
    /// (a Worker hands them to `waitUntil`).
    pub fn cache(&self) -> &C {
        &self.inner.cache
    }

    /// Answers one request. Never panics on input; every failure becomes a
    /// status and a one-line reason.
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Bytes> {
        let head = req.method() == Method::HEAD;
        let mut resp = self.respond(req).await;
        if head {
            *resp.body_mut() = Bytes::new();
        }
        resp
    }

    async fn respond<B>(&self, req: &Request<B>) -> Response<Bytes> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = error_response(&Error::MethodNotAllowed, None, false);
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let raw_path = req.uri().path();
        match raw_path {
            "/health" => return text_response(StatusCode::OK, "ok"),
            "/" | "/favicon.ico" | "/robots.txt" => {
                return error_response(&Error::RouteNotFound, None, false)
            }
            _ => {}
        }
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let plan = match self.plan(raw_path, accept) {
            Ok(p) => p,
            Err(e) => return error_response(&e, None, false),
        };
        let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();

        let inner = &self.inner;
        let clock = inner.runtime.clock();
        let started = clock();
        if let Some(hit) = inner.cache.get(&plan.key).await {
            let mut timing = ServerTiming::default();
            timing.desc_dur("cache", "hit", clock() - started);
            return finish(&hit, "hit", &timing, if_none_match.as_ref());
        }

        for _ in 0..JOIN_ATTEMPTS {
            let waiting = self.inner.inflight.borrow().get(&plan.key).cloned();
            let Some(waiting) = waiting else {
                break;
            };
            if let Ok(produced) = self.wait_for(waiting).await {
                let mut timing = produced.timing.clone();
                timing.desc("cache", "coalesced");
                return finish(
                    &produced.response,
                    "coalesced",
                    &timing,
                    if_none_match.as_ref(),
                );
            }
            // The request doing it went away: look again.
        }
        // Each miss holds a client connection, an upstream one and its state:
        // bounded, so a flood of misses cannot take memory without limit.
        if self.inner.inflight.borrow().len() as u64 >= inner.config.shedding.max_misses_in_flight {
            let e = Error::Overloaded {
                what: "too many misses in flight".into(),
                retry_after: crate::shedding::RETRY_AFTER_SECS,
            };
            return error_response(&e, None, plan.negotiated.varies());
        }
        let produced = self.lead(plan).await;
        let mut timing = produced.timing.clone();
        timing.desc("cache", "miss");
        let mut resp = finish(&produced.response, "miss", &timing, if_none_match.as_ref());
        if let Some(d) = &produced.detail {
            resp.extensions_mut().insert(ErrorDetail(d.clone()));
        }
        resp
    }

    /// Parses and checks everything that needs no I/O.
    fn plan(&self, raw_path: &str, accept: Option<&str>) -> Result<Plan, Error> {
        let cfg = &self.inner.config;
        // The signature first: nothing else of an unsigned path is decoded.
        let (sig, signed_path) = path::split_signed(raw_path)?;
        if UNSIGNED_MARKERS.contains(&sig) {
            if !cfg.allow_unsigned {
                return Err(Error::Unsigned);
            }
        } else if !signature::verify(sig, &signed_path, &cfg.keys, cfg.signature_size) {
            return Err(Error::BadSignature);
        }
        let parsed = path::parse(raw_path)?;
        let options = options::build(&parsed.options, parsed.extension.as_deref(), &cfg.presets)?;
        if let Some(exp) = options.expires {
            if exp < self.inner.runtime.unix_time() as i64 {
                return Err(Error::Expired);
            }
        }
        let source = source_policy::check(&parsed.source, &cfg.sources)?;
        let negotiated = negotiate::negotiate(options.format, accept, &cfg.auto_formats);
        let key = cache::key(&options.identity(), source.as_str(), &negotiated.key());
        Ok(Plan {
            options,
            source,
            negotiated,
            key,
        })
    }

    async fn wait_for(&self, waiting: InFlight) -> Result<Rc<Produced>, oneshot::Canceled> {
        if R::CROSS_REQUEST_WAKEUPS {
            return waiting.await;
        }
        loop {
            // Polled without a real waker: only this request's timer wakes it.
            if let Some(result) = waiting.clone().now_or_never() {
                return result;
            }
            self.inner.runtime.sleep(JOIN_POLL).await;
        }
    }

    /// Does a miss while identical requests in this process or isolate
    /// wait for the result instead of repeating it. Where the runtime can
    /// ([`Runtime::detach`]), the miss runs on after this request goes
    /// away and its result is still cached; otherwise it runs in this
    /// request's own task, so the I/O it starts belongs to this request.
    async fn lead(&self, plan: Plan) -> Rc<Produced> {
        let (tx, rx) = oneshot::channel();
        let key = plan.key.clone();
        let done = rx.shared();
        self.inner
            .inflight
            .borrow_mut()
            .insert(key.clone(), done.clone());
        let this = self.clone();
        let work: Detached = Box::pin(async move {
            // Removes the entry however this ends, dropped midway included.
            let _entry = InFlightEntry {
                inner: &this.inner,
                key: &key,
            };
            let produced = Rc::new(produce(&this.inner, plan).await);
            // TTL 0 means "do not store", for every cache: decided here once.
            if produced.response.ttl > 0 {
                this.inner.cache.put(&key, produced.response.clone()).await;
            }
            let _ = tx.send(produced);
        });
        if let Err(work) = self.inner.runtime.detach(work) {
            work.await;
        }
        match done.await {
            Ok(produced) => produced,
            // The detached work was lost (a panic): answered, not cached.
            Err(_) => Rc::new(failure(
                Error::Internal("the miss was lost".into()),
                &self.inner.config,
                false,
                ServerTiming::default(),
            )),
        }
    }
}

struct InFlightEntry<'a, F, C, R> {
    inner: &'a Inner<F, C, R>,
    key: &'a str,
}

impl<F, C, R> Drop for InFlightEntry<'_, F, C, R> {
    fn drop(&mut self) {
        self.inner.inflight.borrow_mut().remove(self.key);
    }
}

/// Fetches and transforms; every failure becomes a response too.
async fn produce<F: Fetch, C: Cache, R: Runtime>(inner: &Inner<F, C, R>, plan: Plan) -> Produced {
    let cfg = &inner.config;
    let clock = inner.runtime.clock();
    let varies = plan.negotiated.varies();
    let job = Job {
        options: plan.options,
        negotiated: plan.negotiated,
        limits: cfg.limits.clone(),
        default_quality: cfg.default_quality,
    };
    let t0 = clock();
    let ticket = match inner.breaker.admit(&breaker::host_key(&plan.source), t0) {
        Ok(t) => t,
        Err(e) => {
            let mut timing = ServerTiming::default();
            timing.desc("fetch", "circuit-open");
            return fail_or_fallback(inner, e, &job, varies, timing).await;
        }
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
        Err(e) => return fail_or_fallback(inner, e, &job, varies, timing).await,
    };
    if cfg.svg_passthrough && pipeline::sniff::looks_like_svg(&bytes) {
        return svg_as_is(bytes, cfg, timing);
    }
    match transform(inner, bytes, job.clone()).await {
        Ok(out) => image_response(out, &job, StatusCode::OK, cfg.ttls.success, varies, timing),
        Err(e) => fail_or_fallback(inner, e, &job, varies, timing).await,
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
                what: reason.to_string(),
                retry_after,
            }),
            OffloadError::Lost => Err(Error::Internal("transform worker lost".into())),
        })
}

/// A failure of the upstream or of its bytes, answered with the configured
/// fallback image (made with the same options, so it fits the `<img>`)
/// when there is one: with its own status, its own short TTL and
/// `x-edgethumb-fallback` naming the failure. Otherwise the error.
async fn fail_or_fallback<F: Fetch, C, R: Runtime>(
    inner: &Inner<F, C, R>,
    e: Error,
    job: &Job,
    varies: bool,
    timing: ServerTiming,
) -> Produced {
    let cfg = &inner.config;
    if let Some(fb) = &cfg.fallback {
        if matches!(e.fault(), crate::Fault::Upstream | crate::Fault::Source) {
            let ttl = fb
                .ttl
                .unwrap_or_else(|| cfg.ttls.for_failure(&e).unwrap_or(0));
            let image = match &fb.image {
                FallbackImage::Data(bytes) => Some(bytes.clone()),
                FallbackImage::Url(url) => fallback_from_url(inner, url).await,
            };
            let made = match image {
                Some(bytes) => transform(inner, bytes, job.clone()).await.ok(),
                None => None,
            };
            if let Some(out) = made {
                let status = e.status_with(cfg.upstream_failure_status);
                let mut timing = timing;
                timing.desc("fallback", status.as_u16().to_string());
                let mut p = image_response(out, job, fb.status, ttl, varies, timing);
                insert(
                    &mut p.response.headers,
                    HeaderName::from_static("x-edgethumb-fallback"),
                    &format!("{} {}", status.as_u16(), e.public_line()),
                );
                return p;
            }
        }
    }
    failure(e, cfg, varies, timing)
}

/// The `EDGETHUMB_FALLBACK_IMAGE_URL` image: fetched once with the source
/// limits (it is the operator's own URL, so any public host may serve it),
/// then kept. `None` while it cannot be had; the failure is answered as it
/// is, and the next one tries again.
async fn fallback_from_url<F: Fetch, C, R: Runtime>(
    inner: &Inner<F, C, R>,
    url: &url::Url,
) -> Option<Bytes> {
    if let Some(b) = inner.fallback_image.borrow().as_ref() {
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
    *inner.fallback_image.borrow_mut() = Some(bytes.clone());
    Some(bytes)
}

/// A transformed image, cached for `ttl` seconds.
fn image_response(
    out: pipeline::Output,
    job: &Job,
    status: StatusCode,
    ttl: u32,
    varies: bool,
    mut timing: ServerTiming,
) -> Produced {
    let t = out.timings;
    timing
        .dur("decode", t.decode)
        .dur("resize", t.resize)
        .dur("effects", t.effects)
        .dur("encode", t.encode);
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, out.format.mime());
    insert(
        &mut headers,
        header::CACHE_CONTROL,
        &cache::cache_control(ttl),
    );
    insert(&mut headers, header::ETAG, &cache::etag(&out.body));
    if let Some(name) = &job.options.filename {
        let safe: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        insert(
            &mut headers,
            header::CONTENT_DISPOSITION,
            &format!("inline; filename=\"{safe}.{}\"", out.format.extension()),
        );
    }
    common_headers(&mut headers, varies);
    Produced {
        response: CachedResponse {
            status,
            headers,
            body: Bytes::from(out.body),
            ttl,
        },
        timing,
        detail: None,
    }
}

/// An SVG source, served as it is: vector, so no resizing is needed, and
/// `Content-Security-Policy: script-src 'none'; sandbox` keeps its scripts
/// and forms inert.
/// It does not depend on `Accept`, so no `Vary`.
fn svg_as_is(bytes: Bytes, cfg: &Config, mut timing: ServerTiming) -> Produced {
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, "image/svg+xml");
    insert(
        &mut headers,
        header::CACHE_CONTROL,
        &cache::cache_control(cfg.ttls.success),
    );
    insert(&mut headers, header::ETAG, &cache::etag(&bytes));
    common_headers(&mut headers, false);
    // `sandbox` too: an SVG opened as a document is then a unique origin
    // with no forms, popups or navigation (as camo and svg-hush do).
    insert(
        &mut headers,
        header::CONTENT_SECURITY_POLICY,
        "script-src 'none'; sandbox",
    );
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
    }
}

fn failure(e: Error, cfg: &Config, varies: bool, timing: ServerTiming) -> Produced {
    let ttl = cfg.ttls.for_failure(&e);
    let resp = error_response_with(&e, ttl, varies, cfg.upstream_failure_status);
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
    }
}

/// Builds the response for a stored entry: adds per-request headers and
/// answers `If-None-Match` with 304.
fn finish(
    stored: &CachedResponse,
    cache_status: &str,
    timing: &ServerTiming,
    if_none_match: Option<&HeaderValue>,
) -> Response<Bytes> {
    // Copy the stored headers; they are shared (and immutable on Workers).
    let mut headers = stored.headers.clone();
    insert(
        &mut headers,
        HeaderName::from_static("server-timing"),
        &timing.header_value(),
    );
    insert(
        &mut headers,
        HeaderName::from_static(CACHE_STATUS_HEADER),
        cache_status,
    );
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
    resp
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
pub fn error_response(e: &Error, ttl: Option<u32>, varies: bool) -> Response<Bytes> {
    error_response_with(e, ttl, varies, None)
}

/// [`error_response`] with the configured status for upstream failures.
fn error_response_with(
    e: &Error,
    ttl: Option<u32>,
    varies: bool,
    upstream_failure: Option<StatusCode>,
) -> Response<Bytes> {
    let mut resp = text_response(e.status_with(upstream_failure), &e.public_line());
    let h = resp.headers_mut();
    insert(
        h,
        header::CACHE_CONTROL,
        &cache::cache_control(ttl.unwrap_or(0)),
    );
    if let Some(secs) = e.retry_after() {
        insert(h, header::RETRY_AFTER, &secs.to_string());
    }
    common_headers(h, varies);
    resp
}

fn text_response(status: StatusCode, line: &str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(format!("{line}\n")));
    *resp.status_mut() = status;
    insert(
        resp.headers_mut(),
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    resp
}

fn common_headers(h: &mut HeaderMap, varies: bool) {
    insert(h, header::CONTENT_SECURITY_POLICY, "script-src 'none'");
    insert(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if varies {
        insert(h, header::VARY, "Accept");
    }
}

fn insert(h: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values are built here from checked parts; anything unprintable is dropped.
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use super::*;
    use crate::cache::NoCache;
    use crate::fetch::{Body, FetchError, UpstreamResponse};

    /// An upstream that never answers, counting the requests it gets.
    struct Hanging(Rc<Cell<u32>>);
    struct NoBody;

    impl Body for NoBody {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
            Ok(None)
        }
    }

    impl Fetch for Hanging {
        type Body = NoBody;
        async fn get(&self, _url: &url::Url) -> Result<UpstreamResponse<NoBody>, FetchError> {
            self.0.set(self.0.get() + 1);
            futures_util::future::pending().await
        }
    }

    struct Inline<const WAKEUPS: bool>;

    impl<const WAKEUPS: bool> Runtime for Inline<WAKEUPS> {
        const CROSS_REQUEST_WAKEUPS: bool = WAKEUPS;
        fn unix_time(&self) -> u64 {
            0
        }
        fn clock(&self) -> fn() -> f64 {
            || 0.0
        }
        async fn sleep(&self, duration: Duration) {
            // The upstream deadline never passes; the short waits of a
            // waiting request yield once, so it re-checks on every poll.
            if duration >= Duration::from_secs(1) {
                return futures_util::future::pending().await;
            }
            let mut yielded = false;
            std::future::poll_fn(|_| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    Poll::Pending
                }
            })
            .await
        }
        async fn offload<T: Send + 'static>(
            &self,
            work: impl FnOnce() -> T + Send + 'static,
        ) -> Result<T, OffloadError> {
            Ok(work())
        }
    }

    /// Unsigned URLs allowed, and one more setting.
    fn unsigned_config(var: &str, value: &str) -> Config {
        Config::from_lookup(|name| match name {
            "EDGETHUMB_ALLOW_UNSIGNED" => Some("true".into()),
            n if n == var => Some(value.into()),
            _ => None,
        })
        .unwrap()
    }

    /// A thumbnail request for `src` on a public host.
    fn get(src: &str) -> Request<()> {
        Request::get(format!(
            "/insecure/rs:fit:10:0/plain/http://example.com/{src}"
        ))
        .body(())
        .unwrap()
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A request waiting on another's miss takes the work over when that
    /// request goes away (its client disconnected), with either way of
    /// waiting.
    fn waiting_request_takes_over<const WAKEUPS: bool>() {
        let calls = Rc::new(Cell::new(0));
        let config = Config::from_lookup(|name| match name {
            "EDGETHUMB_ALLOW_UNSIGNED" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        let service = Service::new(
            config,
            Hanging(Rc::clone(&calls)),
            NoCache,
            Inline::<WAKEUPS>,
        );
        let req = Request::get("/insecure/rs:fit:10:0/plain/http://example.com/a.jpg")
            .body(())
            .unwrap();

        let mut leader = Box::pin(service.handle(&req));
        assert!(poll_once(leader.as_mut()).is_pending());
        assert_eq!(calls.get(), 1, "the leader fetched");
        let mut follower = pin!(service.handle(&req));
        assert!(poll_once(follower.as_mut()).is_pending());
        assert_eq!(calls.get(), 1, "the follower waits instead of fetching");

        drop(leader);
        for _ in 0..3 {
            assert!(poll_once(follower.as_mut()).is_pending());
        }
        assert_eq!(calls.get(), 2, "the follower took the miss over");
        assert_eq!(service.inner.inflight.borrow().len(), 1);
    }

    /// An upstream that declares a length (if any), sends 80 bytes and
    /// then nothing more.
    struct Stalling(Option<u64>);
    struct StallingBody(bool);

    impl Body for StallingBody {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
            if std::mem::replace(&mut self.0, true) {
                return futures_util::future::pending().await;
            }
            Ok(Some(Bytes::from(vec![0u8; 80])))
        }
    }

    impl Fetch for Stalling {
        type Body = StallingBody;
        async fn get(&self, _url: &url::Url) -> Result<UpstreamResponse<StallingBody>, FetchError> {
            Ok(UpstreamResponse {
                status: 200,
                location: None,
                content_length: self.0,
                body: StallingBody(false),
            })
        }
    }

    #[test]
    fn misses_past_the_source_byte_budget_are_shed_with_retry_after() {
        let config = unsigned_config("EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT", "100");
        let service = Service::new(config, Stalling(Some(80)), NoCache, Inline::<true>);
        let (a, b) = (get("a.jpg"), get("b.jpg"));
        let mut holding = Box::pin(service.handle(&a));
        assert!(poll_once(holding.as_mut()).is_pending());
        assert_eq!(service.inner.budget.used(), 80);

        let Poll::Ready(shed) = poll_once(pin!(service.handle(&b))) else {
            panic!("a miss past the budget must be answered at once");
        };
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert_eq!(shed.headers()[header::CACHE_CONTROL], "no-store");
        assert!(String::from_utf8_lossy(shed.body()).starts_with("server busy:"));

        // Its bytes are given back when the request goes away.
        drop(holding);
        assert_eq!(service.inner.budget.used(), 0);
        assert!(poll_once(pin!(service.handle(&b))).is_pending());
    }

    /// The review's slow origins: each declares a large body and sends
    /// almost nothing. The declared length is claimed before it arrives.
    #[test]
    fn a_declared_length_is_claimed_before_its_bytes_arrive() {
        let config = unsigned_config("EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT", "15000000");
        let service = Service::new(config, Stalling(Some(10_000_000)), NoCache, Inline::<true>);
        let (a, b) = (get("a.jpg"), get("b.jpg"));
        let mut holding = Box::pin(service.handle(&a));
        assert!(poll_once(holding.as_mut()).is_pending());
        assert_eq!(service.inner.budget.used(), 10_000_000);
        let Poll::Ready(shed) = poll_once(pin!(service.handle(&b))) else {
            panic!("a second 10 MB reservation must be refused at once");
        };
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(holding);
        assert_eq!(service.inner.budget.used(), 0);
    }

    #[test]
    fn misses_past_the_in_flight_bound_are_shed_but_identical_ones_join() {
        let config = unsigned_config("EDGETHUMB_MAX_MISSES_IN_FLIGHT", "1");
        let calls = Rc::new(Cell::new(0));
        let service = Service::new(config, Hanging(Rc::clone(&calls)), NoCache, Inline::<true>);
        let (a, b) = (get("a.jpg"), get("b.jpg"));
        let mut first = Box::pin(service.handle(&a));
        assert!(poll_once(first.as_mut()).is_pending());
        let Poll::Ready(shed) = poll_once(pin!(service.handle(&b))) else {
            panic!("a second distinct miss must be refused at once");
        };
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            shed.body().as_ref(),
            b"server busy: too many misses in flight; retry in 1 s\n"
        );
        // The same thumbnail waits for the miss already in flight.
        assert!(poll_once(pin!(service.handle(&a))).is_pending());
        assert_eq!(calls.get(), 1);
    }

    /// An upstream that answers every request with 500.
    struct Failing;

    impl Fetch for Failing {
        type Body = NoBody;
        async fn get(&self, _url: &url::Url) -> Result<UpstreamResponse<NoBody>, FetchError> {
            Ok(UpstreamResponse {
                status: 500,
                location: None,
                content_length: None,
                body: NoBody,
            })
        }
    }

    /// Counts what is stored.
    #[derive(Default)]
    struct Recording(RefCell<Vec<u32>>);

    impl Cache for Rc<Recording> {
        async fn get(&self, _key: &str) -> Option<CachedResponse> {
            None
        }
        async fn put(&self, _key: &str, response: CachedResponse) {
            self.0.borrow_mut().push(response.ttl);
        }
    }

    #[test]
    fn a_zero_ttl_is_never_handed_to_the_cache() {
        for (ttl, stored) in [("0", vec![]), ("7", vec![7])] {
            let config = unsigned_config("EDGETHUMB_UPSTREAM_ERROR_TTL", ttl);
            let cache = Rc::new(Recording::default());
            let service = Service::new(config, Failing, Rc::clone(&cache), Inline::<true>);
            let req = Request::get("/insecure/rs:fit:10:0/plain/http://example.com/a.jpg")
                .body(())
                .unwrap();
            let Poll::Ready(resp) = poll_once(pin!(service.handle(&req))) else {
                panic!("a failing upstream is answered at once");
            };
            assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
            assert_eq!(*cache.0.borrow(), stored, "upstream error TTL {ttl}");
        }
    }

    #[test]
    fn a_waiting_request_takes_over_an_abandoned_miss() {
        waiting_request_takes_over::<true>();
        waiting_request_takes_over::<false>();
    }
}
