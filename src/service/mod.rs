//! The request path, runtime-neutral: `http::Request` in, `http::Response`
//! out. Adapters only convert and supply [`Fetch`], [`Cache`] and
//! [`Runtime`]. In order:
//! - [`plan`]: parse, verify the signature, options, expiry, source
//!   policy, negotiation and the cache key (no I/O);
//! - here: routes, the cache lookup and shedding;
//! - [`coalesce`]: one miss per key, identical requests wait for it;
//! - [`produce`]: breaker, fetch, transform or fallback, as a response to
//!   store (successes and failures, with their TTLs);
//! - [`respond`]: the response as sent (per-request headers, 304s, error
//!   bodies); [`timing`]: `Server-Timing`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::config::Config;
use crate::error::Error;
use crate::request::client_hints::Hints;
use crate::resilience::breaker::Breaker;
use crate::resilience::shedding::SourceBudget;
use crate::seams::cache::{Cache, Tier};
use crate::seams::fetch::Fetch;
use crate::seams::runtime::Runtime;

pub mod access_log;
mod coalesce;
mod plan;
mod produce;
mod raw;
mod respond;
mod timing;

pub use access_log::{AccessRecord, Failure, Served};
pub use raw::{BodyCut, Chunks, ResponseBody};
pub use respond::{error_response, ErrorDetail, Vary, CACHE_STATUS_HEADER};
pub use timing::ServerTiming;

use coalesce::InFlight;
use respond::{finish, text_response};

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
    /// The watermark image once fetched (`EDGETHUMB_WATERMARK_URL`).
    watermark_image: RefCell<Option<Bytes>>,
}

/// What a service holds at one moment ([`Service::load`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub misses_in_flight: usize,
    pub source_bytes_in_flight: u64,
    /// Upstream hosts (`scheme://host:port`) whose circuit is `open` or
    /// `half_open`.
    pub breaker: Vec<(String, &'static str)>,
}

/// A verified request that missed the cache, to be answered by
/// [`Service::answer_miss`], possibly on another thread: it holds only
/// owned, `Send` data.
pub struct Miss {
    plan: plan::Plan,
    if_none_match: Option<HeaderValue>,
}

/// How much of the cache a lookup asks.
#[derive(Clone, Copy)]
enum Look {
    /// Every tier.
    Whole,
    /// The fast tiers only: every tier was just asked by the service that
    /// handed the miss over.
    Again,
}

/// `elsewhere` when misses are answered here.
type Here = fn(Miss) -> std::future::Pending<Response<ResponseBody>>;

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

impl<F: Fetch, C: Cache, R: Runtime> Service<F, C, R> {
    pub fn new(config: Config, fetch: F, cache: C, runtime: R) -> Self {
        Service {
            inner: Rc::new(Inner {
                breaker: Breaker::new(config.breaker),
                budget: SourceBudget::new(config.shedding.max_source_bytes_in_flight),
                fallback_image: RefCell::new(None),
                watermark_image: RefCell::new(None),
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

    /// What the service holds now, for an adapter's metrics.
    pub fn load(&self) -> Load {
        let now = (self.inner.runtime.clock())();
        Load {
            misses_in_flight: self.misses_in_flight(),
            source_bytes_in_flight: self.inner.budget.used(),
            breaker: self.inner.breaker.not_closed(now),
        }
    }

    /// The result cache, for adapters that finish its writes themselves
    /// (a Worker hands them to `waitUntil`).
    pub fn cache(&self) -> &C {
        &self.inner.cache
    }

    /// Answers one request. Never panics on input; every failure becomes a
    /// status and a one-line reason. A streamed body (a `raw` miss) goes
    /// out as it arrives; adapters abort the response on a [`BodyCut`].
    pub async fn handle_streamed<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        self.handle_streamed_via(req, None::<Here>).await
    }

    async fn handle_streamed_via<B, M, Fut>(
        &self,
        req: &Request<B>,
        elsewhere: Option<M>,
    ) -> Response<ResponseBody>
    where
        M: FnOnce(Miss) -> Fut,
        Fut: Future<Output = Response<ResponseBody>>,
    {
        let head = req.method() == Method::HEAD;
        let mut resp = self.answer(req, elsewhere).await;
        if head {
            // A stream dropped unread: its miss is abandoned, not stored.
            *resp.body_mut() = ResponseBody::Full(Bytes::new());
        }
        resp
    }

    /// [`Service::handle_streamed`], with the request's access record
    /// (its id, timed by the runtime's clock), which every adapter logs.
    pub async fn handle_recorded<B>(
        &self,
        req: &Request<B>,
    ) -> (Response<ResponseBody>, AccessRecord) {
        self.handle_recorded_via(req, None::<Here>).await
    }

    /// [`Service::handle_recorded`], with misses run by `elsewhere`, which
    /// hands each to [`Service::answer_miss`] on the one service that owns
    /// misses (a server whose I/O threads share a cache answers hits on
    /// every thread and misses on one, so coalescing stays exact).
    pub async fn handle_recorded_elsewhere<B, M, Fut>(
        &self,
        req: &Request<B>,
        elsewhere: M,
    ) -> (Response<ResponseBody>, AccessRecord)
    where
        M: FnOnce(Miss) -> Fut,
        Fut: Future<Output = Response<ResponseBody>>,
    {
        self.handle_recorded_via(req, Some(elsewhere)).await
    }

    async fn handle_recorded_via<B, M, Fut>(
        &self,
        req: &Request<B>,
        elsewhere: Option<M>,
    ) -> (Response<ResponseBody>, AccessRecord)
    where
        M: FnOnce(Miss) -> Fut,
        Fut: Future<Output = Response<ResponseBody>>,
    {
        let clock = self.inner.runtime.clock();
        let started = clock();
        let id = access_log::request_id(req.headers());
        let resp = self.handle_streamed_via(req, elsewhere).await;
        let record = AccessRecord::new(id, req.method(), &resp, clock() - started);
        (resp, record)
    }

    /// [`Service::handle_streamed`] with the body whole: a body cut short
    /// becomes its error response.
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Bytes> {
        let (parts, body) = self.handle_streamed(req).await.into_parts();
        let body = match body {
            ResponseBody::Full(bytes) => bytes,
            ResponseBody::Streamed(mut chunks) => {
                let mut all = Vec::new();
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(c) => all.extend_from_slice(&c),
                        Err(cut) => return error_response(&cut.0, None, Vary::default()),
                    }
                }
                Bytes::from(all)
            }
        };
        Response::from_parts(parts, body)
    }

    /// Routes, then a cache hit, a joined miss, a shed miss or a new one.
    async fn answer<B, M, Fut>(
        &self,
        req: &Request<B>,
        elsewhere: Option<M>,
    ) -> Response<ResponseBody>
    where
        M: FnOnce(Miss) -> Fut,
        Fut: Future<Output = Response<ResponseBody>>,
    {
        let full = |r: Response<Bytes>| r.map(ResponseBody::Full);
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = error_response(&Error::MethodNotAllowed, None, Vary::default());
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return full(r);
        }
        let raw_path = req.uri().path();
        match raw_path {
            "/health" => return full(text_response(StatusCode::OK, "ok")),
            "/" | "/favicon.ico" | "/robots.txt" => {
                return full(error_response(&Error::RouteNotFound, None, Vary::default()))
            }
            _ => {}
        }
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let cfg = &self.inner.config;
        let hints = match cfg.client_hints {
            true => Hints::read(req.headers()),
            false => Hints::default(),
        };
        let now = self.inner.runtime.unix_time();
        let plan = match plan::plan(cfg, now, raw_path, accept, hints) {
            Ok(p) => p,
            Err(e) => return full(error_response(&e, None, Vary::default())),
        };
        let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
        let host = plan.source.host_str().map(str::to_string);
        let mut resp = match elsewhere {
            None => self.answer_planned(plan, if_none_match, Look::Whole).await,
            Some(run) => match self
                .hit(&plan.key, if_none_match.as_ref(), Look::Whole)
                .await
            {
                Ok(hit) => hit,
                // The miss's own service looks again, and times that look.
                Err(_) => {
                    run(Miss {
                        plan,
                        if_none_match,
                    })
                    .await
                }
            },
        };
        resp.extensions_mut().get_or_insert_default::<Served>().host = host;
        resp
    }

    /// A request that missed the cache on another service sharing this
    /// one's cache ([`Service::handle_recorded_elsewhere`]): answered as
    /// if it had come here. The cache is looked at again first, since a
    /// miss for the same key may have been stored since.
    pub async fn answer_miss(&self, miss: Miss) -> Response<ResponseBody> {
        self.answer_planned(miss.plan, miss.if_none_match, Look::Again)
            .await
    }

    /// The cached response for `key`, as sent, if there is one; if not,
    /// how long asking took (ms), for the miss's `Server-Timing`: on a
    /// slow cache a miss pays it too.
    async fn hit(
        &self,
        key: &str,
        if_none_match: Option<&HeaderValue>,
        look: Look,
    ) -> Result<Response<ResponseBody>, f64> {
        let clock = self.inner.runtime.clock();
        let started = clock();
        let cache = &self.inner.cache;
        let found = match look {
            Look::Whole => cache.lookup(key).await,
            Look::Again => cache.lookup_again(key).await,
        };
        let Some((hit, tier)) = found else {
            return Err(clock() - started);
        };
        let status = match tier {
            Tier::Cache => "hit",
            Tier::Store => "store-hit",
        };
        let mut timing = ServerTiming::default();
        timing.desc_dur("cache", status, clock() - started);
        Ok(finish(&hit, status, &timing, if_none_match).map(ResponseBody::Full))
    }

    /// A verified request: a cache hit, a joined miss, a shed miss or a
    /// new one.
    async fn answer_planned(
        &self,
        plan: plan::Plan,
        if_none_match: Option<HeaderValue>,
        look: Look,
    ) -> Response<ResponseBody> {
        let full = |r: Response<Bytes>| r.map(ResponseBody::Full);
        let cfg = &self.inner.config;

        let lookup_ms = match self.hit(&plan.key, if_none_match.as_ref(), look).await {
            Ok(hit) => return hit,
            Err(ms) => ms,
        };

        if let Some(produced) = self.join(&plan.key).await {
            let mut timing = produced.timing.clone();
            timing.desc_dur("cache", "coalesced", lookup_ms);
            return full(finish(
                &produced.response,
                "coalesced",
                &timing,
                if_none_match.as_ref(),
            ));
        }
        // Each miss holds a client connection, an upstream one and its state:
        // bounded, so a flood of misses cannot take memory without limit.
        if self.misses_in_flight() as u64 >= cfg.shedding.max_misses_in_flight {
            let e = Error::Overloaded {
                what: "too many misses in flight",
                retry_after: crate::resilience::shedding::RETRY_AFTER_SECS,
            };
            return full(error_response(&e, None, plan.vary));
        }
        let produced = match plan.options.raw {
            true => match self.raw_miss(plan, lookup_ms).await {
                Ok(streaming) => return streaming,
                Err(whole) => whole,
            },
            false => self.lead(plan).await,
        };
        let mut timing = produced.timing.clone();
        timing.desc_dur("cache", "miss", lookup_ms);
        let mut resp = finish(&produced.response, "miss", &timing, if_none_match.as_ref());
        if let Some(d) = &produced.detail {
            resp.extensions_mut().insert(ErrorDetail(d.clone()));
        }
        if let Some(s) = resp.extensions_mut().get_mut::<Served>() {
            s.failure = produced.failure;
        }
        full(resp)
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
    use crate::seams::cache::{CachedResponse, NoCache};
    use crate::seams::fetch::{Body, FetchError};
    use crate::seams::runtime::OffloadError;

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
        async fn get(&self, _url: &url::Url) -> Result<Response<NoBody>, FetchError> {
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
        async fn get(&self, _url: &url::Url) -> Result<Response<StallingBody>, FetchError> {
            let mut resp = Response::new(StallingBody(false));
            if let Some(n) = self.0 {
                resp.headers_mut().insert(header::CONTENT_LENGTH, n.into());
            }
            Ok(resp)
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
        async fn get(&self, _url: &url::Url) -> Result<Response<NoBody>, FetchError> {
            let mut resp = Response::new(NoBody);
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(resp)
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
            // The miss says how long asking the cache took (this clock
            // stands still).
            let timing = resp.headers()["server-timing"].to_str().unwrap();
            assert!(timing.ends_with("cache;desc=miss;dur=0.0"), "{timing}");
        }
    }

    /// Keeps what is stored, shareable between services.
    #[derive(Default)]
    struct Keeping(RefCell<HashMap<String, CachedResponse>>);

    impl Cache for Rc<Keeping> {
        async fn get(&self, key: &str) -> Option<CachedResponse> {
            self.0.borrow().get(key).cloned()
        }
        async fn put(&self, key: &str, response: CachedResponse) {
            self.0.borrow_mut().insert(key.to_string(), response);
        }
    }

    #[test]
    fn a_miss_handed_elsewhere_is_answered_there_and_its_hit_here() {
        fn sendable<T: Send + 'static>() {}
        sendable::<Miss>();

        let config = unsigned_config("EDGETHUMB_UPSTREAM_ERROR_TTL", "7");
        let cache = Rc::new(Keeping::default());
        let front = Service::new(
            config.clone(),
            Hanging(Rc::default()),
            Rc::clone(&cache),
            Inline::<true>,
        );
        let owner = Service::new(config, Failing, Rc::clone(&cache), Inline::<true>);
        let handed = Cell::new(0);
        let req = Request::get("/insecure/rs:fit:10:0/plain/http://example.com/a.jpg")
            .body(())
            .unwrap();
        for expected in ["miss", "hit"] {
            let answer = front.handle_recorded_elsewhere(&req, |miss| {
                handed.set(handed.get() + 1);
                owner.answer_miss(miss)
            });
            let Poll::Ready((resp, _)) = poll_once(pin!(answer)) else {
                panic!("a failing upstream is answered at once");
            };
            assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
            assert_eq!(resp.headers()[CACHE_STATUS_HEADER], expected);
        }
        assert_eq!(handed.get(), 1, "the hit never left the front service");
    }

    /// A JPEG-looking source of three 8 KiB chunks.
    struct Chunked;
    struct ChunkedBody(u8);

    impl Body for ChunkedBody {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
            self.0 += 1;
            Ok(match self.0 {
                1 => Some(Bytes::from([&b"\xFF\xD8\xFF\xE0"[..], &[0; 8188]].concat())),
                2 | 3 => Some(Bytes::from(vec![self.0; 8192])),
                _ => None,
            })
        }
    }

    impl Fetch for Chunked {
        type Body = ChunkedBody;
        async fn get(&self, _url: &url::Url) -> Result<Response<ChunkedBody>, FetchError> {
            Ok(Response::new(ChunkedBody(0)))
        }
    }

    fn raw_miss(cache: &Rc<Recording>) -> (Service<Chunked, Rc<Recording>, Inline<true>>, Chunks) {
        raw_miss_with(cache, "EDGETHUMB_TTL", "60")
    }

    fn raw_miss_with(
        cache: &Rc<Recording>,
        var: &str,
        value: &str,
    ) -> (Service<Chunked, Rc<Recording>, Inline<true>>, Chunks) {
        let config = Config::from_lookup(|name| match name {
            "EDGETHUMB_ALLOW_UNSIGNED" => Some("true".into()),
            "EDGETHUMB_TTL" => Some("60".into()),
            n if n == var => Some(value.into()),
            _ => None,
        })
        .unwrap();
        let service = Service::new(config, Chunked, Rc::clone(cache), Inline::<true>);
        let Poll::Ready(resp) = poll_once(pin!(service.handle_streamed(&get_raw()))) else {
            panic!("the head is in at once");
        };
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/jpeg");
        assert!(resp.headers().get(header::ETAG).is_none());
        let ResponseBody::Streamed(chunks) = resp.into_body() else {
            panic!("a body past its head is streamed");
        };
        (service, chunks)
    }

    fn get_raw() -> Request<()> {
        Request::get("/insecure/raw:1/plain/http://example.com/a.jpg")
            .body(())
            .unwrap()
    }

    #[test]
    fn a_raw_body_is_stored_once_it_has_all_gone_out() {
        let cache = Rc::new(Recording::default());
        let (service, mut chunks) = raw_miss(&cache);
        let mut sent = 0;
        for _ in 0..3 {
            let Poll::Ready(Some(Ok(c))) = poll_once(pin!(chunks.next())) else {
                panic!("each chunk goes out as it comes");
            };
            sent += c.len();
            assert!(cache.0.borrow().is_empty(), "stored before the end");
        }
        assert_eq!(sent, 3 * 8192);
        assert!(matches!(poll_once(pin!(chunks.next())), Poll::Ready(None)));
        assert_eq!(*cache.0.borrow(), vec![60]);
        assert_eq!(
            service.inner.budget.used(),
            0,
            "the copy's bytes were given back"
        );
        assert!(service.inner.inflight.borrow().is_empty());
    }

    /// Past the bytes misses may hold (another miss holds some), the copy
    /// is dropped: the body still goes out whole, unstored.
    #[test]
    fn a_raw_copy_past_the_budget_is_dropped_and_the_body_still_sent() {
        let cache = Rc::new(Recording::default());
        let (service, mut chunks) =
            raw_miss_with(&cache, "EDGETHUMB_MAX_SOURCE_BYTES_IN_FLIGHT", "10000");
        let mut other = service.inner.budget.claim();
        other.grow(5000).unwrap();
        let mut sent = 0;
        while let Poll::Ready(Some(chunk)) = poll_once(pin!(chunks.next())) {
            sent += chunk.expect("not cut").len();
        }
        assert_eq!(sent, 3 * 8192);
        assert!(cache.0.borrow().is_empty());
        assert_eq!(service.inner.budget.used(), 5000, "only the other miss's");
        assert!(service.inner.inflight.borrow().is_empty());
    }

    #[test]
    fn a_raw_body_abandoned_midway_is_not_stored() {
        let cache = Rc::new(Recording::default());
        let (service, mut chunks) = raw_miss(&cache);
        assert!(matches!(
            poll_once(pin!(chunks.next())),
            Poll::Ready(Some(Ok(_)))
        ));
        assert_eq!(service.inner.inflight.borrow().len(), 1);
        drop(chunks);
        assert!(cache.0.borrow().is_empty());
        assert!(
            service.inner.inflight.borrow().is_empty(),
            "waiters take over"
        );
        assert_eq!(service.inner.budget.used(), 0);

        // HEAD drops the stream unread.
        let head = Request::head(get_raw().uri()).body(()).unwrap();
        let Poll::Ready(resp) = poll_once(pin!(service.handle_streamed(&head))) else {
            panic!("HEAD is answered at once");
        };
        assert!(matches!(resp.body(), ResponseBody::Full(b) if b.is_empty()));
        assert!(cache.0.borrow().is_empty());
    }

    #[test]
    fn a_waiting_request_takes_over_an_abandoned_miss() {
        waiting_request_takes_over::<true>();
        waiting_request_takes_over::<false>();
    }
}
