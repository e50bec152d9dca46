//! The fast tier: the whole conformance table, the must-fail corpus and the
//! media-API, fallback and breaker checks, run in process against
//! `Service::handle` with in-memory origins. The same rows run against
//! every runtime over HTTP in the runtime tier (`cargo test -p
//! edgethumb-e2e`); here they need no server, tool or socket.

mod support {
    #![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
    pub mod cases;
    pub mod fixtures;
    pub mod harness;
    pub mod in_process;
    pub mod log;
    pub mod origin;
}

use support::harness::{self, closed_port_base, target_env};
use support::in_process::InProcess;
use support::origin::Origin;

#[tokio::test]
async fn conformance_in_process() {
    let origin = Origin::in_memory();
    let closed = closed_port_base();
    let target = InProcess::new(&target_env(&origin, &closed), &[&origin]).target();
    harness::assert_conformance(&target, &origin, &closed).await;
}

#[tokio::test]
async fn media_api_switches_in_process() {
    let origin = Origin::in_memory();
    let closed = closed_port_base();
    let service = InProcess::new(&harness::media_api_env(&origin, &closed), &[&origin]);
    harness::check_media_api(&service, &origin, &closed).await;
}

#[tokio::test]
async fn fallback_image_in_process() {
    use harness::FallbackFrom;
    for from in [FallbackFrom::Data, FallbackFrom::Url] {
        let origin = Origin::in_memory();
        let closed = closed_port_base();
        let env = harness::fallback_env(&origin, &closed, from);
        harness::check_fallback(&InProcess::new(&env, &[&origin]), &origin).await;
        if from == FallbackFrom::Url {
            let fetched = origin.hits(harness::FALLBACK_PATH);
            assert_eq!(fetched, 1, "fetched once, then kept");
        }
    }
}

#[tokio::test]
async fn breaker_and_negative_cache_in_process() {
    let (origin, other) = (Origin::in_memory(), Origin::in_memory());
    let closed = closed_port_base();
    let env = harness::breaker_env(&origin, &other, &closed);
    let service = InProcess::new(&env, &[&origin, &other]);
    harness::check_breaker(&service, &origin, &other).await;
}

/// The colour rows mean something: LittleCMS moves the stripes well away
/// from their sRGB values in both wide-gamut profiles, and the CMYK
/// profile away from the naive conversion, so serving the pixels
/// unconverted fails them.
#[test]
fn wide_gamut_fixtures_differ_from_srgb() {
    use support::fixtures as fx;
    for icc in [fx::adobe_rgb_icc(), fx::display_p3_icc()] {
        let moved = fx::STRIPES
            .iter()
            .map(|&c| {
                let s = fx::lcms_to_srgb(&icc, c);
                (0..3).map(|i| c[i].abs_diff(s[i])).max().unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        assert!(
            moved > 20,
            "a stripe should move by more than 20 levels, moved {moved}"
        );
    }
}
