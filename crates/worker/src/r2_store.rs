//! The result store tier: an R2 bucket bound as `EDGETHUMB_RESULTS`
//! (optional; without the binding the Worker runs on the Cache API alone).
//!
//! - The Cache API is per data centre and evictable; R2 is one bucket for
//!   every data centre, so a thumbnail is made once, not once per data
//!   centre and again after every eviction.
//! - Objects hold the core's stored entries (status, headers, expiry and a
//!   checksum) under the core's cache key, never the signature. R2's own
//!   metadata repeats the content type, cache policy, ETag and expiry,
//!   for an operator listing the bucket; the entry's bytes are what is
//!   served.
//! - Writes are queued and handed to `ctx.waitUntil` by the handler, as
//!   the Cache API's are.

use std::collections::HashMap;

use bytes::Bytes;
use edgethumb::{EntryMeta, Store, StoreError, MAX_ENTRY_BYTES};
use worker::{Bucket, HttpMetadata};

use crate::after_response::AfterResponse;

/// The binding's name in `wrangler.toml`.
pub const BINDING: &str = "EDGETHUMB_RESULTS";

/// Under this prefix; bump it to orphan every object after an
/// output-changing release (and let a lifecycle rule delete them).
const KEY_PREFIX: &str = "v1/";

pub struct R2Store {
    bucket: Bucket,
    /// Writes, for `ctx.waitUntil`.
    pub writes: AfterResponse,
}

impl R2Store {
    pub fn new(bucket: Bucket) -> Self {
        R2Store {
            bucket,
            writes: AfterResponse::default(),
        }
    }
}

fn failed(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    let e = StoreError(format!("R2 {what} {key}: {e}"));
    worker::console_warn!("{e}; treated as a miss");
    e
}

impl Store for R2Store {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let name = format!("{KEY_PREFIX}{key}");
        let found = self
            .bucket
            .get(&name)
            .execute()
            .await
            .map_err(|e| failed("get", &name, e))?;
        let Some(object) = found else {
            return Ok(None);
        };
        if object.size() > MAX_ENTRY_BYTES {
            return Err(failed("get", &name, format!("{} bytes", object.size())));
        }
        let Some(body) = object.body() else {
            return Ok(None);
        };
        let bytes = body.bytes().await.map_err(|e| failed("read", &name, e))?;
        Ok(Some(Bytes::from(bytes)))
    }

    fn put(&self, key: &str, entry: Vec<u8>, meta: EntryMeta) {
        let name = format!("{KEY_PREFIX}{key}");
        let bucket = self.bucket.clone();
        // Built inside the write, in the I/O context of the request whose
        // `waitUntil` runs it.
        let write = async move {
            let mut custom = HashMap::from([("expires".to_string(), meta.expires.to_string())]);
            if let Some(etag) = meta.etag {
                custom.insert("etag".into(), etag);
            }
            let http = HttpMetadata {
                content_type: meta.content_type,
                cache_control: meta.cache_control,
                ..HttpMetadata::default()
            };
            let put = bucket
                .put(&name, entry)
                .http_metadata(http)
                .custom_metadata(custom)
                .execute()
                .await;
            if let Err(e) = put {
                // A failed write only costs a later miss.
                worker::console_warn!("R2 put {name}: {e}");
            }
        };
        self.writes.push(write);
    }
}
