//! The native implementations of the core's seams: tokio clocks and a
//! bounded CPU pool, a reqwest upstream client, and a byte-bounded LRU.

use std::cell::RefCell;
use std::sync::Arc;
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

impl Runtime for TokioRuntime {
    fn unix_time(&self) -> u64 {
        edgethumb::runtime::std_unix_time()
    }

    fn clock(&self) -> fn() -> f64 {
        edgethumb::runtime::std_monotonic_ms
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
    /// `allow_private` mirrors `EDGETHUMB_ALLOW_PRIVATE_SOURCES`: unless set,
    /// names that resolve to internal addresses are refused at connect time.
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("edgethumb/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(4))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ReqwestFetch { client })
    }
}

/// Resolves names and drops internal addresses, so a public-looking host
/// name pointing at 10.x, 127.x or 169.254.x (or rebinding to one between
/// check and connect) cannot reach the private network: the connection
/// only ever uses the addresses this returns.
struct PolicyResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = public_addrs(addrs, allow_private).map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> { format!("{host}: {e}").into() },
            )?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses a connection may use.
fn public_addrs(
    addrs: Vec<std::net::SocketAddr>,
    allow_private: bool,
) -> Result<Vec<std::net::SocketAddr>, &'static str> {
    if allow_private {
        return Ok(addrs);
    }
    let kept: Vec<_> = addrs
        .into_iter()
        .filter(|a| !edgethumb::source_policy::is_internal_ip(a.ip()))
        .collect();
    if kept.is_empty() {
        return Err("resolves only to private or local addresses");
    }
    Ok(kept)
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
            .header(http::header::ACCEPT, edgethumb::fetch::UPSTREAM_ACCEPT)
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

#[cfg(test)]
mod tests {
    use super::public_addrs;

    #[test]
    fn resolved_internal_addresses_are_dropped() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let mixed = vec![a("10.0.0.5:0"), a("93.184.216.34:0"), a("[::1]:0")];
        assert_eq!(
            public_addrs(mixed.clone(), false).unwrap(),
            vec![a("93.184.216.34:0")]
        );
        assert_eq!(public_addrs(mixed.clone(), true).unwrap(), mixed);
        for internal in [
            "127.0.0.1:0",
            "169.254.169.254:0",
            "[fd00::1]:0",
            "[::ffff:10.1.1.1]:0",
        ] {
            assert!(
                public_addrs(vec![a(internal)], false).is_err(),
                "{internal}"
            );
        }
    }
}
