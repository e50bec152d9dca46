//! The seed incident as a test: `edgethumb serve` holds 10,000 distinct
//! slow misses at once (counted at the origin) while it answers a stream
//! of cache hits, every miss ends in 200 or a deliberate 503 with
//! `Retry-After`, and `/metrics` counts what the load generator did.
//!
//! The origin answers every `/slow/` request after 3 s. It speaks HTTPS,
//! HTTP/2 by ALPN as real origins do, with a throwaway CA the server trusts
//! through `EDGETHUMB_UPSTREAM_CA_FILE`. Over HTTP/2 the server's upstream
//! requests share a connection, so a held miss costs one socket (the
//! client's), and 10,000 fit under an open-file limit of 20,000.
//!
//! It prints the figures (`--nocapture`); hit latency is reported, never
//! asserted. `EDGETHUMB_FLOOD_MISSES` sets another count, and
//! `EDGETHUMB_IO_THREADS` is passed on to the server; `scripts/loadtest`
//! runs it against a release build.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use support::harness::{signed_url, TEST_KEY, TEST_SALT};
use support::native::{scrape_metrics, status_kib, NativeServer};

/// How long the origin holds every `/slow/` request: the 10,000 reach it
/// within 0.7 s from a release build and 1.6 s from a debug one (CI's),
/// so they are all held at once with room to spare.
const SLOW: Duration = Duration::from_secs(3);
/// Connections the generator opens at once while the flood starts.
const CONNECTING: usize = 512;
/// The flood's bound: it stops by itself.
const FLOOD_LIMIT: Duration = Duration::from_secs(120);

/// What the origin saw.
#[derive(Default)]
struct Seen {
    held: AtomicUsize,
    peak_held: AtomicUsize,
    connections: AtomicUsize,
    peak_connections: AtomicUsize,
    /// When the first and the last `/slow/` request arrived.
    arrivals: Mutex<Option<(Instant, Instant)>>,
}

fn raise(now: &AtomicUsize, peak: &AtomicUsize) {
    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(n, Ordering::SeqCst);
}

/// The HTTPS origin on a free loopback port; returns its address and the
/// CA's certificate (PEM).
async fn https_origin(seen: Arc<Seen>, body: Bytes) -> (SocketAddr, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, seen, body) = (acceptor.clone(), seen.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                raise(&seen.connections, &seen.peak_connections);
                let counted = seen.clone();
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (seen, body) = (counted.clone(), body.clone());
                    async move {
                        if req.uri().path().starts_with("/slow/") {
                            let now = Instant::now();
                            {
                                let mut a = seen.arrivals.lock().unwrap();
                                let first = a.map_or(now, |(first, _)| first);
                                *a = Some((first, now));
                            }
                            raise(&seen.held, &seen.peak_held);
                            tokio::time::sleep(SLOW).await;
                            seen.held.fetch_sub(1, Ordering::SeqCst);
                        }
                        let mut resp = Response::new(Full::new(body));
                        resp.headers_mut()
                            .insert("content-type", "image/png".parse().unwrap());
                        Ok::<_, Infallible>(resp)
                    }
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder.http2().max_concurrent_streams(100_000);
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                seen.connections.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, ca.pem())
}

/// One slow miss on its own connection: its status (200, or 503 with
/// Retry-After), else why not.
async fn one_miss(
    base: SocketAddr,
    path: String,
    connecting: Arc<Semaphore>,
) -> Result<u16, String> {
    let mut stream = {
        let _turn = connecting.acquire().await.map_err(|e| e.to_string())?;
        TcpStream::connect(base).await.map_err(|e| e.to_string())?
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(2048)]).to_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no status line".to_string())?;
    if status != 200 && status != 503 {
        return Err(format!("{status} {}", reason(&answer)));
    }
    if status == 503 && !head.contains("\r\nretry-after: ") {
        return Err("503 without Retry-After".into());
    }
    Ok(status)
}

/// The one-line reason of an answer that is neither a success nor a shed,
/// so a failed run says why (the server's log is off here).
fn reason(answer: &[u8]) -> String {
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&answer[..0], |at| &answer[at + 4..]);
    let text = String::from_utf8_lossy(&body[..body.len().min(160)]);
    text.lines().next().unwrap_or("").trim().to_string()
}

fn summed(m: &HashMap<String, f64>, prefix: &str, label: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix) && k.contains(label))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Open files of a process, from `/proc`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn open_file_limit(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3).map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_slow_misses_are_held_while_hits_flow() {
    let misses: usize = std::env::var("EDGETHUMB_FLOOD_MISSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seen = Arc::new(Seen::default());
    let png = Bytes::from(support::fixtures::png(320, 200));
    let png_len = png.len();
    let (origin, ca_pem) = https_origin(seen.clone(), png).await;
    let ca_file =
        std::env::temp_dir().join(format!("edgethumb-flood-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let source = |path: &str| format!("https://{origin}{path}");

    let env: Vec<(String, String)> = [
        ("EDGETHUMB_KEY", TEST_KEY.to_string()),
        ("EDGETHUMB_SALT", TEST_SALT.to_string()),
        ("EDGETHUMB_ALLOW_PRIVATE_SOURCES", "true".into()),
        ("EDGETHUMB_ALLOWED_SOURCES", source("/")),
        ("EDGETHUMB_UPSTREAM_CA_FILE", ca_file.display().to_string()),
        ("EDGETHUMB_UPSTREAM_TIMEOUT_MS", "10000".into()),
        // A socket per held miss, and room for the hit stream.
        ("EDGETHUMB_MAX_CONNECTIONS", (misses + 2000).to_string()),
        ("EDGETHUMB_LOG", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    // Passed on, to compare thread counts.
    .chain(
        std::env::var("EDGETHUMB_IO_THREADS")
            .ok()
            .map(|v| ("EDGETHUMB_IO_THREADS".to_string(), v)),
    )
    .collect();
    let server = NativeServer::start(&env).await;
    let pid = server.pid();
    let base = server.base.clone();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // Thumbnails to hit, made once.
    let hits: Vec<String> = (0..20)
        .map(|i| signed_url(&base, "rs:fit:64:0", &source(&format!("/fast/{i}.png"))))
        .collect();
    for url in &hits {
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "warming {url}");
    }
    let before = scrape_metrics(&client, &base).await;

    // The hit stream: one request at a time on a keep-alive connection, on
    // a thread of its own, as another client would be: never queued
    // behind the generator's own tasks.
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let (hits, flooding) = (hits.clone(), flooding.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        std::thread::spawn(move || {
            rt.block_on(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut latencies = Vec::new();
                let mut wrong = BTreeMap::<String, usize>::new();
                let mut i = 0;
                while flooding.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let answer = client.get(&hits[i % hits.len()]).send().await;
                    let label = match answer {
                        Ok(r) => {
                            let cache = r
                                .headers()
                                .get("x-edgethumb-cache")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            (status != 200 || cache != "hit").then(|| format!("{status} {cache}"))
                        }
                        Err(e) => Some(format!("error: {e}")),
                    };
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    if let Some(l) = label {
                        *wrong.entry(l).or_default() += 1;
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (latencies, wrong)
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The flood, with the server's open files sampled while it lasts.
    let started = Instant::now();
    let connecting = Arc::new(Semaphore::new(CONNECTING));
    let flood: Vec<_> = (0..misses)
        .map(|i| {
            let path = signed_url("", "rs:fit:100:0", &source(&format!("/slow/{i}.png")));
            tokio::spawn(one_miss(addr, path, connecting.clone()))
        })
        .collect();
    let sampling = {
        let flooding = flooding.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while flooding.load(Ordering::SeqCst) {
                most = most.max(open_files(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            most
        })
    };
    let mut statuses = BTreeMap::<String, usize>::new();
    let all = futures_util::future::join_all(flood);
    let answers = tokio::time::timeout(FLOOD_LIMIT, all)
        .await
        .expect("the flood ends within its bound");
    for a in answers {
        let key = match a.unwrap() {
            Ok(status) => status.to_string(),
            Err(e) => format!("failed: {e}"),
        };
        *statuses.entry(key).or_default() += 1;
    }
    let elapsed = started.elapsed();
    flooding.store(false, Ordering::SeqCst);
    let (latencies, wrong_hits) = probe.join().unwrap();
    let most_files = sampling.await.unwrap();
    let after = scrape_metrics(&client, &base).await;
    let _ = std::fs::remove_file(&ca_file);

    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let delta = |prefix: &str, label: &str| {
        summed(&after, prefix, label).saturating_sub(summed(&before, prefix, label))
    };
    let sent = (latencies.len() + misses) as u64;
    let hit_count = (latencies.len() - wrong_hits.values().sum::<usize>()) as u64;
    let shed = statuses.get("503").copied().unwrap_or(0) as u64;
    let arrivals = seen
        .arrivals
        .lock()
        .unwrap()
        .map_or(0.0, |(first, last)| (last - first).as_secs_f64());
    let held = seen.peak_held.load(Ordering::SeqCst);

    println!(
        "edgethumb flood: {misses} distinct slow misses ({SLOW:?} each at the origin, {png_len} B PNG)"
    );
    println!(
        "  server open-file limit            {}",
        open_file_limit(pid)
    );
    println!("  server open files at most         {most_files}");
    println!(
        "  origin connections at most        {}",
        seen.peak_connections.load(Ordering::SeqCst)
    );
    println!("  slow misses held at once (origin) {held}");
    println!("  slow requests reached it within   {arrivals:.2} s");
    println!(
        "  (each held miss costs the server one socket, its client's; the upstream requests \
         share {} HTTP/2 connection(s), so {misses} fit under the limit)",
        seen.peak_connections.load(Ordering::SeqCst)
    );
    println!("  miss answers                      {statuses:?}");
    println!("  hits during the flood             {}", latencies.len());
    println!(
        "  hit p50 / p99 / max ms            {:.2} / {:.2} / {:.2}",
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!("  wrong hit answers                 {wrong_hits:?}");
    println!(
        "  requests (generator / /metrics)   {sent} / {}",
        delta("edgethumb_requests_total", "")
    );
    println!(
        "  hits (generator / /metrics)       {hit_count} / {}",
        delta("edgethumb_requests_total", "cache=\"hit\"")
    );
    println!(
        "  sheds (generator / /metrics)      {shed} / {}",
        delta("edgethumb_shed_total", "")
    );
    let reasons: BTreeMap<&str, u64> = after
        .iter()
        .filter(|(k, _)| k.starts_with("edgethumb_shed_total"))
        .filter_map(|(k, v)| {
            let gained = (*v as u64).saturating_sub(before.get(k).map_or(0, |b| *b as u64));
            (gained > 0).then(|| (k.split('"').nth(1).unwrap_or(k), gained))
        })
        .collect();
    println!("  sheds by reason (/metrics)        {reasons:?}");
    println!(
        "  server peak RSS                   {} MiB",
        status_kib(pid, "VmHWM:") / 1024
    );
    println!(
        "  flood seconds                     {:.1}",
        elapsed.as_secs_f64()
    );

    assert_eq!(
        held, misses,
        "every slow miss was held at the origin at once"
    );
    assert!(
        statuses.keys().all(|k| k == "200" || k == "503"),
        "every miss ends in 200 or a 503 with Retry-After: {statuses:?}"
    );
    assert!(
        wrong_hits.is_empty(),
        "every hit was a 200 from the cache: {wrong_hits:?}"
    );
    assert_eq!(
        delta("edgethumb_requests_total", ""),
        sent,
        "/metrics counts every request"
    );
    assert_eq!(
        delta("edgethumb_requests_total", "cache=\"hit\""),
        hit_count,
        "/metrics counts every hit"
    );
    assert_eq!(
        delta("edgethumb_shed_total", ""),
        shed,
        "/metrics counts every shed"
    );
    assert!(
        seen.peak_connections.load(Ordering::SeqCst) <= 4,
        "the server's upstream requests shared HTTP/2 connections"
    );
}
