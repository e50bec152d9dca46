//! `raw`, streamed: the source's bytes go to the client as they arrive,
//! under the same source policy, byte limit, deadline and breaker as any
//! source.
//! - What it is (an image or an SVG, else 415) is decided from its first
//!   4 KiB, before the status is sent.
//! - A copy is kept for the result cache, and identical requests wait for
//!   it; where nothing is cached, no copy is kept.
//! - A body cut short once the status is out (the byte limit, the
//!   deadline, the upstream) aborts the response, so the client sees a
//!   broken transfer rather than a short image, and nothing is stored.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use http::header::{self, HeaderMap};
use http::{Response, StatusCode};

use super::coalesce::Leading;
use super::plan::Plan;
use super::produce::{self, fail_or_fallback, failure, Produced, Reply};
use super::respond::{insert, per_request, served};
use super::{Inner, ServerTiming, Service};
use crate::error::Error;
use crate::resilience::breaker;
use crate::resilience::shedding::Claim;
use crate::seams::cache::{self, Cache, CachedResponse};
use crate::seams::fetch::{self, Body, Fetch, SourceBody};
use crate::seams::runtime::Runtime;

/// Read before the status is sent: SVG sniffing looks this far.
const HEAD_BYTES: usize = 4096;

/// A response body: whole, or streamed as it arrives.
pub enum ResponseBody {
    Full(Bytes),
    Streamed(Chunks),
}

/// A streamed body. An `Err` means it was cut short: the adapter aborts
/// the response instead of ending it.
pub type Chunks = LocalBoxStream<'static, Result<Bytes, BodyCut>>;

/// Why a streamed body stopped before its end.
#[derive(Debug, Clone, thiserror::Error)]
#[error("body cut short: {0}")]
pub struct BodyCut(pub Error);

impl<F: Fetch, C: Cache, R: Runtime> Service<F, C, R> {
    /// A `raw` miss. `Ok`: the response streaming now. `Err`: answered
    /// whole (a failure, or a body within its first bytes), already
    /// stored and given to any waiting requests.
    /// `lookup_ms`: how long the cache took to say it had nothing.
    pub(super) async fn raw_miss(
        &self,
        plan: Plan,
        lookup_ms: f64,
    ) -> Result<Response<ResponseBody>, Rc<Produced>> {
        // Waiting requests are answered from the copy, so only with one.
        let leading = C::STORES.then(|| self.register(plan.key.clone()).0);
        let key = plan.key.clone();
        let Opened {
            headers,
            head,
            source,
            deadline,
            mut timing,
        } = match start(&self.inner, plan).await {
            Started::Whole(p) => {
                let p = Rc::new(p);
                self.store(&key, &p).await;
                if let Some(l) = leading {
                    l.send(Rc::clone(&p));
                }
                return Err(p);
            }
            Started::Streaming(opened) => opened,
        };
        // The declared length is reserved at once, as for any source;
        // refused, the body goes out uncached and waiters take over.
        let kept = leading.and_then(|leading| {
            let mut claim = self.inner.budget.claim();
            let reserve = source.declared().unwrap_or(0);
            claim.grow(reserve).ok()?;
            Some(Kept {
                bytes: Vec::with_capacity(reserve as usize),
                claim,
                leading,
                headers: headers.clone(),
                timing: timing.clone(),
            })
        });
        timing.desc_dur("cache", "miss", lookup_ms);
        let mut sent = headers;
        if let Some(n) = source.declared() {
            insert(&mut sent, header::CONTENT_LENGTH, &n.to_string());
        }
        per_request(&mut sent, "miss", &timing);
        let tee = Tee {
            service: self.clone(),
            source,
            head: Some(head),
            deadline,
            kept,
            done: false,
        };
        let chunks = stream::unfold(tee, Tee::step).boxed_local();
        let mut resp = Response::new(ResponseBody::Streamed(chunks));
        *resp.headers_mut() = sent;
        resp.extensions_mut().insert(served("miss", &timing));
        Ok(resp)
    }
}

/// How a `raw` miss starts.
enum Started<B> {
    /// Answered whole: a failure, or a body that ended within its head.
    Whole(Produced),
    /// The headers are known; the body follows.
    Streaming(Opened<B>),
}

struct Opened<B> {
    headers: HeaderMap,
    head: Bytes,
    source: SourceBody<B>,
    /// When the fetch's one deadline passes (the runtime's clock, ms).
    deadline: f64,
    timing: ServerTiming,
}

async fn start<F: Fetch, C: Cache, R: Runtime>(
    inner: &Inner<F, C, R>,
    plan: Plan,
) -> Started<F::Body> {
    let cfg = &inner.config;
    let clock = inner.runtime.clock();
    let job = Reply::new(cfg, &plan, None);
    let t0 = clock();
    let ticket = match produce::admit(inner, &plan.source, &job, t0).await {
        Ok(t) => t,
        Err(refused) => return Started::Whole(refused),
    };
    let deadline = t0 + cfg.fetch.timeout.as_secs_f64() * 1000.0;
    let opened = within(inner, deadline, async {
        let mut source =
            fetch::open_source(&inner.fetch, plan.source, &cfg.fetch, &cfg.sources).await?;
        let head = read_head(&mut source).await?;
        Ok((source, head))
    })
    .await;
    ticket.record(breaker::counts_as_failure(&opened), clock());
    let mut timing = ServerTiming::default();
    timing.dur("fetch", clock() - t0);
    let (source, (head, ended)) = match opened {
        Ok(o) => o,
        Err(e) => return Started::Whole(fail_or_fallback(inner, e, &job, timing).await),
    };
    let (mut headers, kind) = match produce::raw_headers(&head, &job, cfg) {
        Ok(h) => h,
        Err(e) => return Started::Whole(failure(e, cfg, job.vary, timing)),
    };
    timing.desc("raw", kind);
    if ended {
        insert(&mut headers, header::ETAG, &cache::etag(&head));
        return Started::Whole(whole(headers, head, cfg.ttls.success, timing));
    }
    Started::Streaming(Opened {
        headers,
        head,
        source,
        deadline,
        timing,
    })
}

fn whole(headers: HeaderMap, body: Bytes, ttl: u32, timing: ServerTiming) -> Produced {
    Produced {
        response: CachedResponse {
            status: StatusCode::OK,
            headers,
            body,
            ttl,
        },
        timing,
        detail: None,
        failure: None,
    }
}

/// The first [`HEAD_BYTES`] (or the whole body, if shorter: `true`).
async fn read_head<B: Body>(source: &mut SourceBody<B>) -> Result<(Bytes, bool), Error> {
    let mut head = Vec::new();
    while head.len() < HEAD_BYTES {
        match source.next().await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => return Ok((Bytes::from(head), true)),
        }
    }
    Ok((Bytes::from(head), false))
}

/// `work`, unless the fetch's deadline passes first.
async fn within<F, C, R: Runtime, T>(
    inner: &Inner<F, C, R>,
    deadline: f64,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let left_ms = (deadline - (inner.runtime.clock())()).max(0.0);
    let timer = inner
        .runtime
        .sleep(Duration::from_secs_f64(left_ms / 1000.0));
    match select(pin!(work), pin!(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(Error::UpstreamTimeout(
            inner.config.fetch.timeout.as_millis() as u64,
        )),
    }
}

/// The copy of what was sent, stored and given to waiting requests once
/// the body is complete.
struct Kept<F, C, R> {
    bytes: Vec<u8>,
    /// The copy counts against the bytes misses may hold.
    claim: Claim,
    leading: Leading<F, C, R>,
    headers: HeaderMap,
    timing: ServerTiming,
}

/// The body on its way out: the head, then each chunk as it arrives.
struct Tee<F: Fetch, C, R> {
    service: Service<F, C, R>,
    source: SourceBody<F::Body>,
    head: Option<Bytes>,
    deadline: f64,
    kept: Option<Kept<F, C, R>>,
    done: bool,
}

impl<F: Fetch, C: Cache, R: Runtime> Tee<F, C, R> {
    async fn step(mut self) -> Option<(Result<Bytes, BodyCut>, Self)> {
        if self.done {
            return None;
        }
        let next = match self.head.take() {
            Some(head) => Ok(Some(head)),
            None => within(&self.service.inner, self.deadline, self.source.next()).await,
        };
        match next {
            Ok(Some(chunk)) => {
                self.keep(&chunk);
                // Stored now: with the length sent, the server may never
                // ask for the end.
                if self.source.complete() {
                    self.done = true;
                    if let Some(kept) = self.kept.take() {
                        self.finish(kept).await;
                    }
                }
                Some((Ok(chunk), self))
            }
            Ok(None) => {
                if let Some(kept) = self.kept.take() {
                    self.finish(kept).await;
                }
                None
            }
            Err(e) => {
                // Waiting requests take the miss over; nothing is stored.
                self.kept = None;
                self.done = true;
                Some((Err(BodyCut(e)), self))
            }
        }
    }

    /// Adds a chunk to the copy; past the budget the copy is dropped (the
    /// stream goes on, uncached).
    fn keep(&mut self, chunk: &[u8]) {
        let Some(kept) = self.kept.as_mut() else {
            return;
        };
        let len = (kept.bytes.len() + chunk.len()) as u64;
        match kept.claim.grow(len.saturating_sub(kept.claim.held())) {
            Ok(()) => kept.bytes.extend_from_slice(chunk),
            Err(_) => self.kept = None,
        }
    }

    async fn finish(&self, kept: Kept<F, C, R>) {
        let Kept {
            bytes,
            leading,
            mut headers,
            timing,
            ..
        } = kept;
        let body = cache::body(bytes);
        insert(&mut headers, header::ETAG, &cache::etag(&body));
        let ttl = self.service.inner.config.ttls.success;
        let produced = Rc::new(whole(headers, body, ttl, timing));
        self.service.store(&leading.key, &produced).await;
        leading.send(produced);
    }
}
