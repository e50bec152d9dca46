//! A local upstream for tests, on 127.0.0.1: serves per-path behaviours
//! (images, statuses, slow drips, redirects, oversize bodies) and counts
//! every request it receives, so tests can prove what reached the origin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
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

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, ct: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
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
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
        Some(Route::Large {
            len,
            content_length,
        }) => {
            let chunk = Bytes::from(vec![0xAB; 64 * 1024]);
            let n = len.div_ceil(chunk.len());
            let stream = futures_util::stream::iter(
                (0..n).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
            );
            let mut b = Response::builder()
                .status(200)
                .header("content-type", "image/jpeg");
            if content_length {
                b = b.header("content-length", (n * 64 * 1024).to_string());
            }
            b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
        }
    }
}
