//! The result store tier in Spin's default key-value store (`spin-kv`
//! feature), behind no cache (an instance may be fresh per request). It
//! holds the core's stored entries, which carry their own expiry and
//! checksum, since the store has no TTLs. As everywhere, only made
//! thumbnails go in: a failure is answered with its short `max-age` for
//! the HTTP cache in front. Not exercised by the test suite: no Spin host
//! runs here (see README).

use bytes::Bytes;
use edgethumb::{EntryMeta, Store, StoreError};
use spin_sdk::key_value::Store as Kv;

pub struct KvStore;

impl Store for KvStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let kv = Kv::open_default().map_err(|e| StoreError(e.to_string()))?;
        let found = kv.get(key).map_err(|e| StoreError(e.to_string()))?;
        Ok(found.map(Bytes::from))
    }

    fn put(&self, key: &str, entry: Vec<u8>, _meta: EntryMeta) {
        // Spin's store is called inline (there is no work after the
        // response); a failed write only costs a later miss.
        if let Ok(kv) = Kv::open_default() {
            let _ = kv.set(key, &entry);
        }
    }
}
