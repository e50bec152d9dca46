//! Two tiers as one [`Cache`]: the runtime's cache in front (the Cache
//! API, the process's memory), a persistent [`Store`] behind it.
//!
//! - Lookup order: the front, then the store, then (by the service) the
//!   coalesced fetch and transform.
//! - A store hit is copied into the front for the time it has left.
//! - A fresh result goes to both; failures and fallback images only to
//!   the front, with their short TTLs.
//! - The store never fails or holds up a request: an error, a damaged or
//!   expired entry, or a read slower than `read_timeout` is a miss, and
//!   after an error or a timeout the store rests for [`REST_MS`], so a
//!   store that is down costs one timeout every few seconds, not one per
//!   request.

use std::cell::Cell;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};

use super::{stored, Cache, CachedResponse, Tier};
use crate::seams::runtime::Runtime;
use crate::seams::store::{EntryMeta, Store, MAX_ENTRY_BYTES};

/// How long the store is left alone after it failed or was slow.
pub const REST_MS: f64 = 5_000.0;

pub struct Tiered<C, S, R> {
    front: C,
    store: S,
    runtime: R,
    read_timeout: Duration,
    /// On the runtime's monotonic clock: the store is not asked before it.
    resting_until: Cell<f64>,
}

impl<C: Cache, S: Store, R: Runtime> Tiered<C, S, R> {
    pub fn new(front: C, store: S, runtime: R, read_timeout: Duration) -> Self {
        Tiered {
            front,
            store,
            runtime,
            read_timeout,
            resting_until: Cell::new(f64::NEG_INFINITY),
        }
    }

    pub fn front(&self) -> &C {
        &self.front
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    async fn read_store(&self, key: &str) -> Option<CachedResponse> {
        if !self.store.present() {
            return None;
        }
        let now_ms = (self.runtime.clock())();
        if now_ms < self.resting_until.get() {
            return None;
        }
        let read = pin!(self.store.get(key));
        let timeout = pin!(self.runtime.sleep(self.read_timeout));
        let bytes = match select(read, timeout).await {
            Either::Left((Ok(found), _)) => found?,
            Either::Left((Err(_), _)) | Either::Right(_) => {
                self.resting_until.set(now_ms + REST_MS);
                return None;
            }
        };
        // Expired, damaged or from another layout: a miss, and the fresh
        // result overwrites it.
        let mut entry = stored::decode(&bytes, self.runtime.unix_time())?;
        // Kept downstream, and in the front, only for what it has left.
        entry.headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_str(&super::cache_control(entry.ttl))
                .unwrap_or(http::HeaderValue::from_static("no-store")),
        );
        self.front.put(key, entry.clone()).await;
        Some(entry)
    }
}

impl<C: Cache, S: Store, R: Runtime> Cache for Tiered<C, S, R> {
    const STORES: bool = C::STORES || S::STORES;

    async fn get(&self, key: &str) -> Option<CachedResponse> {
        self.lookup(key).await.map(|(entry, _)| entry)
    }

    async fn lookup(&self, key: &str) -> Option<(CachedResponse, Tier)> {
        if let Some(entry) = self.front.get(key).await {
            return Some((entry, Tier::Cache));
        }
        self.read_store(key).await.map(|entry| (entry, Tier::Store))
    }

    async fn lookup_again(&self, key: &str) -> Option<(CachedResponse, Tier)> {
        // The store was just asked; only the front may have changed.
        self.front.get(key).await.map(|entry| (entry, Tier::Cache))
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        // Encoding copies the body: only for a store that is there.
        if response.is_result() && self.store.present() {
            let now = self.runtime.unix_time();
            let header = |name| {
                response
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let meta = EntryMeta {
                content_type: header(http::header::CONTENT_TYPE),
                etag: header(http::header::ETAG),
                cache_control: header(http::header::CACHE_CONTROL),
                expires: stored::expiry(now, &response),
            };
            let entry = stored::encode(now, &response);
            if entry.len() as u64 <= MAX_ENTRY_BYTES {
                self.store.put(key, entry, meta);
            }
        }
        self.front.put(key, response).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::future::Future;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, StatusCode};

    use super::*;
    use crate::seams::runtime::OffloadError;
    use crate::seams::store::{NoStore, StoreError};

    /// A front cache in memory, shared with the test.
    #[derive(Clone, Default)]
    struct Front(Rc<RefCell<HashMap<String, CachedResponse>>>);

    impl Cache for Front {
        async fn get(&self, key: &str) -> Option<CachedResponse> {
            self.0.borrow().get(key).cloned()
        }
        async fn put(&self, key: &str, response: CachedResponse) {
            self.0.borrow_mut().insert(key.to_string(), response);
        }
    }

    #[derive(Clone, Copy)]
    enum Behaviour {
        Works,
        Fails,
        Hangs,
    }

    type Entries = HashMap<String, (Vec<u8>, EntryMeta)>;

    /// A store in memory that can fail or hang, counting its reads.
    #[derive(Clone)]
    struct Mem {
        entries: Rc<RefCell<Entries>>,
        behaviour: Rc<Cell<Behaviour>>,
        reads: Rc<Cell<u32>>,
    }

    impl Mem {
        fn new() -> Self {
            Mem {
                entries: Rc::default(),
                behaviour: Rc::new(Cell::new(Behaviour::Works)),
                reads: Rc::default(),
            }
        }
    }

    impl Store for Mem {
        async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
            self.reads.set(self.reads.get() + 1);
            match self.behaviour.get() {
                Behaviour::Works => Ok(self
                    .entries
                    .borrow()
                    .get(key)
                    .map(|(b, _)| Bytes::from(b.clone()))),
                Behaviour::Fails => Err(StoreError("injected".into())),
                Behaviour::Hangs => futures_util::future::pending().await,
            }
        }
        fn put(&self, key: &str, entry: Vec<u8>, meta: EntryMeta) {
            self.entries
                .borrow_mut()
                .insert(key.to_string(), (entry, meta));
        }
    }

    thread_local! {
        static NOW_S: Cell<u64> = const { Cell::new(1_000) };
        static NOW_MS: Cell<f64> = const { Cell::new(0.0) };
        static TIMERS: Cell<u32> = const { Cell::new(0) };
    }

    /// Time only moves when the test moves it; a sleep is over at once
    /// (so a hanging store read always loses to its timeout).
    struct Clock;

    impl Runtime for Clock {
        fn unix_time(&self) -> u64 {
            NOW_S.with(Cell::get)
        }
        fn clock(&self) -> fn() -> f64 {
            || NOW_MS.with(Cell::get)
        }
        fn sleep(&self, _duration: Duration) -> impl Future<Output = ()> {
            TIMERS.with(|t| t.set(t.get() + 1));
            std::future::ready(())
        }
        async fn offload<T: Send + 'static>(
            &self,
            work: impl FnOnce() -> T + Send + 'static,
        ) -> Result<T, OffloadError> {
            Ok(work())
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("did not finish"),
        }
    }

    fn response(status: StatusCode, ttl: u32) -> CachedResponse {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("image/webp"),
        );
        headers.insert(http::header::ETAG, HeaderValue::from_static("\"abc\""));
        CachedResponse {
            status,
            headers,
            body: Bytes::from_static(b"RIFF....WEBP"),
            ttl,
        }
    }

    fn tiers() -> (Tiered<Front, Mem, Clock>, Front, Mem) {
        let (front, store) = (Front::default(), Mem::new());
        let t = Tiered::new(
            front.clone(),
            store.clone(),
            Clock,
            Duration::from_millis(50),
        );
        (t, front, store)
    }

    #[test]
    fn a_result_is_kept_in_both_and_found_in_the_store_once_the_front_forgets() {
        let (t, front, store) = tiers();
        run(t.put("k", response(StatusCode::OK, 100)));
        let (_, meta) = store.entries.borrow()["k"].clone();
        assert_eq!(meta.content_type.as_deref(), Some("image/webp"));
        assert_eq!(meta.etag.as_deref(), Some("\"abc\""));
        assert_eq!(meta.expires, 1_100);
        assert_eq!(run(t.lookup("k")).map(|(_, tier)| tier), Some(Tier::Cache));
        assert_eq!(store.reads.get(), 0, "a front hit never asks the store");

        // Another data centre, or an eviction.
        front.0.borrow_mut().clear();
        NOW_S.with(|n| n.set(1_040));
        let (entry, tier) = run(t.lookup("k")).unwrap();
        assert_eq!(tier, Tier::Store);
        assert_eq!(entry.body, response(StatusCode::OK, 100).body);
        // Copied into the front, and sent on, for the 60 s it has left.
        assert_eq!(front.0.borrow()["k"].ttl, 60);
        assert_eq!(
            entry.headers[http::header::CACHE_CONTROL],
            "public, max-age=60"
        );
        assert_eq!(run(t.lookup("k")).map(|(_, tier)| tier), Some(Tier::Cache));
        NOW_S.with(|n| n.set(1_000));
    }

    #[test]
    fn an_entry_over_the_stores_limit_stays_in_the_front() {
        let (t, front, store) = tiers();
        let mut big = response(StatusCode::OK, 100);
        big.body = Bytes::from(vec![0; MAX_ENTRY_BYTES as usize]);
        run(t.put("big", big));
        assert!(!store.entries.borrow().contains_key("big"));
        assert!(front.0.borrow().contains_key("big"));
        run(t.put("small", response(StatusCode::OK, 100)));
        assert!(store.entries.borrow().contains_key("small"));
    }

    #[test]
    fn an_absent_store_costs_a_lookup_nothing() {
        let absent: Option<Mem> = None;
        assert!(!absent.present() && Some(Mem::new()).present());
        assert!(!NoStore.present());
        let front = Front::default();
        let t = Tiered::new(front.clone(), absent, Clock, Duration::from_millis(50));
        run(t.put("k", response(StatusCode::OK, 100)));
        assert!(
            front.0.borrow().contains_key("k"),
            "the front still keeps it"
        );
        front.0.borrow_mut().clear();
        let timers = TIMERS.with(Cell::get);
        assert!(run(t.lookup("k")).is_none());
        assert_eq!(
            TIMERS.with(Cell::get),
            timers,
            "no timer set for a store not there"
        );
        // A store that is there is asked, under a timer.
        let (present, _, _) = tiers();
        assert!(run(present.lookup("k")).is_none());
        assert_eq!(TIMERS.with(Cell::get), timers + 1);
    }

    #[test]
    fn a_second_look_asks_only_the_front() {
        let (t, front, store) = tiers();
        run(t.put("k", response(StatusCode::OK, 100)));
        front.0.borrow_mut().clear();
        assert!(run(t.lookup_again("k")).is_none());
        assert_eq!(store.reads.get(), 0);
        run(front.put("k", response(StatusCode::OK, 100)));
        assert_eq!(
            run(t.lookup_again("k")).map(|(_, tier)| tier),
            Some(Tier::Cache)
        );
    }

    #[test]
    fn failures_and_fallbacks_stay_out_of_the_store() {
        let (t, front, store) = tiers();
        run(t.put("bad", response(StatusCode::BAD_GATEWAY, 10)));
        let mut fallback = response(StatusCode::OK, 10);
        fallback.headers.insert(
            super::super::FALLBACK_HEADER,
            HeaderValue::from_static("upstream 404"),
        );
        run(t.put("fallback", fallback));
        assert!(store.entries.borrow().is_empty());
        assert_eq!(front.0.borrow().len(), 2, "both stay in the front");
    }

    #[test]
    fn an_expired_or_damaged_stored_entry_is_a_miss() {
        let (t, _front, store) = tiers();
        t.store().put(
            "old",
            stored::encode(0, &response(StatusCode::OK, 10)),
            EntryMeta {
                content_type: None,
                etag: None,
                cache_control: None,
                expires: 10,
            },
        );
        assert!(run(t.lookup("old")).is_none());
        run(t.put("cut", response(StatusCode::OK, 100)));
        let (t2, _front2, store2) = tiers();
        let (bytes, meta) = store.entries.borrow()["cut"].clone();
        t2.store()
            .put("cut", bytes[..bytes.len() - 1].to_vec(), meta);
        assert!(run(t2.lookup("cut")).is_none());
        assert_eq!(store2.reads.get(), 1);
    }

    #[test]
    fn a_failing_or_slow_store_is_a_miss_and_then_rests() {
        for behaviour in [Behaviour::Fails, Behaviour::Hangs] {
            let (t, front, store) = tiers();
            run(t.put("k", response(StatusCode::OK, 100)));
            front.0.borrow_mut().clear();
            store.behaviour.set(behaviour);
            NOW_MS.with(|n| n.set(1_000.0));
            assert!(run(t.lookup("k")).is_none());
            assert_eq!(store.reads.get(), 1);
            // Resting: not asked again for a while, even once it works.
            store.behaviour.set(Behaviour::Works);
            NOW_MS.with(|n| n.set(1_000.0 + REST_MS - 1.0));
            assert!(run(t.lookup("k")).is_none());
            assert_eq!(store.reads.get(), 1);
            NOW_MS.with(|n| n.set(1_000.0 + REST_MS));
            assert_eq!(run(t.lookup("k")).map(|(_, tier)| tier), Some(Tier::Store));
            NOW_MS.with(|n| n.set(0.0));
        }
    }
}
