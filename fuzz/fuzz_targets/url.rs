//! A request path from anyone, through the whole service: URL grammar,
//! signature, options, presets, source policy, negotiation, and a small
//! transform of a fixed source (no network). Invariants: no panic, no hang,
//! never a 500, and a path signed with the key always verifies.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use edgethumb::request::{path, signature};
use edgethumb::seams::fetch::{Body, Fetch, FetchError};
use edgethumb::{Config, NoCache, OffloadError, Runtime, Service};
use libfuzzer_sys::fuzz_target;

/// Every source is this small JPEG.
struct FixedOrigin(Bytes);
struct Once(Option<Bytes>);

/// A 64×48 gradient JPEG.
fn source() -> Bytes {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode the fixed source");
    Bytes::from(out.into_inner())
}

impl Body for Once {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        Ok(self.0.take())
    }
}

impl Fetch for FixedOrigin {
    type Body = Once;
    async fn get(&self, _url: &url::Url) -> Result<http::Response<Once>, FetchError> {
        let mut resp = http::Response::new(Once(Some(self.0.clone())));
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, self.0.len().into());
        Ok(resp)
    }
}

struct Inline;

impl Runtime for Inline {
    fn unix_time(&self) -> u64 {
        1_700_000_000
    }
    fn clock(&self) -> fn() -> f64 {
        || 0.0
    }
    async fn sleep(&self, _: Duration) {
        std::future::pending().await
    }
    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, OffloadError> {
        Ok(work())
    }
}

fn config() -> Config {
    Config::from_lookup(|name| {
        Some(match name {
            "EDGETHUMB_KEY" => "736563726574",
            "EDGETHUMB_SALT" => "68656C6C6F",
            "EDGETHUMB_ALLOW_UNSIGNED" => "true",
            "EDGETHUMB_PRESETS" => "thumb=rs:fit:60:0/q:80,square=rs:fill:32:32,default=q:70",
            "EDGETHUMB_MAX_RESULT_DIMENSION" => "512",
            _ => return None,
        })
        .map(str::to_string)
    })
    .expect("fuzz config")
}

thread_local! {
    static SERVICE: Service<FixedOrigin, NoCache, Inline> =
        Service::new(config(), FixedOrigin(source()), NoCache, Inline);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A path signed with the key always verifies, whatever it says.
    if let Ok((_, signed_path)) = path::split_signed(text) {
        let cfg = config();
        let sig = signature::sign(&signed_path, &cfg.keys[0], 32);
        assert!(signature::verify(&sig, &signed_path, &cfg.keys, 32));
    }
    let Ok(req) = http::Request::get(text).body(()) else {
        return;
    };
    SERVICE.with(|service| {
        let mut fut = pin!(service.handle(&req));
        let mut cx = Context::from_waker(Waker::noop());
        // Everything here is immediate: pending means a hang.
        let Poll::Ready(resp) = fut.as_mut().poll(&mut cx) else {
            panic!("request did not complete: {text:?}");
        };
        assert_ne!(resp.status(), 500, "{text:?}: {:?}", resp.body());
    });
});
