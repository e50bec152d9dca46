//! The Spin component under a real wasi:http host (`wasmtime serve`), over
//! HTTP, with a local counting origin: the shared conformance table, then
//! whole-body delivery of a large original.

mod support;

use support::over_http::Http;

use support::fixtures;
use support::harness::{self, assert_conformance, closed_port_base, target_env, Target};
use support::origin::{Origin, Route};
use support::wasmtime::WasmtimeServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_spin_under_wasmtime_serve() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = WasmtimeServer::start(&target_env(&origin, &closed)).await;
    let target = Target {
        name: "wasmtime",
        transport: Box::new(Http::new(&server.base)),
        skips: Vec::new(),
        // `wasmtime serve` instantiates the component per request: no
        // result cache, no in-flight map. The harness then asserts that
        // every request reaches the origin; the CDN in front caches.
        shared_cache: false,
        store_peer: None,
    };
    assert_conformance(&target, &origin, &closed).await;
    harness::check_access_log(&target, &server.log, &origin, false).await;
}

/// A 5 MB original arrives whole every time (spin-sdk 7 under wasmtime 49
/// truncated bodies; 5.2 must not): 20 sequential requests, each a fresh
/// fetch, each 200 with the same ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_originals_arrive_whole() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let mut env = target_env(&origin, &closed);
    env.retain(|(k, _)| k != "EDGETHUMB_MAX_SRC_BYTES");
    env.push(("EDGETHUMB_MAX_SRC_BYTES".into(), "8000000".into()));
    let server = WasmtimeServer::start(&env).await;

    let png = fixtures::noise_png(1300, 1300);
    assert!(png.len() > 5_000_000, "fixture is {} bytes", png.len());
    let source = origin.route("/large.png", Route::Body(png, "image/png"));
    let case = support::cases::Case {
        options: "rs:fit:200:0/f:png",
        ..support::cases::template()
    };
    let url = format!("{}{}", server.base, harness::case_path(&case, &source));
    let client = support::over_http::client();
    let mut etags = Vec::new();
    for i in 0..20 {
        let resp = client.get(&url).send().await.unwrap();
        let status = resp.status();
        let etag = resp
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), (200, 200));
        etags.push(etag.unwrap());
    }
    etags.dedup();
    assert_eq!(etags.len(), 1, "outputs differ between requests: {etags:?}");
    assert_eq!(origin.hits("/large.png"), 20);
}

/// The default build imports only `wasi:*` interfaces, so any wasi:http 0.2
/// host runs it; `spin:*`/`fermyon:*` imports would make `wasmtime serve`
/// refuse the component. Prints size and imports for the record.
#[test]
fn component_imports_only_wasi() {
    let path = support::wasmtime::component();
    let bytes = std::fs::read(&path).unwrap();
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            // Top-level component imports are what the host must provide.
            wasmparser::Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(import.unwrap().name.0.to_string());
                }
            }
            _ => {}
        }
    }
    println!(
        "component: {} bytes, {} imports:",
        bytes.len(),
        imports.len()
    );
    for i in &imports {
        println!("  {i}");
    }
    assert!(!imports.is_empty(), "no imports found: parser out of step?");
    let foreign: Vec<&String> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert!(foreign.is_empty(), "non-WASI imports: {foreign:?}");
}

/// SVG passthrough, 424 for upstream failures, and the media-API presets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_api_switches_spin() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = WasmtimeServer::start(&harness::media_api_env(&origin, &closed)).await;
    harness::check_media_api(&Http::new(&server.base), &origin, &closed).await;
}

/// A fallback image instead of upstream and source failures, embedded or
/// from a URL (fetched by each instance that needs it: `wasmtime serve`
/// makes one per request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_image_spin() {
    use harness::{check_fallback, fallback_env, FallbackFrom, FALLBACK_PATH};
    for from in [FallbackFrom::Data, FallbackFrom::Url] {
        let origin = Origin::start().await;
        let server = WasmtimeServer::start(&fallback_env(&origin, &closed_port_base(), from)).await;
        check_fallback(&Http::new(&server.base), &origin).await;
        if from == FallbackFrom::Url {
            assert!(origin.hits(FALLBACK_PATH) >= 1);
        }
    }
}
