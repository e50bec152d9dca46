//! The conformance table against the native `edgethumb serve`, over HTTP,
//! with a local counting origin.

mod support;

use support::over_http::Http;

use support::harness::{
    assert_conformance, check_access_log, closed_port_base, target_env, Target,
};
use support::native::NativeServer;
use support::origin::Origin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_native() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let mut env = target_env(&origin, &closed);
    env.push(("EDGETHUMB_LOG".into(), "json".into()));
    // A result store on disk, shared with a second server: the store peer.
    let dir = std::env::temp_dir().join(format!("edgethumb-table-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    env.push((
        "EDGETHUMB_RESULT_STORE".into(),
        format!("file://{}", dir.display()),
    ));
    let server = NativeServer::start(&env).await;
    let peer = NativeServer::start(&env).await;
    let base = server.base.clone();
    let target = Target {
        name: "native",
        transport: Box::new(Http::new(&server.base)),
        skips: Vec::new(),
        shared_cache: true,
        store_peer: Some(support::harness::StorePeer::Beside {
            transport: Box::new(Http::new(&peer.base)),
            settle: Box::new(move || Box::pin(writes_landed(base.clone()))),
        }),
    };
    assert_conformance(&target, &origin, &closed).await;
    check_access_log(&target, &server.log, &origin, true).await;
    drop((server, peer));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Until the server at `base` has no result store writes pending.
async fn writes_landed(base: String) {
    let client = support::over_http::client();
    for _ in 0..200 {
        let m = support::native::scrape_metrics(&client, &base).await;
        if m.get("edgethumb_result_store_writes_pending").copied() == Some(0.0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("result store writes still pending after 5 s");
}

/// A host *name* that resolves to a private address is refused when the
/// connection is made (the literal check cannot see it), and allowed when
/// private sources are. Uses this machine's own host name, which resolves
/// to a local address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_private_addresses_are_refused() {
    use std::net::ToSocketAddrs;

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read the host name")
        .trim()
        .to_string();
    let resolved: Vec<_> = (host.as_str(), 80)
        .to_socket_addrs()
        .expect("resolve host name")
        .collect();
    assert!(
        resolved
            .iter()
            .all(|a| edgethumb::request::source_policy::is_internal_ip(a.ip())),
        "this test needs a host name that resolves to local addresses: {host} → {resolved:?}"
    );

    let origin = Origin::start().await;
    let path = "/via-name.jpg";
    origin.route(
        path,
        support::origin::Route::Body(support::fixtures::jpeg(40, 20), "image/jpeg"),
    );
    let source = format!("http://{host}:{}{path}", origin.addr.port());
    let case = support::cases::Case {
        options: "rs:fit:20:0",
        ..support::cases::template()
    };
    let client = support::over_http::client();
    // With HTTP_PROXY set (to the origin itself, which answers proxied
    // requests by path), the proxy must not be used: it would resolve the
    // name where the address check never sees it.
    let proxy = origin.base();
    for (allow_private, proxied, want_status) in [
        ("false", false, 502u16),
        ("false", true, 502),
        ("true", false, 200),
    ] {
        let mut env: Vec<(String, String)> = [
            ("EDGETHUMB_KEY", support::harness::TEST_KEY),
            ("EDGETHUMB_SALT", support::harness::TEST_SALT),
            ("EDGETHUMB_ALLOW_PRIVATE_SOURCES", allow_private),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if proxied {
            for k in ["HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
                env.push((k.to_string(), proxy.clone()));
            }
        }
        let server = NativeServer::start(&env).await;
        let url = format!(
            "{}{}",
            server.base,
            support::harness::case_path(&case, &source)
        );
        let resp = client.get(&url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(
            status, want_status,
            "allow_private={allow_private} proxied={proxied}: {body}"
        );
        if want_status == 502 {
            // Generic at the edge: the resolver's words go to the log.
            assert_eq!(body, "upstream failed: could not connect or read\n");
        }
    }
    assert_eq!(
        origin.hits(path),
        1,
        "only the allowed request reached the origin, never through the proxy"
    );
}

/// SVG passthrough, 424 for upstream failures, and the media-API presets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_api_switches_native() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = NativeServer::start(&support::harness::media_api_env(&origin, &closed)).await;
    support::harness::check_media_api(&Http::new(&server.base), &origin, &closed).await;
}

/// A fallback image instead of upstream and source failures, embedded or
/// fetched once from a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_image_native() {
    use support::harness::{check_fallback, fallback_env, FallbackFrom, FALLBACK_PATH};
    for from in [FallbackFrom::Data, FallbackFrom::Url] {
        let origin = Origin::start().await;
        let server = NativeServer::start(&fallback_env(&origin, &closed_port_base(), from)).await;
        check_fallback(&Http::new(&server.base), &origin).await;
        if from == FallbackFrom::Url {
            assert_eq!(origin.hits(FALLBACK_PATH), 1, "fetched once, then kept");
        }
    }
}

/// A media API's failure counter: negative cache plus per-host breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_and_negative_cache_native() {
    let (origin, other) = (Origin::start().await, Origin::start().await);
    let env = support::harness::breaker_env(&origin, &other, &closed_port_base());
    let server = NativeServer::start(&env).await;
    support::harness::check_breaker(&Http::new(&server.base), &origin, &other).await;
}

/// URLs signed by imgproxy's Node client and a PyPI client, served as meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_library_urls_native() {
    let origin = Origin::start().await;
    let server = NativeServer::start(&target_env(&origin, &closed_port_base())).await;
    support::clients::check_client_libraries(&server.base, &origin).await;
}

/// Load shedding: with one transform slot and no queue, misses that arrive
/// together get one 200 and 503s with `Retry-After`; a cache hit is served
/// while the transform runs; nothing shed was cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_past_the_queue_are_shed_native() {
    use std::time::{Duration, Instant};

    let origin = Origin::start().await;
    // Every source arrives after the same wait, so the misses reach the
    // transform stage together.
    let source = origin.route(
        "/slow-big.jpg",
        support::origin::Route::Slow(
            Duration::from_millis(300),
            support::fixtures::jpeg(1600, 1600),
        ),
    );
    origin.route(
        "/small.jpg",
        support::origin::Route::Body(support::fixtures::jpeg(64, 64), "image/jpeg"),
    );
    let mut env = target_env(&origin, &closed_port_base());
    env.extend(
        [
            ("EDGETHUMB_MAX_TRANSFORMS", "1"),
            ("EDGETHUMB_TRANSFORM_QUEUE", "0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let server = NativeServer::start(&env).await;
    let url = |opts: &str, src: &str| support::harness::signed_url(&server.base, opts, src);
    let client = support::over_http::client();

    let hit_url = url("rs:fit:32:0", &format!("{}/small.jpg", origin.base()));
    assert_eq!(client.get(&hit_url).send().await.unwrap().status(), 200);

    let misses: Vec<String> = (0..6)
        .map(|i| url(&format!("rs:fit:{}:0/bl:4", 1200 + i), &source))
        .collect();
    let t0 = Instant::now();
    let flood = futures_util::future::join_all(misses.iter().map(|u| {
        let client = client.clone();
        async move {
            let r = client.get(u).send().await.unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body = r.bytes().await.unwrap();
            (status, retry, body, t0.elapsed())
        }
    }));
    let hit = async {
        // Into the transform: the sources have arrived.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = client.get(&hit_url).send().await.unwrap();
        let cache = r.headers()["x-edgethumb-cache"]
            .to_str()
            .unwrap()
            .to_string();
        (r.status().as_u16(), cache, t0.elapsed())
    };
    let (results, (hit_status, hit_cache, hit_done)) = tokio::join!(flood, hit);

    assert_eq!((hit_status, hit_cache.as_str()), (200, "hit"));
    let served: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(
        served.len() + shed.len(),
        results.len(),
        "only 200s and deliberate 503s: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(!served.is_empty() && !shed.is_empty(), "one slot, no queue");
    for (_, retry, body, _) in &shed {
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(
            String::from_utf8_lossy(body).starts_with("server busy: too many transforms waiting"),
            "{body:?}"
        );
    }
    let first_served = served.iter().map(|r| r.3).min().unwrap();
    assert!(
        hit_done < first_served,
        "the hit ({hit_done:?}) was answered while the transform ran (done at {first_served:?})"
    );

    // Nothing shed was cached: asked again one at a time, each is made.
    for (u, r) in misses.iter().zip(&results) {
        if r.0 == 503 {
            let again = client.get(u).send().await.unwrap();
            assert_eq!(again.status(), 200);
            assert_eq!(again.headers()["x-edgethumb-cache"], "miss");
        }
    }
}

/// A client that pipelines requests and never reads the responses is cut
/// off once a write stalls for `EDGETHUMB_WRITE_TIMEOUT_MS`; past
/// `EDGETHUMB_MAX_CONNECTIONS`, a new connection waits until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_cut_off_and_connections_are_capped() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let env: Vec<(String, String)> = [
        ("EDGETHUMB_KEY", support::harness::TEST_KEY),
        ("EDGETHUMB_SALT", support::harness::TEST_SALT),
        ("EDGETHUMB_WRITE_TIMEOUT_MS", "500"),
        ("EDGETHUMB_MAX_CONNECTIONS", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let server = NativeServer::start(&env).await;
    let addr = server.base.trim_start_matches("http://").to_string();

    // Pipelined requests, never a read: once the socket buffers are full
    // the server's write stalls, and it must close the connection (our
    // writes then fail) rather than keep it.
    let mut reader = TcpStream::connect(&addr).await.unwrap();
    let requests = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n".repeat(1000);
    let cut = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Err(e) = reader.write_all(&requests).await {
                return e;
            }
        }
    })
    .await;
    assert!(
        cut.is_ok(),
        "a client that never reads kept its connection for 30 s"
    );
    drop(reader);

    // Three idle connections hold every slot...
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(&addr).await.unwrap();
    fourth
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(1000), fourth.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a fourth connection was served past the cap of 3"
    );
    // ...and when one closes, the waiting one is served.
    idle.pop();
    let n = tokio::time::timeout(Duration::from_secs(10), fourth.read(&mut buf))
        .await
        .expect("the waiting connection was served once a slot freed")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// A client that hangs up mid-miss does not waste the work: the miss runs
/// on, its result is cached, and the next request is a hit with no second
/// fetch (the review saw abandoned transforms thrown away and redone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_whose_client_hung_up_is_still_cached() {
    use std::time::Duration;

    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = NativeServer::start(&target_env(&origin, &closed)).await;
    let path = "/hung-up.jpg";
    let source = origin.route(
        path,
        support::origin::Route::Slow(
            Duration::from_millis(800),
            support::fixtures::jpeg(400, 200),
        ),
    );
    let case = support::cases::Case {
        options: "rs:fit:100:0",
        ..support::cases::template()
    };
    let url = format!(
        "{}{}",
        server.base,
        support::harness::case_path(&case, &source)
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(
        impatient.get(&url).send().await.is_err(),
        "the client gave up"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resp = support::over_http::client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-edgethumb-cache"], "hit");
    assert_eq!(origin.hits(path), 1);
}

/// SIGTERM during 100 slow misses: the listener closes at once (a new
/// connection is refused while they are still in flight), all 100 finish
/// with their thumbnails, and the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_misses_in_flight_finish_then_exits_0() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const MISSES: usize = 100;
    let origin = Origin::start().await;
    let jpeg = support::fixtures::jpeg(400, 200);
    let paths: Vec<String> = (0..MISSES).map(|i| format!("/drain-{i}.jpg")).collect();
    let sources: Vec<String> = paths
        .iter()
        .map(|p| {
            origin.route(
                p,
                support::origin::Route::Slow(Duration::from_millis(2500), jpeg.clone()),
            )
        })
        .collect();
    let mut env = target_env(&origin, &closed_port_base());
    // All 100 sources arrive together: room for them all to wait for a
    // transform slot, so none is shed.
    env.push(("EDGETHUMB_TRANSFORM_QUEUE".into(), "200".into()));
    env.retain(|(k, _)| k != "EDGETHUMB_UPSTREAM_TIMEOUT_MS");
    env.push(("EDGETHUMB_UPSTREAM_TIMEOUT_MS".into(), "10000".into()));
    let mut server = NativeServer::start(&env).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = sources
        .iter()
        .map(|source| {
            let case = support::cases::Case {
                options: "rs:fit:100:0",
                ..support::cases::template()
            };
            let url = format!(
                "{}{}",
                server.base,
                support::harness::case_path(&case, source)
            );
            let (client, done) = (client.clone(), done.clone());
            tokio::spawn(async move {
                let r = client.get(&url).send().await;
                let r = match r {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.bytes().await.map_err(|e| e.to_string()),
                    ),
                    Err(e) => (0, Err(e.to_string())),
                };
                done.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();

    // Every miss is at the origin, waiting for its source.
    let t0 = Instant::now();
    while paths.iter().map(|p| origin.hits(p)).sum::<u32>() < MISSES as u32 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the misses reached the origin: {} of {MISSES}, {} answered",
            paths.iter().map(|p| origin.hits(p)).sum::<u32>(),
            done.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("TERM");

    let addr = server.base.trim_start_matches("http://").to_string();
    let t1 = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(&addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(
                    t1.elapsed() < Duration::from_secs(2),
                    "new connections were still accepted 2 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "the listener closed while every miss was still in flight"
    );

    for (i, task) in flood.into_iter().enumerate() {
        let (status, body) = task.await.unwrap();
        let body = body.unwrap_or_else(|e| panic!("miss {i} was cut: {e}"));
        assert_eq!(status, 200, "miss {i}: {}", String::from_utf8_lossy(&body));
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), (100, 50), "miss {i}");
    }
    let status = server.exit_status(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Past `EDGETHUMB_SHUTDOWN_GRACE_MS` a request still in flight is cut
/// (the client sees a broken connection, not a short image) and the
/// server still exits 0, at the end of the grace rather than the miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cuts_what_outlasts_the_grace() {
    use std::time::{Duration, Instant};

    let origin = Origin::start().await;
    let source = origin.route(
        "/outlasts.jpg",
        support::origin::Route::Slow(Duration::from_secs(8), support::fixtures::jpeg(64, 64)),
    );
    let mut env = target_env(&origin, &closed_port_base());
    env.retain(|(k, _)| k != "EDGETHUMB_UPSTREAM_TIMEOUT_MS");
    env.extend(
        [
            ("EDGETHUMB_UPSTREAM_TIMEOUT_MS", "20000"),
            ("EDGETHUMB_SHUTDOWN_GRACE_MS", "300"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut server = NativeServer::start(&env).await;
    let case = support::cases::Case {
        options: "rs:fit:32:0",
        ..support::cases::template()
    };
    let url = format!(
        "{}{}",
        server.base,
        support::harness::case_path(&case, &source)
    );
    let request = tokio::spawn(async move { support::over_http::client().get(&url).send().await });
    while origin.hits("/outlasts.jpg") == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    server.signal("TERM");
    let status = server.exit_status(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(
        request.await.unwrap().is_err(),
        "the request past the grace was cut"
    );
}

/// `GET /metrics` agrees with what the client saw: requests by status and
/// cache tier, sheds by reason, misses in flight while they run; with
/// `EDGETHUMB_METRICS_BIND` it moves to its own listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_client() {
    use std::collections::HashMap;
    use std::time::Duration;

    let origin = Origin::start().await;
    let slow = origin.route(
        "/metrics-slow.jpg",
        support::origin::Route::Slow(
            Duration::from_millis(600),
            support::fixtures::jpeg(1600, 1600),
        ),
    );
    let small = origin.route(
        "/metrics-small.jpg",
        support::origin::Route::Body(support::fixtures::jpeg(64, 64), "image/jpeg"),
    );
    let metrics_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = target_env(&origin, &closed_port_base());
    env.extend(
        [
            ("EDGETHUMB_MAX_TRANSFORMS", "1".to_string()),
            ("EDGETHUMB_TRANSFORM_QUEUE", "0".to_string()),
            (
                "EDGETHUMB_METRICS_BIND",
                format!("127.0.0.1:{metrics_port}"),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let server = NativeServer::start(&env).await;
    let url = |opts: &str, src: &str| support::harness::signed_url(&server.base, opts, src);
    let client = support::over_http::client();
    let metrics_base = format!("http://127.0.0.1:{metrics_port}");
    let scrape = || support::native::scrape_metrics(&client, &metrics_base);
    // What the client saw, by (status, cache tier).
    let mut seen: HashMap<(u16, String), u32> = HashMap::new();
    let mut count = |r: &reqwest::Response| {
        let cache = r
            .headers()
            .get("x-edgethumb-cache")
            .map_or("none", |v| v.to_str().unwrap())
            .to_string();
        *seen.entry((r.status().as_u16(), cache)).or_default() += 1;
    };

    let hit_url = url("rs:fit:32:0", &small);
    for _ in 0..4 {
        count(&client.get(&hit_url).send().await.unwrap());
    }
    for bad in ["/nope/rs:fit:1:0/plain/http://x/y.jpg", "/a/b"] {
        count(
            &client
                .get(format!("{}{bad}", server.base))
                .send()
                .await
                .unwrap(),
        );
    }
    // Five distinct slow misses: while their sources are on the way, all
    // five are in flight; then one transform slot and no queue sheds some.
    let misses: Vec<String> = (0..5)
        .map(|i| url(&format!("rs:fit:{}:0/bl:4", 1200 + i), &slow))
        .collect();
    let flood = futures_util::future::join_all(misses.iter().map(|u| client.get(u).send()));
    let during = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        scrape().await
    };
    let (results, during) = tokio::join!(flood, during);
    assert_eq!(during["edgethumb_misses_in_flight"], 5.0, "{during:?}");
    let mut shed = 0;
    for r in results {
        let r = r.unwrap();
        shed += u32::from(r.status() == 503);
        count(&r);
    }
    assert!(shed > 0, "one slot and no queue shed some of five");

    let after = scrape().await;
    for ((status, cache), n) in &seen {
        let name = format!("edgethumb_requests_total{{cache=\"{cache}\",status=\"{status}\"}}");
        assert_eq!(
            after.get(&name),
            Some(&f64::from(*n)),
            "{name} in {after:?}"
        );
    }
    let requests: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("edgethumb_requests_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(requests, f64::from(seen.values().sum::<u32>()));
    let sheds: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("edgethumb_shed_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sheds, f64::from(shed), "{after:?}");
    assert_eq!(after["edgethumb_misses_in_flight"], 0.0);
    assert_eq!(after["edgethumb_source_bytes_in_flight"], 0.0);
    assert!(after["edgethumb_stage_seconds_count{stage=\"fetch\"}"] >= 1.0);
    // The allocator's own count, where it is glibc's (the soak test reads it).
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(
            after["edgethumb_heap_bytes{state=\"in_use\"}"] > 0.0,
            "{after:?}"
        );
        assert!(after.contains_key("edgethumb_heap_bytes{state=\"free\"}"));
    }

    // Not on the main listener when it has its own: there the path is
    // just an unsigned URL.
    let main = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 400);
    assert!(!main
        .text()
        .await
        .unwrap()
        .contains("edgethumb_requests_total"));
}

/// HTTP/2 with prior knowledge (h2c), as a CDN or load balancer speaks to
/// an origin: the same thumbnail, and a hit on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_h2c() {
    let origin = Origin::start().await;
    let source = origin.route(
        "/h2c.jpg",
        support::origin::Route::Body(support::fixtures::jpeg(400, 200), "image/jpeg"),
    );
    let server = NativeServer::start(&target_env(&origin, &closed_port_base())).await;
    let case = support::cases::Case {
        options: "rs:fit:100:0",
        ..support::cases::template()
    };
    let url = format!(
        "{}{}",
        server.base,
        support::harness::case_path(&case, &source)
    );
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for cache in ["miss", "hit"] {
        let r = h2.get(&url).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-edgethumb-cache"], cache);
        let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (100, 50));
    }
    assert_eq!(origin.hits("/h2c.jpg"), 1);
}

/// The signed path of a 100 px thumbnail of a fresh JPEG at `path`.
fn thumbnail_path(origin: &Origin, path: &str) -> String {
    let source = origin.route(
        path,
        support::origin::Route::Body(support::fixtures::jpeg(400, 200), "image/jpeg"),
    );
    let case = support::cases::Case {
        options: "rs:fit:100:0",
        ..support::cases::template()
    };
    support::harness::case_path(&case, &source)
}

/// Status, `x-edgethumb-cache` and body.
async fn get(url: &str) -> (u16, String, Vec<u8>) {
    let resp = support::over_http::client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let tier = resp.headers()["x-edgethumb-cache"]
        .to_str()
        .unwrap()
        .to_string();
    (status, tier, resp.bytes().await.unwrap().to_vec())
}

/// Where a restart test keeps its results, and how it damages one.
enum StoreUnderTest {
    Directory(std::path::PathBuf),
    S3(support::moto::S3Server),
}

impl StoreUnderTest {
    fn env(&self) -> Vec<(String, String)> {
        match self {
            StoreUnderTest::Directory(dir) => vec![(
                "EDGETHUMB_RESULT_STORE".into(),
                format!("file://{}", dir.display()),
            )],
            StoreUnderTest::S3(s3) => {
                let mut env = s3.env();
                env.push((
                    "EDGETHUMB_RESULT_STORE".into(),
                    "s3://results/thumbs".into(),
                ));
                env
            }
        }
    }

    /// Each stored entry, as (name, bytes).
    async fn entries(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            StoreUnderTest::Directory(dir) => support::files_under(dir)
                .into_iter()
                .map(|f| (f.display().to_string(), std::fs::read(&f).unwrap()))
                .collect(),
            StoreUnderTest::S3(s3) => {
                let mut out = Vec::new();
                for key in s3.keys("results").await {
                    let bytes = s3.get("results", &key).await;
                    out.push((key, bytes));
                }
                out
            }
        }
    }

    async fn replace(&self, name: &str, bytes: Vec<u8>) {
        match self {
            StoreUnderTest::Directory(_) => std::fs::write(name, bytes).unwrap(),
            StoreUnderTest::S3(s3) => s3.put("results", name, bytes).await,
        }
    }
}

/// A result store, a local directory and S3 (moto's server standing in):
/// after a restart (an empty memory cache) a result is answered from it,
/// byte for byte, without asking the origin; a stored entry cut short is
/// a miss, made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_store_outlives_a_restart() {
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!("edgethumb-results-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stores = [
        StoreUnderTest::Directory(dir.clone()),
        StoreUnderTest::S3(support::moto::S3Server::start("results").await),
    ];
    for store in &stores {
        let origin = Origin::start().await;
        let closed = closed_port_base();
        let mut env = target_env(&origin, &closed);
        env.extend(store.env());

        let mut server = NativeServer::start(&env).await;
        let kept = thumbnail_path(&origin, "/kept.jpg");
        let (status, tier, made) = get(&format!("{}{kept}", server.base)).await;
        assert_eq!((status, tier.as_str()), (200, "miss"));
        // SIGTERM lets queued writes land.
        server.signal("TERM");
        assert!(server.exit_status(Duration::from_secs(20)).await.success());
        let stored = store.entries().await;
        assert_eq!(
            stored.len(),
            1,
            "{:?}",
            stored.iter().map(|e| &e.0).collect::<Vec<_>>()
        );

        let mut server = NativeServer::start(&env).await;
        let (status, tier, body) = get(&format!("{}{kept}", server.base)).await;
        assert_eq!((status, tier.as_str()), (200, "store-hit"));
        assert_eq!(body, made, "byte for byte");
        assert_eq!(
            origin.hits("/kept.jpg"),
            1,
            "the origin was not asked again"
        );
        // Copied into memory on the way.
        assert_eq!(get(&format!("{}{kept}", server.base)).await.1, "hit");
        server.signal("TERM");
        assert!(server.exit_status(Duration::from_secs(20)).await.success());

        // The stored entry loses its last byte: a miss, made again.
        let (name, bytes) = &stored[0];
        store.replace(name, bytes[..bytes.len() - 1].to_vec()).await;
        let server = NativeServer::start(&env).await;
        let (status, tier, body) = get(&format!("{}{kept}", server.base)).await;
        assert_eq!((status, tier.as_str()), (200, "miss"));
        assert_eq!(body, made);
        assert_eq!(origin.hits("/kept.jpg"), 2);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store that refuses connections, and one that accepts and never
/// answers (S3's protocol, on 127.0.0.1): every request is still answered
/// from the origin, the store costing at most its read timeout, and then
/// from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_hanging_store_never_fails_or_holds_a_request() {
    use std::time::{Duration, Instant};

    // Accepts, reads nothing, answers nothing, for as long as the test.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_base = format!("http://{}", hanging.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hanging.accept().await {
            held.push(s);
        }
    });
    for endpoint in [closed_port_base(), hanging_base] {
        let origin = Origin::start().await;
        let closed = closed_port_base();
        let mut env = target_env(&origin, &closed);
        for (k, v) in [
            ("EDGETHUMB_RESULT_STORE", "s3://results/thumbs"),
            ("EDGETHUMB_RESULT_STORE_TIMEOUT_MS", "300"),
            ("AWS_ENDPOINT", endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            env.push((k.into(), v.into()));
        }
        let server = NativeServer::start(&env).await;
        for n in 0..3 {
            let path = thumbnail_path(&origin, &format!("/s{n}.jpg"));
            let url = format!("{}{path}", server.base);
            let started = Instant::now();
            let (status, tier, _) = get(&url).await;
            let took = started.elapsed();
            assert_eq!((status, tier.as_str()), (200, "miss"), "{endpoint}");
            // Not a speed figure: a bound far from the 300 ms the store may
            // take, to catch a request held by it.
            assert!(took < Duration::from_secs(3), "{endpoint}: {took:?}");
            assert_eq!(get(&url).await.1, "hit");
            assert_eq!(origin.hits(&format!("/s{n}.jpg")), 1);
        }
    }
}
