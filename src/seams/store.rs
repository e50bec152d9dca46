//! The result store seam: a persistent tier behind the result cache (R2 on
//! Workers, an object store natively, Spin's key-value store), so a result
//! is made once, not once per data centre or per eviction. It holds the
//! core's stored entries ([`crate::seams::cache::stored`]) under the
//! cache key; [`crate::seams::cache::tiered`] decides what goes in and
//! what comes out.

use std::future::Future;

use bytes::Bytes;

/// Why a store could not answer. A store error is a miss, never an error
/// response: the adapter logs it, the core counts it and moves on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("result store: {0}")]
pub struct StoreError(pub String);

/// The largest entry a store is given or reads: a result is far smaller,
/// so anything bigger in a store is not ours (adapters check an object's
/// size before reading it).
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// What a stored entry says about itself, for stores that keep metadata
/// beside the bytes (R2's custom metadata, an operator's listing). The
/// entry's own bytes stay the authority on what is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub cache_control: Option<String>,
    /// Unix seconds after which the entry is a miss.
    pub expires: u64,
}

pub trait Store: 'static {
    /// Whether `put` keeps anything (see [`crate::Cache::STORES`]).
    const STORES: bool = true;

    /// Whether there is a store at all (an optional binding may be
    /// unset): without one, nothing is encoded for it or asked of it.
    fn present(&self) -> bool {
        Self::STORES
    }

    /// The entry's bytes under `key`, `None` if there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, StoreError>>;

    /// Stores `entry` under `key`, off the response path: it returns at
    /// once, and the adapter finishes the write later (a bounded queue, a
    /// Worker's `waitUntil`), logging a failure. A failed write only costs
    /// a later miss.
    fn put(&self, key: &str, entry: Vec<u8>, meta: EntryMeta);
}

/// No store: every lookup misses, nothing is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

impl Store for NoStore {
    const STORES: bool = false;
    async fn get(&self, _key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(None)
    }
    fn put(&self, _key: &str, _entry: Vec<u8>, _meta: EntryMeta) {}
}

/// A store that may not be configured (an optional binding or setting).
impl<S: Store> Store for Option<S> {
    const STORES: bool = S::STORES;
    fn present(&self) -> bool {
        self.as_ref().is_some_and(Store::present)
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self {
            Some(s) => s.get(key).await,
            None => Ok(None),
        }
    }
    fn put(&self, key: &str, entry: Vec<u8>, meta: EntryMeta) {
        if let Some(s) = self {
            s.put(key, entry, meta);
        }
    }
}
