//! The fast tier's wire: the core's `Service` called directly, with the
//! test origins as its `Fetch`, a map as its result cache and tokio's
//! timers. No sockets, no child processes; the same rows, checks and
//! configuration as the runtime tier.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use edgethumb::seams::runtime::{std_monotonic_ms, std_unix_time};
use edgethumb::service::ResponseBody;
use edgethumb::{
    Cache, CachedResponse, Config, EntryMeta, OffloadError, Runtime, Service, Store, StoreError,
    Tiered,
};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt as _;

use super::harness::{Reply, StorePeer, Target, Transport};
use super::origin::{MemoryFetch, Origin};

/// Transforms run inline, as in an edge isolate.
struct Inline;

impl Runtime for Inline {
    fn unix_time(&self) -> u64 {
        std_unix_time()
    }
    fn clock(&self) -> fn() -> f64 {
        std_monotonic_ms
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, OffloadError> {
        Ok(work())
    }
}

/// An unbounded result cache that honours each entry's TTL.
#[derive(Default)]
struct MapCache(RefCell<HashMap<String, (CachedResponse, Instant)>>);

impl Cache for MapCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let map = self.0.borrow();
        let (response, expires) = map.get(key)?;
        (*expires > Instant::now()).then(|| response.clone())
    }
    async fn put(&self, key: &str, response: CachedResponse) {
        let expires = Instant::now() + Duration::from_secs(response.ttl.into());
        self.0
            .borrow_mut()
            .insert(key.to_string(), (response, expires));
    }
}

/// A result store in memory, shared by the services given it.
#[derive(Clone, Default)]
pub struct MemoryStore(Rc<RefCell<HashMap<String, Bytes>>>);

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.0.borrow().get(key).cloned())
    }
    fn put(&self, key: &str, entry: Vec<u8>, _meta: EntryMeta) {
        self.0
            .borrow_mut()
            .insert(key.to_string(), Bytes::from(entry));
    }
}

type Tiers = Tiered<MapCache, MemoryStore, Inline>;

/// A service configured by `env` (the same variables the runtimes read),
/// fetching from `origins`, with its own cache and a result store behind
/// it.
pub struct InProcess {
    service: Service<MemoryFetch, Tiers, Inline>,
    env: Vec<(String, String)>,
    origins: Vec<Origin>,
    store: MemoryStore,
}

impl InProcess {
    pub fn new(env: &[(String, String)], origins: &[&Origin]) -> Self {
        Self::with_store(env, origins, MemoryStore::default())
    }

    fn with_store(env: &[(String, String)], origins: &[&Origin], store: MemoryStore) -> Self {
        let config =
            Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
                .unwrap_or_else(|e| panic!("test configuration: {e}"));
        let tiers = Tiered::new(
            MapCache::default(),
            store.clone(),
            Inline,
            config.store_read_timeout,
        );
        InProcess {
            service: Service::new(config, MemoryFetch::new(origins), tiers, Inline),
            env: env.to_vec(),
            origins: origins.iter().map(|o| (*o).clone()).collect(),
            store,
        }
    }

    /// The conformance target for this service, with a second service
    /// that shares only its result store as the store peer.
    pub fn target(self) -> Target {
        let origins: Vec<&Origin> = self.origins.iter().collect();
        let peer = InProcess::with_store(&self.env, &origins, self.store.clone());
        Target {
            name: "in-process",
            transport: Box::new(self),
            skips: Vec::new(),
            shared_cache: true,
            store_peer: Some(StorePeer::Beside {
                transport: Box::new(peer),
                settle: Box::new(|| Box::pin(async {})),
            }),
        }
    }
}

impl Transport for InProcess {
    fn send(&self, req: http::Request<()>) -> LocalBoxFuture<'_, Result<Reply, String>> {
        Box::pin(async move {
            let started = Instant::now();
            let (parts, body) = self.service.handle_streamed(&req).await.into_parts();
            let (mut all, mut first_byte, mut cut) = (Vec::new(), None, None);
            match body {
                ResponseBody::Full(bytes) => all = bytes.to_vec(),
                ResponseBody::Streamed(mut chunks) => {
                    while let Some(chunk) = chunks.next().await {
                        first_byte.get_or_insert_with(|| started.elapsed());
                        match chunk {
                            Ok(c) => all.extend_from_slice(&c),
                            Err(e) => {
                                cut = Some(e.to_string());
                                break;
                            }
                        }
                    }
                }
            }
            let took = started.elapsed();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: all,
                took,
                first_byte: first_byte.unwrap_or(took),
                cut,
            })
        })
    }
}
