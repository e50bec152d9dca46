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
