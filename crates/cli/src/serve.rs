//! `edgethumb serve`: the core service on a native HTTP server.
//!
//! One I/O thread (tokio current-thread + `LocalSet`, since the core's
//! futures are `!Send` like a Worker's) serves every connection; transforms
//! run on the blocking pool, one per CPU. Cache hits never wait for them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use edgethumb::url_builder::{self, SourceEncoding};
use edgethumb::Service;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::native::{MemoryCache, ReqwestFetch, TokioRuntime};
use crate::{sample, settings};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, env = "EDGETHUMB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
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
}

type NativeService = Service<ReqwestFetch, MemoryCache, TokioRuntime>;

pub fn run(args: ServeArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgethumb: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(args))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let listener = match TcpListener::bind(args.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgethumb: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.bind);
    let origin = format!("http://{addr}");
    let dev = settings::dev_mode();
    let sample_prefix = format!("{origin}/_sample/");

    let config = match settings::load(Some(&sample_prefix)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgethumb: configuration error: {e}");
            return ExitCode::from(78);
        }
    };
    let cache_bytes = match settings::cache_max_bytes() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edgethumb: configuration error: {e}");
            return ExitCode::from(78);
        }
    };
    let fetch = match ReqwestFetch::new(config.sources.allow_private) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("edgethumb: {e}");
            return ExitCode::FAILURE;
        }
    };
    let transforms = args
        .max_transforms
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let sample = if dev {
        match sample::jpeg() {
            Ok(b) => Some(Rc::new(Bytes::from(b))),
            Err(e) => {
                eprintln!("edgethumb: cannot build the sample image: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };

    let sig_size = config.signature_size;
    let first_key = config.keys.first().cloned();
    let service: NativeService = Service::new(
        config,
        fetch,
        MemoryCache::new(cache_bytes),
        TokioRuntime::new(
            transforms,
            args.transform_queue.unwrap_or(16 * transforms),
            Duration::from_millis(args.transform_queue_timeout_ms),
        ),
    );

    println!("edgethumb listening on {origin}");
    if dev {
        println!(
            "DEV MODE: signing with the PUBLISHED TEST KEY (key 736563726574, salt 68656C6C6F)."
        );
        println!("          Anyone can sign URLs with it. Set EDGETHUMB_KEY and EDGETHUMB_SALT to deploy.");
        println!("          Only the embedded sample at {sample_prefix} may be fetched.");
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

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                eprintln!("edgethumb: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let sample = sample.clone();
        tokio::task::spawn_local(async move {
            let handler = service_fn(move |req: Request<Incoming>| {
                let service = service.clone();
                let sample = sample.clone();
                async move { Ok::<_, Infallible>(respond(&service, sample.as_deref(), req).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
    }
    println!("edgethumb: shutting down");
    ExitCode::SUCCESS
}

async fn respond(
    service: &NativeService,
    sample: Option<&Bytes>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if let Some(bytes) = sample.filter(|_| req.uri().path() == sample::PATH) {
        let mut r = Response::new(Full::new(bytes.clone()));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("image/jpeg"),
        );
        return r;
    }
    service.handle(&req).await.map(Full::new)
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
