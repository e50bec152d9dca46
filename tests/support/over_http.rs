//! The runtime tier's wire: the test origin served over HTTP on 127.0.0.1,
//! and the harness's [`Transport`] as an HTTP client.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::harness::{Reply, Transport};
use super::origin::Origin;

impl Origin {
    /// Serves the origin's table over HTTP on a free loopback port.
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = Origin::at(listener.local_addr().unwrap());
        let served = origin.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let origin = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let origin = origin.clone();
                        async move { Ok::<_, Infallible>(serve(&origin, &req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        origin
    }
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

async fn serve(origin: &Origin, req: &Request<Incoming>) -> Response<Body> {
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
    let answer = origin.answer(req.uri().path(), accept);
    if let Some(d) = answer.delay {
        tokio::time::sleep(d).await;
    }
    let mut b = Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type);
    if let Some(to) = answer.location {
        b = b.header("location", to);
    }
    if let Some(n) = answer.content_length {
        b = b.header("content-length", n);
    }
    let body = StreamBody::new(answer.body.map_ok(Frame::data)).boxed_unsync();
    b.body(body).unwrap()
}

/// The HTTP client every runtime-tier test uses: no redirects followed
/// (the service's own answers are under test), a generous timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// A running server at `base`, reached over HTTP.
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Http {
            base: base.to_string(),
            client: client(),
        }
    }
}

impl Transport for Http {
    fn send(&self, req: http::Request<()>) -> LocalBoxFuture<'_, Result<Reply, String>> {
        Box::pin(async move {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let url = format!("{}{path}", self.base);
            let resp = self
                .client
                .request(req.method().clone(), url)
                .headers(req.headers().clone());
            let started = Instant::now();
            let resp = resp
                .send()
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let (mut body, mut first_byte, mut cut) = (Vec::new(), None, None);
            let mut resp = resp;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        first_byte.get_or_insert_with(|| started.elapsed());
                        body.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        cut = Some(format!("body failed: {e}"));
                        break;
                    }
                }
            }
            let took = started.elapsed();
            Ok(Reply {
                status,
                headers,
                body,
                took,
                first_byte: first_byte.unwrap_or(took),
                cut,
            })
        })
    }
}
