//! The conformance table against the native `edgethumb serve`, over HTTP,
//! with a local counting origin.

mod support;

use support::harness::{assert_conformance, closed_port_base, target_env, Target};
use support::native::NativeServer;
use support::origin::Origin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_native() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = NativeServer::start(&target_env(&origin, &closed)).await;
    let target = Target {
        name: "native",
        base: server.base.clone(),
        skips: Vec::new(),
        shared_cache: true,
    };
    assert_conformance(&target, &origin, &closed).await;
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
            .all(|a| edgethumb::source_policy::is_internal_ip(a.ip())),
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
        ..support::cases::cases().remove(0)
    };
    let client = support::harness::client();
    for (allow_private, want_status) in [("false", 502u16), ("true", 200)] {
        let env: Vec<(String, String)> = [
            ("EDGETHUMB_KEY", support::harness::TEST_KEY),
            ("EDGETHUMB_SALT", support::harness::TEST_SALT),
            ("EDGETHUMB_ALLOW_PRIVATE_SOURCES", allow_private),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let server = NativeServer::start(&env).await;
        let url = format!(
            "{}{}",
            server.base,
            support::harness::case_path(&case, &source)
        );
        let resp = client.get(&url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(status, want_status, "allow_private={allow_private}: {body}");
        if want_status == 502 {
            assert!(body.contains("private or local addresses"), "{body}");
        }
    }
    assert_eq!(
        origin.hits(path),
        1,
        "only the allowed request reached the origin"
    );
}

/// SVG passthrough, 424 for upstream failures, and the media-API presets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_api_switches_native() {
    let origin = Origin::start().await;
    let closed = closed_port_base();
    let server = NativeServer::start(&support::harness::media_api_env(&origin, &closed)).await;
    support::harness::check_media_api(&server.base, &origin, &closed).await;
}

/// A fallback image instead of upstream and source failures, embedded or
/// fetched once from a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_image_native() {
    use support::harness::{check_fallback, fallback_env, FallbackFrom, FALLBACK_PATH};
    for from in [FallbackFrom::Data, FallbackFrom::Url] {
        let origin = Origin::start().await;
        let server = NativeServer::start(&fallback_env(&origin, &closed_port_base(), from)).await;
        check_fallback(&server.base, &origin).await;
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
    support::harness::check_breaker(&server.base, &origin, &other).await;
}

/// URLs signed by imgproxy's Node client and a PyPI client, served as meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_library_urls_native() {
    let origin = Origin::start().await;
    let server = NativeServer::start(&target_env(&origin, &closed_port_base())).await;
    support::clients::check_client_libraries(&server.base, &origin).await;
}
