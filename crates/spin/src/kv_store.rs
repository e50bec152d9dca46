//! A result cache in Spin's default key-value store (`spin-kv` feature).
//! Entries carry their own expiry (the core's stored-entry format), since
//! the store has no TTLs. Not exercised by the test suite: no Spin host
//! runs here (see README).

use edgethumb::seams::cache::stored;
use edgethumb::{Cache, CachedResponse, Runtime};
use spin_sdk::key_value::Store;

use crate::WasiRuntime;

pub struct KvCache;

impl Cache for KvCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let store = Store::open_default().ok()?;
        let bytes = store.get(key).ok()??;
        let entry = stored::decode(&bytes, WasiRuntime.unix_time());
        if entry.is_none() {
            // Expired or unreadable: gone, so it is not read again.
            let _ = store.delete(key);
        }
        entry
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        if let Ok(store) = Store::open_default() {
            // A failed write only costs a later miss.
            let _ = store.set(key, &stored::encode(WasiRuntime.unix_time(), &response));
        }
    }
}
