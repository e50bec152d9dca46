//! A result cache in Spin's default key-value store (`spin-kv` feature).
//! Entries carry their own expiry, since the store has no TTLs. Not
//! exercised by the test suite: no Spin host runs here (see README).

use bytes::Bytes;
use edgethumb::{Cache, CachedResponse, Runtime};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use spin_sdk::key_value::Store;

use crate::WasiRuntime;

const MAGIC: &[u8; 4] = b"ET1\n";

pub struct KvCache;

impl Cache for KvCache {
    async fn get(&self, key: &str) -> Option<CachedResponse> {
        let store = Store::open_default().ok()?;
        let bytes = store.get(key).ok()??;
        match decode(&bytes) {
            Some((expires, resp)) if expires > WasiRuntime.unix_time() => Some(resp),
            _ => {
                let _ = store.delete(key);
                None
            }
        }
    }

    async fn put(&self, key: &str, response: CachedResponse) {
        let expires = WasiRuntime.unix_time() + response.ttl as u64;
        if let Ok(store) = Store::open_default() {
            // A failed write only costs a later miss.
            let _ = store.set(key, &encode(expires, &response));
        }
    }
}

fn encode(expires: u64, r: &CachedResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&r.status.as_u16().to_le_bytes());
    out.extend_from_slice(&r.ttl.to_le_bytes());
    out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
    for (name, value) in &r.headers {
        for part in [name.as_str().as_bytes(), value.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(&r.body);
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

fn decode(bytes: &[u8]) -> Option<(u64, CachedResponse)> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return None;
    }
    let expires = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let status = StatusCode::from_u16(u16::from_le_bytes(r.take(2)?.try_into().ok()?)).ok()?;
    let ttl = r.u32()?;
    let count = r.u32()?;
    let mut headers = HeaderMap::new();
    for _ in 0..count {
        let n = r.u32()? as usize;
        let name = HeaderName::from_bytes(r.take(n)?).ok()?;
        let n = r.u32()? as usize;
        let value = HeaderValue::from_bytes(r.take(n)?).ok()?;
        headers.append(name, value);
    }
    let body = Bytes::copy_from_slice(r.0);
    Some((
        expires,
        CachedResponse {
            status,
            headers,
            body,
            ttl,
        },
    ))
}
