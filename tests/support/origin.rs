//! A local upstream for tests, on 127.0.0.1: serves per-path behaviours
//! (images, statuses, slow drips, redirects, oversize bodies) and counts
//! every request it receives, so tests can prove what reached the origin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

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
    /// `Content-Length` of the whole body, the first `sent` bytes of it,
    /// then the connection is dropped.
    CutOff { body: Vec<u8>, sent: usize },
}

type Routes = Arc<Mutex<HashMap<String, Route>>>;
type Hits = Arc<Mutex<HashMap<String, u32>>>;
type Accepts = Arc<Mutex<HashMap<String, String>>>;

pub struct Origin {
    pub addr: SocketAddr,
    routes: Routes,
    hits: Hits,
    accepts: Accepts,
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Routes = Arc::default();
        let hits: Hits = Arc::default();
        let accepts: Accepts = Arc::default();
        let (r, h, a) = (routes.clone(), hits.clone(), accepts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (r, h, a) = (r.clone(), h.clone(), a.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (r, h, a) = (r.clone(), h.clone(), a.clone());
                        async move { Ok::<_, Infallible>(serve(req, &r, &h, &a).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Origin {
            addr,
            routes,
            hits,
            accepts,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers `route` at `path` and returns the full source URL.
    pub fn route(&self, path: &str, route: Route) -> String {
        self.routes.lock().unwrap().insert(path.to_string(), route);
        format!("{}{path}", self.base())
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// The `Accept` header of the last request for `path`.
    pub fn last_accept(&self, path: &str) -> Option<String> {
        self.accepts.lock().unwrap().get(path).cloned()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: u16, ct: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", ct)
        .body(boxed_full(body))
        .unwrap()
}

fn boxed_full(body: Vec<u8>) -> Body {
    Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn streamed(
    content_length: Option<u64>,
    stream: impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>>
        + Send
        + Sync
        + 'static,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(200)
        .header("content-type", "image/jpeg");
    if let Some(n) = content_length {
        b = b.header("content-length", n.to_string());
    }
    b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

async fn serve(
    req: Request<Incoming>,
    routes: &Routes,
    hits: &Hits,
    accepts: &Accepts,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let hit = {
        let mut h = hits.lock().unwrap();
        let n = h.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if let Some(a) = req.headers().get("accept").and_then(|v| v.to_str().ok()) {
        accepts.lock().unwrap().insert(path.clone(), a.to_string());
    }
    let route = routes.lock().unwrap().get(&path).cloned();
    match route {
        None => full(404, "text/plain", b"no such route".to_vec()),
        Some(Route::Body(b, ct)) => full(200, ct, b),
        Some(Route::Status(s)) => full(s, "text/plain", format!("status {s}").into_bytes()),
        Some(Route::Flaky { fail, status, .. }) if hit <= fail => full(
            status,
            "text/plain",
            format!("status {status}").into_bytes(),
        ),
        Some(Route::Flaky { body, .. }) => full(200, "image/jpeg", body),
        Some(Route::Slow(d, b)) => {
            tokio::time::sleep(d).await;
            full(200, "image/jpeg", b)
        }
        Some(Route::Redirect(to)) => Response::builder()
            .status(302)
            .header("location", to)
            .body(boxed_full(Vec::new()))
            .unwrap(),
        Some(Route::Large {
            len,
            content_length,
        }) => {
            let chunk = Bytes::from(vec![0xAB; 64 * 1024]);
            let n = len.div_ceil(chunk.len());
            let stream = futures_util::stream::iter(
                (0..n).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
            );
            streamed(content_length.then_some((n * 64 * 1024) as u64), stream)
        }
        Some(Route::LyingLength { claimed }) => {
            let chunk = Bytes::from_static(b"\xff\xd8\xff\xe0 not the promised body");
            // Then nothing: the connection stays open, as a hostile server's would.
            let stream = futures_util::stream::iter([Ok(Frame::data(chunk))])
                .chain(futures_util::stream::pending());
            streamed(Some(claimed), stream)
        }
        Some(Route::Drip { every, bytes }) => {
            let stream = futures_util::stream::unfold(0, move |i| async move {
                if i == bytes {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok(Frame::data(Bytes::from_static(b"\xff"))), i + 1))
            });
            streamed(None, stream)
        }
        Some(Route::CutOff { body, sent }) => {
            let total = body.len() as u64;
            let head = Bytes::from(body[..sent.min(body.len())].to_vec());
            let stream = futures_util::stream::iter([
                Ok(Frame::data(head)),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut off",
                )),
            ]);
            streamed(Some(total), stream)
        }
    }
}
