//! edgethumb on Cloudflare Workers (wasm32-unknown-unknown, workers-rs).
//!
//! Thin: converts the request and response, and supplies the platform
//! parts: `fetch` with Cloudflare's `cf` caching for originals
//! ([`fetch`]), the edge Cache API and, when bound, an R2 bucket behind
//! it, both written through `waitUntil` ([`edge_cache`], [`r2_store`]),
//! and JS timers ([`runtime`]). The core owns everything else. One
//! service per isolate, so concurrent identical misses in an isolate share
//! one fetch and one transform.

mod after_response;
mod edge_cache;
mod fetch;
mod r2_store;
mod runtime;

use std::cell::RefCell;

use edgethumb::service::ResponseBody;
use edgethumb::{Config, Service, Tiered};
use http::{HeaderName, HeaderValue};
use worker::{event, Context, Env, Headers, Request, Response};

use edge_cache::EdgeCache;
use fetch::WorkerFetch;
use r2_store::R2Store;
use runtime::WorkerRuntime;

/// The Cache API, and R2 behind it when `EDGETHUMB_RESULTS` is bound.
type WorkerCache = Tiered<EdgeCache, Option<R2Store>, WorkerRuntime>;
type WorkerService = Service<WorkerFetch, WorkerCache, WorkerRuntime>;

/// Adds `x-edgethumb-wasm-memory` (linear memory bytes after the request)
/// to every response when set to `true`. For the memory measurements in
/// the test suite; not needed in production.
const REPORT_MEMORY_VAR: &str = "EDGETHUMB_REPORT_WASM_MEMORY";

thread_local! {
    // An isolate is single-threaded; the service (and its in-flight map)
    // lives as long as the isolate.
    static SERVICE: RefCell<Option<WorkerService>> = const { RefCell::new(None) };
}

/// Configuration from wrangler `vars` and secrets (both are string
/// bindings), by the same names as everywhere else.
fn lookup(env: &Env) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| env.var(name).ok().map(|v| v.to_string())
}

fn service(env: &Env) -> Result<WorkerService, String> {
    SERVICE.with(|cell| {
        if let Some(s) = cell.borrow().as_ref() {
            return Ok(s.clone());
        }
        let config = Config::from_lookup(lookup(env)).map_err(|e| e.to_string())?;
        let cfg = fetch::SourceCaching::from_lookup(lookup(env));
        let r2 = env.bucket(r2_store::BINDING).ok().map(R2Store::new);
        let cache = Tiered::new(
            EdgeCache::default(),
            r2,
            WorkerRuntime,
            config.store_read_timeout,
        );
        let s = Service::new(config, WorkerFetch::new(cfg), cache, WorkerRuntime);
        *cell.borrow_mut() = Some(s.clone());
        Ok(s)
    })
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let service = match service(&env) {
        Ok(s) => s,
        // Named on every request until fixed, never silently defaulted.
        Err(e) => {
            return Response::error(format!("configuration error: {e}"), 500);
        }
    };
    let core_req = to_core_request(&req);
    let (resp, record) = service.handle_recorded(&core_req).await;
    // One JSON line per miss and per failure, for Workers Logs and
    // Logpush (hits are in the platform's own request log).
    if record.worth_an_edge_line() {
        match record.status {
            500.. => worker::console_warn!("{}", record.to_json()),
            _ => worker::console_log!("{}", record.to_json()),
        }
    }
    // Cache writes started by this (or a coalesced) request finish after
    // the response is sent.
    hand_over_writes(&service, &ctx);
    let report = env
        .var(REPORT_MEMORY_VAR)
        .is_ok_and(|v| v.to_string() == "true");
    to_worker_response(resp, report, service, ctx, &record.id)
}

/// Queued Cache API and R2 writes, to `waitUntil`.
fn hand_over_writes(service: &WorkerService, ctx: &Context) {
    let cache = service.cache();
    let r2 = cache.store().iter().flat_map(|r2| r2.writes.take());
    for put in cache.front().writes.take().into_iter().chain(r2) {
        ctx.wait_until(put);
    }
}

/// Method, path and headers: all the core reads. Headers that `http`
/// cannot represent are dropped rather than trusted.
fn to_core_request(req: &Request) -> http::Request<()> {
    let mut out = http::Request::new(());
    *out.method_mut() =
        http::Method::from_bytes(req.inner().method().as_bytes()).unwrap_or(http::Method::OPTIONS);
    // The path as sent (percent-encoding intact); the URL parser already
    // made it a valid origin-form.
    if let Ok(url) = req.url() {
        if let Ok(uri) = url.path().parse() {
            *out.uri_mut() = uri;
        }
    }
    copy_headers(req.headers(), out.headers_mut());
    out
}

pub(crate) fn copy_headers(from: &Headers, to: &mut http::HeaderMap) {
    for (name, value) in from.entries() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            to.append(n, v);
        }
    }
}

pub(crate) fn to_js_headers(from: &http::HeaderMap) -> Headers {
    let headers = Headers::new();
    for (name, value) in from {
        if let Ok(v) = value.to_str() {
            let _ = headers.append(name.as_str(), v);
        }
    }
    headers
}

fn to_worker_response(
    resp: http::Response<ResponseBody>,
    report: bool,
    service: WorkerService,
    ctx: Context,
    id: &str,
) -> worker::Result<Response> {
    let (parts, body) = resp.into_parts();
    let headers = to_js_headers(&parts.headers);
    if report {
        let _ = headers.set(
            "x-edgethumb-wasm-memory",
            &runtime::linear_memory_bytes().to_string(),
        );
    }
    let out = match body {
        // 304 and HEAD carry no body; a null body is required for 304.
        ResponseBody::Full(b) if b.is_empty() => Response::empty()?,
        ResponseBody::Full(b) => Response::from_bytes(b.to_vec())?,
        ResponseBody::Streamed(chunks) => {
            Response::from_stream(streamed(chunks, service, ctx, id))?
        }
    };
    Ok(out.with_status(parts.status.as_u16()).with_headers(headers))
}

/// A streamed body for workerd. A cut errors the JS stream, which aborts
/// the response. The cache write made when the body completes is handed
/// to `waitUntil`, as for any response.
fn streamed(
    chunks: edgethumb::service::Chunks,
    service: WorkerService,
    ctx: Context,
    id: &str,
) -> impl futures_util::Stream<Item = worker::Result<Vec<u8>>> + 'static {
    use futures_util::StreamExt as _;
    let id = id.to_string();
    let tail = futures_util::stream::once(async move { hand_over_writes(&service, &ctx) })
        .filter_map(|()| async { None });
    chunks
        .map(move |chunk| match chunk {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(cut) => {
                worker::console_warn!("response aborted (request {id}): {cut}");
                Err(worker::Error::RustError(cut.to_string()))
            }
        })
        .chain(tail)
}
