//! edgethumb on Spin and any wasi:http 0.2 host (a wasm32-wasip2 component).
//!
//! Thin: converts the request, supplies outgoing-HTTP fetch and a WASI
//! timer, and hands everything else to the core. Configuration comes from
//! the environment (`spin up --env`, `wasmtime serve --env`), so the default
//! build imports only `wasi:*` interfaces.
// spin-sdk's `http_component` macro exports the wasi:http handler through
// generated `unsafe` code (the component ABI); none is written here.
#![allow(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use edgethumb::seams::fetch::{Body, Fetch, FetchError};
use edgethumb::service::ResponseBody;
use edgethumb::{Config, NoCache, Runtime, Service};
use futures::{Stream, StreamExt};
use spin_sdk::http::{
    Headers, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};

#[cfg(feature = "spin-kv")]
mod kv_store;

#[cfg(feature = "spin-kv")]
type ResultStore = kv_store::KvStore;
#[cfg(not(feature = "spin-kv"))]
type ResultStore = edgethumb::NoStore;

type ResultCache = edgethumb::Tiered<edgethumb::NoCache, ResultStore, WasiRuntime>;

type SpinService = Service<WasiFetch, ResultCache, WasiRuntime>;

/// A configuration value: a Spin variable (`spin-variables` feature, lower
/// case: `edgethumb_key`), else the environment variable.
fn lookup(name: &str) -> Option<String> {
    #[cfg(feature = "spin-variables")]
    if let Ok(v) = spin_sdk::variables::get(&name.to_ascii_lowercase()) {
        return Some(v);
    }
    std::env::var(name).ok()
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    use spin_sdk::http::conversions::TryFromIncomingRequest as _;
    let Ok(req) = http::Request::<Vec<u8>>::try_from_incoming_request(req).await else {
        return send(text(400, "unreadable request"), out).await;
    };
    // Instances may be fresh per request: loading is a few string parses.
    let service: SpinService = match Config::from_lookup(lookup) {
        Ok(c) => {
            let cache =
                ResultCache::new(NoCache, ResultStore {}, WasiRuntime, c.store_read_timeout);
            Service::new(c, WasiFetch, cache, WasiRuntime)
        }
        Err(e) => return send(text(500, &format!("configuration error: {e}")), out).await,
    };
    let (resp, record) = service.handle_recorded(&req).await;
    // One JSON line per miss and per failure on stderr, the host's log.
    if record.worth_an_edge_line() {
        eprintln!("{}", record.to_json());
    }
    send(resp, out).await
}

fn text(status: u16, line: &str) -> http::Response<ResponseBody> {
    let mut r = http::Response::new(ResponseBody::Full(format!("{line}\n").into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    r
}

/// Sends the response, its body written as it comes. A body cut short
/// leaves the outgoing body unfinished, which the host reports as a
/// broken response rather than ending it.
async fn send(resp: http::Response<ResponseBody>, out: ResponseOutparam) {
    let (parts, body) = resp.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        let _ = headers.append(name.as_str(), value.as_bytes());
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(parts.status.as_u16());
    let Ok(outgoing) = response.body() else {
        return;
    };
    out.set(response);
    let Ok(stream) = outgoing.write() else {
        return;
    };
    match body {
        ResponseBody::Full(bytes) => {
            if write_all(&stream, &bytes).is_err() {
                return;
            }
        }
        ResponseBody::Streamed(mut chunks) => {
            while let Some(chunk) = chunks.next().await {
                let written = match chunk {
                    Ok(bytes) => write_all(&stream, &bytes),
                    Err(cut) => {
                        eprintln!("edgethumb: response aborted: {cut}");
                        return;
                    }
                };
                if written.is_err() {
                    // The client went away: the stream is dropped, unstored.
                    return;
                }
            }
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

/// wasi:io streams take at most 4096 bytes a blocking write. One request
/// per instance, so blocking here holds no other request up.
fn write_all(
    stream: &wasi::io::streams::OutputStream,
    mut bytes: &[u8],
) -> Result<(), wasi::io::streams::StreamError> {
    while !bytes.is_empty() {
        let n = bytes.len().min(4096);
        stream.blocking_write_and_flush(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Outgoing HTTP through `wasi:http/outgoing-handler`. Hosts do not follow
/// redirects, which the core needs: it re-checks each hop.
pub struct WasiFetch;

/// The body stream, with its response kept alive until the stream is done
/// (fields drop in order: the child body before its parent response).
pub struct WasiBody {
    stream: Pin<Box<dyn Stream<Item = Result<Vec<u8>, wasi::io::streams::Error>>>>,
    _response: IncomingResponse,
}

impl Body for WasiBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(Bytes::from(chunk))),
            Some(Err(e)) => Err(FetchError::Failed(format!(
                "body read failed: {}",
                e.to_debug_string()
            ))),
        }
    }
}

impl Fetch for WasiFetch {
    type Body = WasiBody;

    async fn get(&self, url: &url::Url) -> Result<http::Response<WasiBody>, FetchError> {
        let headers = Headers::new();
        let _ = headers.append(
            "accept",
            edgethumb::seams::fetch::UPSTREAM_ACCEPT.as_bytes(),
        );
        let req = OutgoingRequest::new(headers);
        let host = url
            .host()
            .ok_or_else(|| FetchError::Failed("no host".into()))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let scheme = if url.scheme() == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let set = req.set_method(&Method::Get).is_ok()
            && req.set_scheme(Some(&scheme)).is_ok()
            && req.set_authority(Some(&authority)).is_ok()
            && req.set_path_with_query(Some(path)).is_ok();
        if !set {
            return Err(FetchError::Failed(
                "cannot build the upstream request".into(),
            ));
        }
        let resp: IncomingResponse = spin_sdk::http::send(req)
            .await
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        let mut out = http::Response::new(());
        *out.status_mut() = http::StatusCode::from_u16(resp.status())
            .map_err(|_| FetchError::Failed(format!("bad status {}", resp.status())))?;
        for (name, value) in resp.headers().entries() {
            // Headers `http` cannot represent are dropped, not trusted.
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(&value),
            ) {
                out.headers_mut().append(n, v);
            }
        }
        let stream = Box::pin(resp.take_body_stream());
        Ok(out.map(|()| WasiBody {
            stream,
            _response: resp,
        }))
    }
}

/// Clocks from WASI; CPU work runs inline (one request per instance).
pub struct WasiRuntime;

impl Runtime for WasiRuntime {
    fn unix_time(&self) -> u64 {
        edgethumb::seams::runtime::std_unix_time()
    }

    fn clock(&self) -> fn() -> f64 {
        edgethumb::seams::runtime::std_monotonic_ms
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Sleep {
            deadline: wasi::clocks::monotonic_clock::now().saturating_add(ns),
            _token: None,
        }
    }

    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, edgethumb::OffloadError> {
        Ok(work())
    }
}

/// A timer on the spin executor: registers a monotonic-clock pollable, and
/// cancels it if dropped first (the fetch won the race).
struct Sleep {
    deadline: u64,
    _token: Option<spin_executor::CancelOnDropToken>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if wasi::clocks::monotonic_clock::now() >= self.deadline {
            return Poll::Ready(());
        }
        let pollable = wasi::clocks::monotonic_clock::subscribe_instant(self.deadline);
        let token = spin_executor::push_waker_and_get_token(pollable, cx.waker().clone());
        self._token = Some(token.into());
        Poll::Pending
    }
}
