//! `edgethumb serve`: the core service on a native HTTP server.
//!
//! Threads, so that a cache hit never waits behind the I/O of misses:
//! - `--io-threads` I/O threads (one per CPU by default), each a tokio
//!   current-thread runtime with a `LocalSet` (the core's futures are
//!   `!Send`, like a Worker's), accept connections from one listening
//!   socket, speak HTTP, and answer hits from the shared cache;
//! - one miss thread ([`crate::misses`]) owns every miss, so coalescing,
//!   the breaker and the budgets stay exact;
//! - transforms run on the blocking pool, one per CPU.
//!
//! Connections are bounded three ways: at most `--max-connections` open
//! (past it, new ones wait in the listen backlog, and a log line says so),
//! headers within 10 s, and a response write that stalls (a client that
//! sends requests and never reads) for `--write-timeout-ms` closes the
//! connection. hyper answers pipelined requests one at a time, so a
//! connection holds at most one response beyond the socket's buffers.
//!
//! Clients speak HTTP/1.1 or HTTP/2 with prior knowledge (h2c). Every
//! request is logged ([`crate::log`]) and counted ([`crate::metrics`],
//! `GET /metrics` here or on `--metrics-bind`).
//!
//! SIGTERM or SIGINT stops it gracefully: the listener closes (new
//! connections are refused), idle keep-alive connections close, and
//! requests in flight get `EDGETHUMB_SHUTDOWN_GRACE_MS` to finish before
//! the process exits 0.

use crate::exit::Exit;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use edgethumb::request::url_builder::{self, SourceEncoding};
use edgethumb::service::{BodyCut, Chunks, ResponseBody};
use edgethumb::{Config, Service, Tiered};
use futures_util::StreamExt as _;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::metrics::{self, Metrics};
use crate::misses::Misses;
use crate::native::{ClientError, MemoryCache, ReqwestFetch, TokioRuntime, TransformQueue};
use crate::result_store::{self, ResultStore};
use crate::{log, malloc, sample, settings};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, env = "EDGETHUMB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Threads for connection I/O and cache hits (default: CPU count).
    #[arg(long, env = "EDGETHUMB_IO_THREADS")]
    pub io_threads: Option<usize>,
    /// Transforms run at once (default: CPU count).
    #[arg(long, env = "EDGETHUMB_MAX_TRANSFORMS")]
    pub max_transforms: Option<usize>,
    /// Transforms that may wait for a slot (default: 16 per slot); past it,
    /// 503 with Retry-After.
    #[arg(long, env = "EDGETHUMB_TRANSFORM_QUEUE")]
    pub transform_queue: Option<usize>,
    /// Longest wait for a transform slot, in ms; past it, 503 with Retry-After.
    #[arg(
        long,
        env = "EDGETHUMB_TRANSFORM_QUEUE_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub transform_queue_timeout_ms: u64,
    /// Connections open at once; past it, new ones wait to be accepted.
    #[arg(long, env = "EDGETHUMB_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Longest a response write may stall (the client not reading), in
    /// ms; past it the connection is closed.
    #[arg(long, env = "EDGETHUMB_WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    pub write_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish,
    /// in ms; past it they are cut. The default fits inside Kubernetes'
    /// 30 s termination grace, so the process exits before a SIGKILL.
    #[arg(long, env = "EDGETHUMB_SHUTDOWN_GRACE_MS", default_value_t = 25_000)]
    pub shutdown_grace_ms: u64,
    /// Serve `GET /metrics` (Prometheus) on this address instead of the
    /// main one, e.g. an internal interface the public cannot reach.
    #[arg(long, env = "EDGETHUMB_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Local development: sign with the published test key (anyone can),
    /// serve an embedded sample, bind to loopback only, and mark every
    /// response with an `x-edgethumb-dev` header. Without it a missing
    /// EDGETHUMB_KEY/SALT stops start-up (exit 78).
    #[arg(long)]
    pub dev: bool,
}

/// The in-memory cache, and the persistent result store behind it when
/// one is configured (`EDGETHUMB_RESULT_STORE`).
pub type NativeCache = Tiered<MemoryCache, Option<ResultStore>, TokioRuntime>;

pub type NativeService = Service<ReqwestFetch, NativeCache, TokioRuntime>;

fn tiers(cache: &MemoryCache, store: &Option<ResultStore>, config: &Config) -> NativeCache {
    Tiered::new(
        cache.clone(),
        store.clone(),
        TokioRuntime::new(1, 0, Duration::ZERO),
        config.store_read_timeout,
    )
}

/// Connections waiting to be accepted (the kernel caps it at
/// `net.core.somaxconn`, 4096 by default). Deep, so a burst waits here
/// instead of having its SYNs dropped, which costs a client a 1 s retry.
const BACKLOG: u32 = 4096;

/// Connections an I/O thread accepts before it lets the others run.
const ACCEPTS_PER_TURN: usize = 16;

pub fn run(args: ServeArgs) -> ExitCode {
    let rt = match current_thread() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgethumb: cannot start the runtime: {e}");
            return Exit::Internal.into();
        }
    };
    let _log = log::init();
    malloc::keep_rss_to_live_memory();
    rt.block_on(serve(args))
}

/// A current-thread runtime with I/O and timers: every thread of `serve`
/// runs one.
pub fn current_thread() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The main thread: start-up, then signals. The I/O threads and the miss
/// thread do the serving.
async fn serve(args: ServeArgs) -> ExitCode {
    let dev = args.dev;
    if dev && !args.bind.ip().is_loopback() {
        eprintln!(
            "edgethumb: configuration error: --dev binds to loopback only, not {}",
            args.bind
        );
        return Exit::Config.into();
    }
    let listener = match listen(args.bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgethumb: cannot listen on {}: {e}", args.bind);
            return Exit::Unavailable.into();
        }
    };
    let addr = listener.local_addr().unwrap_or(args.bind);
    let origin = format!("http://{addr}");
    let sample_prefix = format!("{origin}/_sample/");

    let config = match settings::load(dev, Some(&sample_prefix)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgethumb: configuration error: {e}");
            return Exit::from(&e).into();
        }
    };
    let cache_bytes = match settings::cache_max_bytes() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edgethumb: configuration error: {e}");
            return Exit::from(&e).into();
        }
    };
    let extra_ca = match settings::upstream_ca_pem() {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("edgethumb: configuration error: {e}");
            return Exit::from(&e).into();
        }
    };
    let fetch = match ReqwestFetch::new(config.sources.allow_private, extra_ca.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("edgethumb: {e}");
            return match e {
                ClientError::Ca(_) => Exit::Config,
                ClientError::Build(_) => Exit::Internal,
            }
            .into();
        }
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let transforms = args.max_transforms.unwrap_or(cpus);
    let io_threads = args.io_threads.unwrap_or(cpus).max(1);
    let sample = if dev {
        match sample::jpeg() {
            Ok(b) => Some(Bytes::from(b)),
            Err(e) => {
                eprintln!("edgethumb: cannot build the sample image: {e}");
                return Exit::Internal.into();
            }
        }
    } else {
        None
    };

    let sig_size = config.signature_size;
    let first_key = config.keys.first().cloned();
    let runtime = TokioRuntime::new(
        transforms,
        args.transform_queue.unwrap_or(16 * transforms),
        Duration::from_millis(args.transform_queue_timeout_ms),
    );
    let queue = runtime.queue();
    let cache = MemoryCache::new(cache_bytes);
    let (store, store_writer) = match result_store::location(dev).map(|u| ResultStore::open(&u)) {
        None => (None, None),
        Some(Ok((store, writer))) => (Some(store), Some(writer)),
        Some(Err(e)) => {
            eprintln!("edgethumb: configuration error: {e}");
            return Exit::from(&e).into();
        }
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("edgethumb: cannot set up the metrics: {e}");
            return Exit::Internal.into();
        }
    };
    let miss_cache = tiers(&cache, &store, &config);
    let (miss_config, miss_fetch) = (config.clone(), fetch.clone());
    let misses = match Misses::start(move || {
        Service::new(
            miss_config,
            miss_fetch,
            miss_cache,
            runtime.detaching_misses(),
        )
    }) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("edgethumb: cannot start the miss thread: {e}");
            return Exit::Internal.into();
        }
    };
    let mut metrics_listener = None;
    if let Some(bind) = args.metrics_bind {
        if dev && !bind.ip().is_loopback() {
            eprintln!("edgethumb: configuration error: --dev binds to loopback only, not {bind}");
            return Exit::Config.into();
        }
        match listen(bind).and_then(|l| l.into_std()) {
            Ok(l) => metrics_listener = Some(l),
            Err(e) => {
                eprintln!("edgethumb: cannot listen on {bind} for metrics: {e}");
                return Exit::Unavailable.into();
            }
        };
        tracing::info!(%bind, "metrics at /metrics");
    }

    // Every I/O thread accepts from the same socket (its own handle to it).
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgethumb: cannot share the listener: {e}");
            return Exit::Internal.into();
        }
    };
    let (stop, stopping) = watch::channel(false);
    // Each I/O thread holds a sender; all gone means all have finished.
    let (finished, mut all_finished) = mpsc::channel::<()>(1);
    let shared = Arc::new(Shared {
        connections: Arc::new(Semaphore::new(args.max_connections.max(1))),
        max_connections: args.max_connections.max(1),
        write_timeout: Duration::from_millis(args.write_timeout_ms.max(1)),
    });
    for n in 0..io_threads {
        let handle = match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("edgethumb: cannot share the listener: {e}");
                return Exit::Internal.into();
            }
        };
        let parts = Parts {
            config: config.clone(),
            fetch: fetch.clone(),
            cache: cache.clone(),
            store: store.clone(),
            front: Front {
                misses: misses.clone(),
                sample: sample.clone(),
                dev,
                metrics: metrics.clone(),
                queue: queue.clone(),
                metrics_here: args.metrics_bind.is_none(),
            },
        };
        // The `--metrics-bind` listener rides on the first I/O thread.
        let metrics_listener = if n == 0 {
            metrics_listener.take()
        } else {
            None
        };
        let (shared, stopping, finished) = (shared.clone(), stopping.clone(), finished.clone());
        let started = current_thread().and_then(|rt| {
            std::thread::Builder::new()
                .name(format!("io-{n}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(
                        &rt,
                        io_thread(handle, metrics_listener, parts, shared, stopping),
                    );
                    drop(finished);
                })
        });
        if let Err(e) = started {
            eprintln!("edgethumb: cannot start an I/O thread: {e}");
            return Exit::Internal.into();
        }
    }
    drop((listener, finished));

    // Stdout is the command's own output, read by scripts and the test
    // harness: the address first, then the dev banner. The log is stderr.
    println!("edgethumb listening on {origin}");
    tracing::info!(%origin, io_threads, transforms, cache_bytes, "listening");
    if let Some(s) = &store {
        tracing::info!(store = s.describe(), "results kept in the result store");
    }
    if dev {
        println!(
            "DEV MODE: signing with the PUBLISHED TEST KEY (key 736563726574, salt 68656C6C6F)."
        );
        println!("          Anyone can sign URLs with it. Deploy with EDGETHUMB_KEY and EDGETHUMB_SALT, without --dev.");
        println!("          Only the embedded sample at {sample_prefix} may be fetched.");
        if let Some(s) = &store {
            println!(
                "          Results are kept in {} (EDGETHUMB_RESULT_STORE=none: nowhere).",
                s.describe()
            );
        }
        let sample_url = format!("{origin}{}", sample::PATH);
        for opts in [
            "rs:fit:400:0",
            "rs:fill:300:300/g:sm",
            "rs:fill:600:200/bl:2/f:webp",
        ] {
            let p = url_builder::unsigned_path(opts, &sample_url, None, SourceEncoding::Plain);
            println!(
                "try: {origin}{}",
                url_builder::sign_path(&p, first_key.as_ref(), sig_size)
            );
        }
    }

    tokio::select! {
        () = shutdown_signal() => {}
        // Every I/O thread ended on its own: it never should.
        _ = all_finished.recv() => {
            tracing::error!("the I/O threads stopped");
            return Exit::Internal.into();
        }
    }
    let open = shared.max_connections - shared.connections.available_permits();
    let _ = stop.send(true);
    let grace = Duration::from_millis(args.shutdown_grace_ms);
    tracing::info!(
        connections = open,
        grace_ms = grace.as_millis() as u64,
        "shutting down: letting requests in flight finish"
    );
    tokio::select! {
        _ = all_finished.recv() => tracing::info!("every request in flight finished; exiting"),
        () = shutdown_signal() => tracing::warn!("a second signal; cutting the connections still open"),
        () = tokio::time::sleep(grace) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "EDGETHUMB_SHUTDOWN_GRACE_MS passed; cutting the connections still open"
        ),
    }
    // Results made during the grace period are in the write queue.
    if let Some(writer) = store_writer {
        if !writer.finish(grace) {
            tracing::warn!("some result store writes did not land in time");
        }
    }
    Exit::Done.into()
}

/// What the I/O threads share.
struct Shared {
    connections: Arc<Semaphore>,
    max_connections: usize,
    write_timeout: Duration,
}

/// What an I/O thread builds its [`Server`] from.
struct Parts {
    config: edgethumb::Config,
    fetch: ReqwestFetch,
    cache: MemoryCache,
    store: Option<ResultStore>,
    front: Front,
}

/// One I/O thread: accepts and serves connections until `stopping`, then
/// lets those open finish.
async fn io_thread(
    listener: std::net::TcpListener,
    metrics_listener: Option<std::net::TcpListener>,
    parts: Parts,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "an I/O thread cannot use the listener");
            return;
        }
    };
    // This thread's service answers hits; misses go to the miss thread.
    let cache = tiers(&parts.cache, &parts.store, &parts.config);
    let service = Service::new(
        parts.config,
        parts.fetch,
        cache,
        TokioRuntime::new(1, 0, Duration::ZERO),
    );
    let server = Rc::new(Server {
        service,
        front: parts.front,
    });
    if let Some(l) = metrics_listener {
        match TcpListener::from_std(l) {
            Ok(l) => {
                tokio::task::spawn_local(serve_metrics(l, server.clone()));
            }
            Err(e) => tracing::error!(error = %e, "cannot serve metrics"),
        }
    }
    let shutdown = stopping.wait_for(|stop| *stop);
    tokio::pin!(shutdown);
    let write_timeout = shared.write_timeout;
    let graceful = GracefulShutdown::new();
    // The limit's log line, at most every 10 s.
    let mut said_full: Option<tokio::time::Instant> = None;
    let mut accepted_this_turn = 0;
    loop {
        let connections = &shared.connections;
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if said_full.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = shared.max_connections,
                        "connections at the limit (EDGETHUMB_MAX_CONNECTIONS); new ones wait"
                    );
                    said_full = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    p = connections.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let watcher = graceful.watcher();
        tokio::task::spawn_local(async move {
            let _permit = permit;
            let handler = service_fn(move |req: Request<Incoming>| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.respond(req).await) }
            });
            let io = TokioIo::new(WriteTimeout::new(stream, write_timeout));
            // HTTP/1.1, or HTTP/2 with prior knowledge (h2c), as CDNs and
            // load balancers speak to an origin.
            let mut builder = auto::Builder::new(LocalExec);
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            builder.http2().timer(TokioTimer::new());
            let conn = builder.serve_connection(io, handler);
            if let Err(e) = watcher.watch(conn).await {
                if stalled_write(e.as_ref()) {
                    tracing::info!(
                        write_timeout_ms = write_timeout.as_millis() as u64,
                        "closed a connection whose client stopped reading"
                    );
                }
            }
        });
        // A few accepts per turn of the scheduler: a burst of new
        // connections takes turns with requests on open ones (a cache hit
        // on a keep-alive connection), instead of queueing them behind it.
        accepted_this_turn += 1;
        if accepted_this_turn == ACCEPTS_PER_TURN {
            accepted_this_turn = 0;
            tokio::task::yield_now().await;
        }
    }
    // New connections are refused once every thread has let go of the
    // listener; those in the backlog are reset.
    drop(listener);
    graceful.shutdown().await;
}

/// What every connection on an I/O thread shares.
struct Server {
    /// Answers hits on this thread, from the shared cache.
    service: NativeService,
    front: Front,
}

/// Everything else an I/O thread's connections use.
struct Front {
    misses: Misses,
    /// `--dev`'s embedded sample image.
    sample: Option<Bytes>,
    dev: bool,
    metrics: Arc<Metrics>,
    queue: TransformQueue,
    /// `/metrics` on the main listener (no `--metrics-bind`).
    metrics_here: bool,
}

impl Server {
    async fn respond(&self, req: Request<Incoming>) -> Response<ResBody> {
        let path = req.uri().path();
        let mut resp = if self.front.metrics_here && path == "/metrics" {
            self.metrics_response().await
        } else if let Some(bytes) = self.front.sample.as_ref().filter(|_| path == sample::PATH) {
            whole(bytes.clone(), "image/jpeg")
        } else {
            let (resp, record) = self
                .service
                .handle_recorded_elsewhere(&req, |miss| self.front.misses.answer(miss))
                .await;
            log::access(&record);
            self.front.metrics.observe(&record);
            resp.map(|body| match body {
                ResponseBody::Full(bytes) => ResBody::Whole(Some(bytes)),
                ResponseBody::Streamed(chunks) => ResBody::Streamed(chunks, record.id),
            })
        };
        if self.front.dev {
            resp.headers_mut().insert(
                settings::DEV_HEADER.0,
                http::HeaderValue::from_static(settings::DEV_HEADER.1),
            );
        }
        resp
    }

    async fn metrics_response(&self) -> Response<ResBody> {
        // The miss thread's service holds the misses, their bytes and the
        // breaker; this thread's holds none.
        let load = match self.front.misses.load().await {
            Some(load) => load,
            None => self.service.load(),
        };
        let store = self
            .service
            .cache()
            .store()
            .as_ref()
            .map(ResultStore::stats);
        let text = self.front.metrics.render(&load, &self.front.queue, store);
        let mut resp = whole(Bytes::from(text), metrics::CONTENT_TYPE);
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        resp
    }
}

fn whole(body: Bytes, content_type: &'static str) -> Response<ResBody> {
    let mut r = Response::new(ResBody::Whole(Some(body)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// `--metrics-bind`'s listener: `/metrics` and nothing else.
async fn serve_metrics(listener: TcpListener, server: Rc<Server>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let server = server.clone();
        tokio::task::spawn_local(async move {
            let handler = service_fn(move |req: Request<Incoming>| {
                let server = server.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/metrics" => server.metrics_response().await,
                        _ => {
                            let mut r = whole(Bytes::from_static(b"not found\n"), "text/plain");
                            *r.status_mut() = http::StatusCode::NOT_FOUND;
                            r
                        }
                    })
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
    }
}

/// A response body: whole, or streamed (with its request id, to log a cut).
/// A cut makes hyper abort the response: the client sees a broken
/// transfer, never a short image.
enum ResBody {
    Whole(Option<Bytes>),
    Streamed(Chunks, String),
}

impl hyper::body::Body for ResBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyCut>>> {
        match self.get_mut() {
            ResBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResBody::Streamed(chunks, id) => match chunks.poll_next_unpin(cx) {
                Poll::Ready(Some(Err(cut))) => {
                    tracing::warn!(id = %id, detail = %cut, "response aborted");
                    Poll::Ready(Some(Err(cut)))
                }
                other => other.map(|c| c.map(|c| c.map(Frame::data))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResBody::Whole(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ResBody::Whole(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResBody::Streamed(..) => hyper::body::SizeHint::default(),
        }
    }
}

/// Whether a connection ended because a response write stalled.
fn stalled_write(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}

/// Runs HTTP/2 streams on this thread's `LocalSet`: the service's
/// futures are `!Send`, like a Worker's.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// A connection whose writes may stall at most `limit`: a client that
/// sends requests and never reads their responses is cut off, instead of
/// holding the connection and what it buffered.
struct WriteTimeout {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteTimeout {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write returned `Pending`: pending still, until the limit.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, p: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match p {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, p)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
