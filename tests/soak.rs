//! Soak: `edgethumb serve` under a mixed load (hits, fresh misses, bad
//! sources, a flapping origin) for `EDGETHUMB_SOAK_SECS` (90 by default,
//! as `scripts/test` runs it; 1200 for a 20-minute run, with
//! `EDGETHUMB_BIN` pointing at a release build). Its memory must stay
//! flat after warm-up: the heap in use at rest (the allocator's count,
//! from `/metrics`) within 10 %, and RSS at rest within 10 % in the
//! 20-minute run; and every answer must be one the class
//! of request allows: each request has options no other had, so every
//! miss, bad source and flapping fetch is real work, not a cached answer.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::harness::{closed_port_base, signed_url, target_env};
use support::native::{scrape_metrics, status_kib, NativeServer};
use support::origin::{Origin, Route};

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 8;
/// Memory samples a second.
const SAMPLES_PER_SEC: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_keeps_rss_flat() {
    let secs: u64 = std::env::var("EDGETHUMB_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    let origin = Origin::start().await;
    let photo = support::fixtures::jpeg(640, 480);
    let hot: Vec<String> = (0..20)
        .map(|i| {
            let src = origin.route(
                &format!("/hot/{i}.jpg"),
                Route::Body(photo.clone(), "image/jpeg"),
            );
            signed_url("", "rs:fit:100:0", &src)
        })
        .collect();
    let fresh_src = origin.route("/fresh.jpg", Route::Body(photo.clone(), "image/jpeg"));
    let bad_src = origin.route(
        "/bad.jpg",
        Route::Body(b"this is not an image at all".to_vec(), "image/jpeg"),
    );
    // The flapping host is another origin: the breaker is per host, and
    // it must not fail the healthy one's requests.
    let flapping = Origin::start().await;
    let flap_src = flapping.route(
        "/flap.jpg",
        Route::Flapping {
            period: Duration::from_secs(3),
            body: photo.clone(),
        },
    );
    let mut env = target_env(&origin, &closed_port_base());
    for (k, v) in env.iter_mut() {
        if k == "EDGETHUMB_ALLOWED_SOURCES" {
            v.push_str(&format!(",{}/", flapping.base()));
        }
    }
    // A small cache, full within the warm-up: after it, the cache's size
    // no longer grows, so neither should the process.
    env.push(("EDGETHUMB_CACHE_MAX_BYTES".into(), (512 << 10).to_string()));
    env.push(("EDGETHUMB_BREAKER_COOLDOWN".into(), "2".into()));
    env.push(("EDGETHUMB_LOG".into(), "off".into()));
    let server = NativeServer::start(&env).await;
    let pid = server.pid();
    let base = server.base.clone();

    // Warm-up is a third of the run, at most a minute: the cache fills, the
    // allocator's arenas settle.
    let warm_up = Duration::from_secs((secs / 3).min(60));
    let next = Arc::new(AtomicU64::new(0));
    let tally: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((status_kib(pid, "RssAnon:"), status_kib(pid, "VmRSS:")));
                tokio::time::sleep(Duration::from_millis(1000 / SAMPLES_PER_SEC as u64)).await;
            }
            samples
        })
    };
    let load = |deadline: Instant| -> Vec<tokio::task::JoinHandle<()>> {
        (0..CLIENTS)
            .map(|_| {
                let (next, tally, unexpected) = (next.clone(), tally.clone(), unexpected.clone());
                let (hot, base) = (hot.clone(), base.clone());
                let (fresh_src, bad_src, flap_src) =
                    (fresh_src.clone(), bad_src.clone(), flap_src.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap();
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        // Options no earlier request had: a fresh key, so a real
                        // fetch (and transform) every time.
                        let fresh = format!("rs:fit:{}:0/q:{}", 40 + i % 600, 1 + (i / 600) % 100);
                        // Of 20: 12 hits, 4 fresh misses, 2 bad sources, 2 flapping.
                        let (class, url, allowed): (&str, String, &[u16]) = match i % 20 {
                            0..=11 => (
                                "hit",
                                format!("{base}{}", hot[(i as usize) % hot.len()]),
                                &[200],
                            ),
                            12..=15 => ("miss", signed_url(&base, &fresh, &fresh_src), &[200]),
                            16..=17 => ("bad", signed_url(&base, &fresh, &bad_src), &[415]),
                            _ => ("flap", signed_url(&base, &fresh, &flap_src), &[200, 502]),
                        };
                        let (status, body) = match client.get(&url).send().await {
                            Ok(r) => {
                                let s = r.status().as_u16();
                                match r.bytes().await {
                                    Ok(b) => (s, b.to_vec()),
                                    Err(e) => (0, e.to_string().into_bytes()),
                                }
                            }
                            Err(e) => (0, e.to_string().into_bytes()),
                        };
                        *tally
                            .lock()
                            .unwrap()
                            .entry(format!("{class} {status}"))
                            .or_default() += 1;
                        if !allowed.contains(&status) {
                            unexpected.lock().unwrap().push(format!(
                                "{class} {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(120)])
                            ));
                        }
                    }
                })
            })
            .collect()
    };
    // Memory at rest after the warm-up and after the rest of the run: the
    // load stops, what was in flight ends, the server's malloc trimming
    // (every 5 s) runs, and what is left is what the process keeps. A leak
    // grows it; the swing of the transforms in flight does not reach it.
    // It is anonymous memory, the heap: RSS also counts the binary's code,
    // paged in as new paths first run (17 MiB of a debug build).
    let scraper = reqwest::Client::new();
    let at_rest = || {
        let (scraper, base) = (scraper.clone(), base.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(7)).await;
            let metrics = scrape_metrics(&scraper, &base).await;
            let kib = |state: &str| {
                metrics
                    .get(&format!("edgethumb_heap_bytes{{state=\"{state}\"}}"))
                    .map_or(0, |b| *b as u64 >> 10)
            };
            (status_kib(pid, "RssAnon:"), kib("in_use"), kib("free"))
        }
    };
    for c in load(Instant::now() + warm_up) {
        c.await.unwrap();
    }
    let (early, early_heap, early_free) = at_rest().await;
    for c in load(Instant::now() + Duration::from_secs(secs) - warm_up) {
        c.await.unwrap();
    }
    let (late, late_heap, late_free) = at_rest().await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap();

    let tally = tally.lock().unwrap().clone();
    let requests: u64 = tally.values().sum();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let every_5s = |pick: fn(&(u64, u64)) -> u64| -> Vec<u64> {
        samples
            .iter()
            .step_by(5 * SAMPLES_PER_SEC)
            .map(|s| pick(s) >> 10)
            .collect()
    };
    eprintln!(
        "soak: {secs} s, {requests} requests {tally:?}; anonymous memory at rest after warm-up {} MiB, at the end {} MiB ({:+.1} %); heap in use at rest {} KiB, then {} KiB (free in the allocator {} KiB, then {} KiB); RSS peak {} MiB; every 5 s, anonymous MiB: {:?}, RSS MiB: {:?}",
        early >> 10,
        late >> 10,
        (late as f64 / early.max(1) as f64 - 1.0) * 100.0,
        early_heap,
        late_heap,
        early_free,
        late_free,
        peak >> 10,
        every_5s(|s| s.0),
        every_5s(|s| s.1),
    );
    let unexpected = unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "unexpected answers: {:?}",
        &unexpected[..unexpected.len().min(10)]
    );
    for class in ["hit 200", "miss 200", "bad 415", "flap 200", "flap 502"] {
        assert!(tally.contains_key(class), "no `{class}` in {tally:?}");
    }
    assert!(early > 0, "memory was sampled");
    assert!(early_heap > 0, "the allocator's count is in /metrics");
    // The leak check: the heap in use at rest, as the allocator counts it.
    // It holds still where RSS does not: 2.7 to 2.9 MiB after warm-up, and
    // some 190 KiB more at the end, of a 90-second run (50,000 requests
    // after warm-up) and of a 300-second one (216,000) alike, so that is
    // settling, not growth per request. 10 % and 512 KiB more fails a leak
    // of 16 bytes a request in the short run.
    assert!(
        late_heap * 10 <= early_heap * 11 + (512 * 10),
        "the heap in use at rest grew from {early_heap} KiB after warm-up to {late_heap} KiB (over 10 % + 512 KiB)"
    );
    // RSS at rest also counts the allocator's free pages between live
    // blocks, and in a short run they are still settling: CI saw 7.4 then
    // 9.4 MiB in one run, 8.6 then 14.6 in another, where runs here had
    // the heap in use rise under 200 KiB. The 20-minute run holds RSS to
    // 10 %; a short one only bounds it, with 8 MiB more.
    let slack = if secs >= 600 { 0 } else { 8 << 10 };
    assert!(
        late * 10 <= early * 11 + slack * 10,
        "anonymous memory at rest grew from {early} KiB after warm-up to {late} KiB (over 10 % + {slack} KiB)"
    );
}
