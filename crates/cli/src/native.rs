//! The native implementations of the core's seams: tokio clocks and a
//! bounded CPU pool, a reqwest upstream client, and a byte-bounded LRU.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgethumb::fetch::{Body, Fetch, FetchError, UpstreamResponse};
use edgethumb::{Cache, CachedResponse, Runtime};
use tokio::sync::Semaphore;

/// tokio runtime: timers from tokio, transforms on the blocking pool with
/// at most one per CPU, so I/O (and cache hits) never wait behind them.
pub struct TokioRuntime {
    transforms: Arc<Semaphore>,
}

impl TokioRuntime {
    pub fn new(max_transforms: usize) -> Self {
        TokioRuntime {
            transforms: Arc::new(Semaphore::new(max_transforms.max(1))),
        }
    }
}

fn monotonic_ms() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

impl Runtime for TokioRuntime {
    fn unix_time(&self) -> u64 {
        edgethumb::runtime::std_unix_time()
    }

    fn clock(&self) -> fn() -> f64 {
        monotonic_ms
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.transforms.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }
}

/// Upstream client. Redirects are not followed here: the core follows
/// them and re-checks each hop against the source policy.
pub struct ReqwestFetch {
    client: reqwest::Client,
}

impl ReqwestFetch {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("edgethumb/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(4))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ReqwestFetch { client })
    }
}

pub struct ReqwestBody(reqwest::Response);

impl Body for ReqwestBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        self.0.chunk().await.map_err(transport_error)
    }
}

fn transport_error(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    // The innermost cause says what happened (reset, refused, ...).
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    FetchError::Failed(msg)
}

impl Fetch for ReqwestFetch {
    type Body = ReqwestBody;

    async fn get(&self, url: &url::Url) -> Result<UpstreamResponse<ReqwestBody>, FetchError> {
        let resp = self
            .client
            .get(url.as_str())
            .header(http::header::ACCEPT, "image/*,*/*;q=0.8")
            .send()
            .await
            .map_err(transport_error)?;
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_length = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(UpstreamResponse {
            status: resp.status().as_u16(),
            location,
            content_length,
            body: ReqwestBody(resp),
        })
    }
}

struct Entry {
    response: CachedResponse,
    expires: Instant,
}

struct ByBytes;

impl quick_cache::Weighter<String, Entry> for ByBytes {
    fn weight(&self, key: &String, e: &Entry) -> u64 {
        let headers: usize = e
            .response
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        (key.len() + headers + e.response.body.len() + 64) as u64
    }
}

/// An in-memory result cache bounded in bytes, with per-entry TTLs.
/// Single-threaded, like the server's I/O loop.
pub struct MemoryCache {
    inner: RefCell<quick_cache::unsync::Cache<String, Entry, ByBytes>>,
}

impl MemoryCache {
    pub fn new(max_bytes: u64) -> Self {
        let estimated_items = (max_bytes / 32_768).clamp(16, 1_000_000) as usize;
        MemoryCache {
            inner: RefCell::new(quick_cache::unsync::Cache::with_weighter(
                estimated_items,
                max_bytes,
                ByBytes,
            )),
        }
    }
}

impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let mut cache = self.inner.borrow_mut();
        let fresh = cache.get(key).map(|e| e.expires > Instant::now())?;
        if !fresh {
            cache.remove(key);
            return None;
        }
        cache.get(key).map(|e| e.response.clone())
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        if response.ttl == 0 {
            return;
        }
        let expires = Instant::now() + Duration::from_secs(response.ttl as u64);
        self.inner
            .borrow_mut()
            .insert(key.to_string(), Entry { response, expires });
    }
}
