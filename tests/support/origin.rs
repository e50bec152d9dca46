//! A test upstream: per-path behaviours (images, statuses, slow drips,
//! redirects, oversize bodies) that count every request they receive, so
//! tests can prove what reached the origin.
//!
//! The table is played two ways, from the same [`Origin::answer`]: over
//! HTTP on 127.0.0.1 (`Origin::start`, in `over_http.rs`, for the runtime
//! tier) and as the core's `Fetch` seam in process ([`MemoryFetch`], for the
//! fast tier).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use edgethumb::seams::fetch::{Body, Fetch, FetchError, UPSTREAM_ACCEPT};
use futures_util::{Stream, StreamExt as _};

/// What the origin does for one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// 200 with this body and content type.
    Body(Vec<u8>, &'static str),
    /// This status, a short text body.
    Status(u16),
    /// Waits, then serves the body.
    Slow(Duration, Vec<u8>),
    /// 302 to this location (absolute or relative).
    Redirect(String),
    /// A body of `len` bytes streamed in chunks, with or without a
    /// `Content-Length` header.
    Large { len: usize, content_length: bool },
    /// The first `fail` requests get `status`; later ones the JPEG body.
    Flaky {
        fail: u32,
        status: u16,
        body: Vec<u8>,
    },
    /// Headers claiming `claimed` bytes, then a short body.
    LyingLength { claimed: u64 },
    /// Headers at once, then one byte every `every`, `bytes` in all.
    Drip { every: Duration, bytes: usize },
    /// The first `first` bytes of `body`, a pause, then the rest in
    /// 64 KiB chunks; with or without a `Content-Length` header.
    Paused {
        body: Vec<u8>,
        first: usize,
        pause: Duration,
        content_length: bool,
    },
    /// `Content-Length` of the whole body, the first `sent` bytes of it,
    /// then the connection is dropped.
    CutOff { body: Vec<u8>, sent: usize },
    /// A host that flaps: the JPEG body for one `period`, 503 for the
    /// next, by the wall clock.
    Flapping { period: Duration, body: Vec<u8> },
}

/// A body as a stream of chunks; an error drops the connection.
pub type Chunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// One response of the origin, transport-neutral.
pub struct Answer {
    /// Waited before the headers are sent.
    pub delay: Option<Duration>,
    pub status: u16,
    pub content_type: &'static str,
    pub location: Option<String>,
    pub content_length: Option<u64>,
    pub body: Chunks,
}

#[derive(Default)]
struct Table {
    routes: HashMap<String, Route>,
    hits: HashMap<String, u32>,
    accepts: HashMap<String, String>,
}

/// The origin's routes and counters. Clones share them.
#[derive(Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    table: Arc<Mutex<Table>>,
}

impl Origin {
    /// An origin for `addr`, not listening anywhere: the in-process tier
    /// reaches it through [`MemoryFetch`]. Each gets its own port number
    /// below 1024, which no test binds, so origins are distinct hosts.
    pub fn in_memory() -> Origin {
        static NEXT_PORT: AtomicU16 = AtomicU16::new(100);
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        Origin::at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    pub(crate) fn at(addr: SocketAddr) -> Origin {
        Origin {
            addr,
            table: Arc::default(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `route` at `path` and returns the full source URL.
    pub fn route(&self, path: &str, route: Route) -> String {
        self.table().routes.insert(path.to_string(), route);
        format!("{}{path}", self.base())
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.table().hits.get(path).copied().unwrap_or(0)
    }

    /// The `Accept` header of the last request for `path`.
    pub fn last_accept(&self, path: &str) -> Option<String> {
        self.table().accepts.get(path).cloned()
    }

    /// Counts a request for `path` and plays its route.
    pub fn answer(&self, path: &str, accept: Option<&str>) -> Answer {
        let (hit, route) = {
            let mut t = self.table();
            let n = t.hits.entry(path.to_string()).or_default();
            *n += 1;
            let hit = *n;
            if let Some(a) = accept {
                t.accepts.insert(path.to_string(), a.to_string());
            }
            (hit, t.routes.get(path).cloned())
        };
        play(route, hit)
    }
}

fn whole(status: u16, content_type: &'static str, body: Vec<u8>) -> Answer {
    Answer {
        delay: None,
        status,
        content_type,
        location: None,
        content_length: Some(body.len() as u64),
        body: Box::pin(futures_util::stream::iter([Ok(Bytes::from(body))])),
    }
}

fn streamed(content_length: Option<u64>, body: Chunks) -> Answer {
    Answer {
        delay: None,
        status: 200,
        content_type: "image/jpeg",
        location: None,
        content_length,
        body,
    }
}

fn play(route: Option<Route>, hit: u32) -> Answer {
    use futures_util::stream;
    let text = |s: u16| whole(s, "text/plain", format!("status {s}").into_bytes());
    match route {
        None => whole(404, "text/plain", b"no such route".to_vec()),
        Some(Route::Body(b, ct)) => whole(200, ct, b),
        Some(Route::Status(s)) => text(s),
        Some(Route::Flaky { fail, status, .. }) if hit <= fail => text(status),
        Some(Route::Flaky { body, .. }) => whole(200, "image/jpeg", body),
        Some(Route::Slow(d, b)) => Answer {
            delay: Some(d),
            ..whole(200, "image/jpeg", b)
        },
        Some(Route::Redirect(to)) => Answer {
            location: Some(to),
            ..whole(302, "text/plain", Vec::new())
        },
        Some(Route::Large {
            len,
            content_length,
        }) => {
            let chunk = Bytes::from(vec![0xAB; 64 * 1024]);
            let n = len.div_ceil(chunk.len());
            let chunks = stream::iter((0..n).map(move |_| Ok(chunk.clone())));
            streamed(
                content_length.then_some((n * 64 * 1024) as u64),
                Box::pin(chunks),
            )
        }
        Some(Route::LyingLength { claimed }) => {
            let chunk = Bytes::from_static(b"\xff\xd8\xff\xe0 not the promised body");
            // Then nothing: the connection stays open, as a hostile server's would.
            let chunks = stream::iter([Ok(chunk)]).chain(stream::pending());
            streamed(Some(claimed), Box::pin(chunks))
        }
        Some(Route::Drip { every, bytes }) => {
            let chunks = stream::unfold(0, move |i| async move {
                if i == bytes {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok(Bytes::from_static(b"\xff")), i + 1))
            });
            streamed(None, Box::pin(chunks))
        }
        Some(Route::Paused {
            body,
            first,
            pause,
            content_length,
        }) => {
            let total = body.len() as u64;
            let body = Bytes::from(body);
            let first = first.min(body.len());
            let (head, rest) = (body.slice(..first), body.slice(first..));
            let rest: Vec<_> = (0..rest.len())
                .step_by(64 * 1024)
                .map(|at| Ok(rest.slice(at..(at + 64 * 1024).min(rest.len()))))
                .collect();
            let chunks = stream::iter([Ok(head)])
                .chain(stream::once(tokio::time::sleep(pause)).filter_map(|()| async { None }))
                .chain(stream::iter(rest));
            streamed(content_length.then_some(total), Box::pin(chunks))
        }
        Some(Route::Flapping { period, body }) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            match (now.as_millis() / period.as_millis().max(1)) % 2 {
                0 => whole(200, "image/jpeg", body),
                _ => text(503),
            }
        }
        Some(Route::CutOff { body, sent }) => {
            let total = body.len() as u64;
            let head = Bytes::from(body[..sent.min(body.len())].to_vec());
            let chunks = stream::iter([
                Ok(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut off",
                )),
            ]);
            streamed(Some(total), Box::pin(chunks))
        }
    }
}

/// The core's `Fetch` seam played by in-memory origins: what an adapter's
/// HTTP client would return, without sockets. Any other host is refused,
/// as a closed port would be.
#[derive(Clone)]
pub struct MemoryFetch {
    origins: Vec<Origin>,
}

impl MemoryFetch {
    pub fn new(origins: &[&Origin]) -> Self {
        MemoryFetch {
            origins: origins.iter().map(|&o| o.clone()).collect(),
        }
    }
}

pub struct MemoryBody(Chunks);

impl Body for MemoryBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match self.0.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(e)) => Err(FetchError::Failed(e.to_string())),
        }
    }
}

impl Fetch for MemoryFetch {
    type Body = MemoryBody;

    async fn get(&self, url: &url::Url) -> Result<http::Response<MemoryBody>, FetchError> {
        let origin = self
            .origins
            .iter()
            .find(|o| {
                url.host_str() == Some(&o.addr.ip().to_string())
                    && url.port_or_known_default() == Some(o.addr.port())
            })
            .ok_or_else(|| FetchError::Failed("connection refused".into()))?;
        let answer = origin.answer(url.path(), Some(UPSTREAM_ACCEPT));
        if let Some(d) = answer.delay {
            tokio::time::sleep(d).await;
        }
        // As a client library hands it over: the status and the headers.
        let mut resp = http::Response::new(MemoryBody(answer.body));
        *resp.status_mut() = http::StatusCode::from_u16(answer.status)
            .map_err(|_| FetchError::Failed(format!("bad status {}", answer.status)))?;
        let headers = resp.headers_mut();
        if let Some(to) = answer.location {
            headers.insert(http::header::LOCATION, to.parse().unwrap());
        }
        if let Some(n) = answer.content_length {
            headers.insert(http::header::CONTENT_LENGTH, n.into());
        }
        Ok(resp)
    }
}
