//! The conformance table against the native `edgethumb serve`, over HTTP,
//! with a local counting origin.

mod support;

use support::cases::cases;
use support::harness::{closed_port_base, run_all, target_env, Target};
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
    let failures = run_all(&target, &origin, &closed, &cases()).await;
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
