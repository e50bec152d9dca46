//! The native implementations of the core's seams: tokio clocks and a
//! bounded CPU pool, a reqwest upstream client, and a byte-bounded LRU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgethumb::resilience::shedding;
use edgethumb::seams::fetch::{Body, Fetch, FetchError};
use edgethumb::{Cache, CachedResponse, OffloadError, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// tokio runtime: timers from tokio, transforms on the blocking pool with
/// at most `max_transforms` at once, so I/O (and cache hits) never wait
/// behind them. At most `max_queued` wait for a slot, each for at most
/// `queue_timeout`; past either, the transform is shed (503).
pub struct TokioRuntime {
    slots: usize,
    transforms: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
    queue_timeout: Duration,
    /// Misses run on as their own tasks (`Runtime::detach`): only inside
    /// a `LocalSet`, as `serve` runs.
    detach_misses: bool,
}

impl TokioRuntime {
    pub fn new(max_transforms: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        TokioRuntime {
            slots: max_transforms.max(1),
            transforms: Arc::new(Semaphore::new(max_transforms.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queued,
            queue_timeout,
            detach_misses: false,
        }
    }

    /// Lets misses outlive the request that started them (spawned on the
    /// current `LocalSet`), so a client that hangs up mid-transform does
    /// not waste the work. Call only where a `LocalSet` runs the service.
    pub fn detaching_misses(mut self) -> Self {
        self.detach_misses = true;
        self
    }

    /// A view of the transform slots and their queue, for metrics.
    pub fn queue(&self) -> TransformQueue {
        TransformQueue {
            slots: self.slots,
            transforms: self.transforms.clone(),
            waiting: self.waiting.clone(),
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, OffloadError> {
        let busy = |reason| OffloadError::Busy {
            reason,
            retry_after: shedding::RETRY_AFTER_SECS,
        };
        match self.transforms.clone().try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(OffloadError::Lost),
            Err(TryAcquireError::NoPermits) => {}
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(busy("too many transforms waiting"));
        }
        let waited =
            tokio::time::timeout(self.queue_timeout, self.transforms.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(OffloadError::Lost),
            Err(_) => Err(busy("waited too long for a transform slot")),
        }
    }
}

/// Transforms running and waiting for a slot ([`TokioRuntime::queue`]).
#[derive(Clone)]
pub struct TransformQueue {
    slots: usize,
    transforms: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl TransformQueue {
    pub fn running(&self) -> usize {
        self.slots
            .saturating_sub(self.transforms.available_permits())
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl Runtime for TokioRuntime {
    fn unix_time(&self) -> u64 {
        edgethumb::seams::runtime::std_unix_time()
    }

    fn clock(&self) -> fn() -> f64 {
        edgethumb::seams::runtime::std_monotonic_ms
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }

    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, OffloadError> {
        let permit = self.slot().await?;
        // The slot goes with the work: a request that goes away cannot
        // free it while its transform still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| OffloadError::Lost)
    }

    fn detach(
        &self,
        work: edgethumb::seams::runtime::Detached,
    ) -> Result<(), edgethumb::seams::runtime::Detached> {
        if !self.detach_misses {
            return Err(work);
        }
        tokio::task::spawn_local(work);
        Ok(())
    }
}

/// Upstream client. Redirects are not followed here: the core follows
/// them and re-checks each hop against the source policy.
#[derive(Clone)]
pub struct ReqwestFetch {
    client: reqwest::Client,
}

impl ReqwestFetch {
    /// `allow_private` mirrors `EDGETHUMB_ALLOW_PRIVATE_SOURCES`: unless set,
    /// names that resolve to internal addresses are refused at connect time.
    /// `extra_ca_pem` (`EDGETHUMB_UPSTREAM_CA_FILE`) is trusted besides the
    /// public roots.
    pub fn new(allow_private: bool, extra_ca_pem: Option<&[u8]>) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Ca(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Ca("no certificate in it".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        // Keep-alive pools, and HTTP/2 (by ALPN) to TLS origins that offer
        // it: then misses to one host share a few connections, not a socket
        // each.
        let client = builder
            // No HTTP_PROXY/HTTPS_PROXY: a proxy resolves names itself, so
            // the resolver below would never see them.
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("edgethumb/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(4))
            .pool_idle_timeout(Duration::from_secs(30))
            // After a flood of misses to one origin, keep a few of its
            // connections, not thousands (memory and file descriptors).
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(ReqwestFetch { client })
    }
}

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A configuration error: exit 78.
    #[error("configuration error: EDGETHUMB_UPSTREAM_CA_FILE: {0}")]
    Ca(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
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
        .filter(|a| !edgethumb::request::source_policy::is_internal_ip(a.ip()))
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

    async fn get(&self, url: &url::Url) -> Result<http::Response<ReqwestBody>, FetchError> {
        let resp = self
            .client
            .get(url.as_str())
            .header(
                http::header::ACCEPT,
                edgethumb::seams::fetch::UPSTREAM_ACCEPT,
            )
            .send()
            .await
            .map_err(transport_error)?;
        let mut out = http::Response::new(());
        *out.status_mut() = resp.status();
        *out.headers_mut() = resp.headers().clone();
        Ok(out.map(|()| ReqwestBody(resp)))
    }
}

#[derive(Clone)]
struct Entry {
    response: CachedResponse,
    expires: Instant,
}

/// A `HeaderMap` bucket with its share of the index, and the allocator's
/// overhead on the header's own heap copies.
const PER_HEADER: usize = 160;
/// The entry, its key's allocation and its slot in the cache's table.
const PER_ENTRY: usize = 256;

/// An entry's weight is what it costs in memory, not only its body's
/// length: a negative-cached failure's body is a line, but its key, its
/// header map (a bucket, an index slot and a heap copy per header) and
/// its slot cost over a kilobyte, so a cache of many of them held far
/// more than its bound (the soak test found it).
#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<String, Entry> for ByBytes {
    fn weight(&self, key: &String, e: &Entry) -> u64 {
        let headers: usize = e
            .response
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + PER_HEADER)
            .sum();
        (key.len() + headers + e.response.body.len() + PER_ENTRY) as u64
    }
}

/// An in-memory result cache bounded in bytes, with per-entry TTLs,
/// shared by `serve`'s threads: cloning shares it.
#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<quick_cache::sync::Cache<String, Entry, ByBytes>>,
}

/// Each shard holds a share of the bound, and an entry must fit in one:
/// shards of at least this much, so a large result is still kept.
const MIN_SHARD_BYTES: u64 = 64 * 1024 * 1024;

impl MemoryCache {
    pub fn new(max_bytes: u64) -> Self {
        let estimated_items = (max_bytes / 32_768).clamp(16, 1_000_000) as usize;
        let shards = (max_bytes / MIN_SHARD_BYTES).clamp(1, 16) as usize;
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(estimated_items)
            .weight_capacity(max_bytes)
            .shards(shards)
            .build();
        let inner = match options {
            Ok(options) => quick_cache::sync::Cache::with_options(
                options,
                ByBytes,
                Default::default(),
                Default::default(),
            ),
            // Only when an option is missing, which the builder above rules out.
            Err(_) => quick_cache::sync::Cache::with_weighter(estimated_items, max_bytes, ByBytes),
        };
        MemoryCache {
            inner: Arc::new(inner),
        }
    }
}

impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let entry = self.inner.get(key)?;
        if entry.expires <= Instant::now() {
            self.inner.remove(key);
            return None;
        }
        Some(entry.response)
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        let expires = Instant::now() + Duration::from_secs(response.ttl as u64);
        self.inner
            .insert(key.to_string(), Entry { response, expires });
    }
}

#[cfg(test)]
mod tests {
    use super::{public_addrs, MemoryCache, TokioRuntime};
    use bytes::Bytes;
    use edgethumb::{Cache, CachedResponse, OffloadError, Runtime};
    use std::time::Duration;

    fn entry(len: usize, ttl: u32) -> CachedResponse {
        CachedResponse {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: Bytes::from(vec![7; len]),
            ttl,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_cache_is_shared_between_threads() {
        let cache = MemoryCache::new(256 << 20);
        let other = cache.clone();
        // Stored on another thread (another I/O thread's runtime), found here.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(other.put("a", entry(10, 60)));
            // A large result still fits in one shard.
            rt.block_on(other.put("large", entry(20 << 20, 60)));
        })
        .join()
        .unwrap();
        assert_eq!(cache.get("a").await.map(|e| e.body.len()), Some(10));
        assert_eq!(
            cache.get("large").await.map(|e| e.body.len()),
            Some(20 << 20)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_expired_entry_is_not_served() {
        let cache = MemoryCache::new(1 << 20);
        cache.put("gone", entry(10, 0)).await;
        assert!(cache.get("gone").await.is_none());
    }

    fn busy(r: &Result<(), OffloadError>) -> Option<&'static str> {
        match r {
            Err(OffloadError::Busy { reason, .. }) => Some(*reason),
            _ => None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transforms_past_the_queue_or_its_deadline_are_shed() {
        // One slot, one place in the queue, 200 ms of waiting at most.
        let rt = TokioRuntime::new(1, 1, Duration::from_millis(200));
        let slow = || std::thread::sleep(Duration::from_millis(600));
        let (first, second, third) = tokio::join!(rt.offload(slow), rt.offload(slow), async {
            tokio::task::yield_now().await;
            rt.offload(slow).await
        });
        assert_eq!(first, Ok(()));
        assert_eq!(busy(&second), Some("waited too long for a transform slot"));
        assert_eq!(busy(&third), Some("too many transforms waiting"));
        // Nothing left waiting: the next one runs.
        assert_eq!(rt.offload(|| ()).await, Ok(()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_request_keeps_its_slot_until_the_work_ends() {
        let rt = TokioRuntime::new(1, 0, Duration::from_millis(50));
        let started = std::sync::Arc::new(std::sync::Barrier::new(2));
        let s = started.clone();
        let abandoned = rt.offload(move || {
            s.wait();
            std::thread::sleep(Duration::from_millis(300));
        });
        // Poll it until the work has started, then drop the request.
        let waited = tokio::time::timeout(Duration::from_millis(100), abandoned);
        let _ = tokio::join!(waited, async {
            tokio::task::spawn_blocking(move || started.wait())
                .await
                .unwrap()
        });
        let r = rt.offload(|| ()).await;
        assert_eq!(busy(&r), Some("too many transforms waiting"));
    }

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
