//! How a [`CachedResponse`] is stored outside the process, so every
//! adapter writes and reads the same thing and none re-implements it:
//! - as bytes, for result stores (R2, object stores, Spin's key-value
//!   store: [`encode`], [`decode`]);
//! - as an HTTP response with its real status in a header, for HTTP
//!   caches that keep only some statuses ([`to_http`], [`from_http`]).
//!
//! Anything that does not read back whole, intact and current is a miss,
//! never a partial, damaged or stale entry.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::CachedResponse;

/// Starts every byte entry; a new layout gets a new tag (entries in an
/// older layout then read as misses).
const MAGIC: &[u8; 4] = b"ET2\n";

/// Where [`to_http`] keeps the real status.
pub const STATUS_HEADER: &str = "x-edgethumb-status";

/// The entry as bytes, valid until `now_unix + response.ttl`:
/// `MAGIC, expires u64, status u16, ttl u32, header count u32, (name,
/// value)*, body length u64, body, CRC-32 of everything before it` (all
/// little-endian). The length and the checksum make a truncated or
/// damaged object a miss: a store is disk or network, not memory.
pub fn encode(now_unix: u64, r: &CachedResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&expiry(now_unix, r).to_le_bytes());
    out.extend_from_slice(&r.status.as_u16().to_le_bytes());
    out.extend_from_slice(&r.ttl.to_le_bytes());
    out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
    for (name, value) in &r.headers {
        for part in [name.as_str().as_bytes(), value.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(&(r.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&r.body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Unix seconds after which an entry stored at `now_unix` is no longer
/// served (what [`encode`] writes, for stores that also keep it as
/// metadata).
pub fn expiry(now_unix: u64, r: &CachedResponse) -> u64 {
    now_unix.saturating_add(u64::from(r.ttl))
}

/// The entry, if `bytes` hold a whole, intact one that is still valid at
/// `now_unix`. Its `ttl` is the time it has left.
pub fn decode(bytes: &[u8], now_unix: u64) -> Option<CachedResponse> {
    let (content, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(content).to_le_bytes() != crc {
        return None;
    }
    let mut r = Reader(content);
    if r.take(4)? != MAGIC {
        return None;
    }
    let expires = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    if expires <= now_unix {
        return None;
    }
    let status = StatusCode::from_u16(u16::from_le_bytes(r.take(2)?.try_into().ok()?)).ok()?;
    let _ttl_when_stored = r.u32()?;
    let count = r.u32()?;
    let mut headers = HeaderMap::new();
    for _ in 0..count {
        let n = r.u32()? as usize;
        let name = HeaderName::from_bytes(r.take(n)?).ok()?;
        let n = r.u32()? as usize;
        let value = HeaderValue::from_bytes(r.take(n)?).ok()?;
        headers.append(name, value);
    }
    let length = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    if r.0.len() as u64 != length {
        return None;
    }
    Some(CachedResponse {
        status,
        headers,
        body: Bytes::copy_from_slice(r.0),
        ttl: u32::try_from(expires - now_unix).unwrap_or(u32::MAX),
    })
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

/// The entry as an HTTP response to store: status 200, the real status in
/// [`STATUS_HEADER`]. (The Cache API, workerd's local one at least, does
/// not store statuses such as 502 or 413, even with a `max-age`.) Its
/// `Cache-Control: max-age`, set by the core, is the entry's lifetime.
pub fn to_http(r: &CachedResponse) -> http::Response<Bytes> {
    let mut resp = http::Response::new(r.body.clone());
    let mut headers = r.headers.clone();
    headers.insert(
        HeaderName::from_static(STATUS_HEADER),
        HeaderValue::from(r.status.as_u16()),
    );
    *resp.headers_mut() = headers;
    resp
}

/// The entry back from a response [`to_http`] stored; `None` for one it
/// did not write (no status header), so a stored failure is never read
/// back as a success. Its TTL is the store's business, so 0.
pub fn from_http(mut headers: HeaderMap, body: Bytes) -> Option<CachedResponse> {
    let status = headers
        .remove(STATUS_HEADER)
        .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())?;
    Some(CachedResponse {
        status,
        headers,
        body,
        ttl: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CachedResponse {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        headers.append(http::header::VARY, "Accept".parse().unwrap());
        CachedResponse {
            status: StatusCode::BAD_GATEWAY,
            headers,
            body: Bytes::from_static(b"upstream failed\n"),
            ttl: 10,
        }
    }

    fn same(a: &CachedResponse, b: &CachedResponse) -> bool {
        a.status == b.status && a.headers == b.headers && a.body == b.body
    }

    #[test]
    fn bytes_read_back_whole_until_they_expire() {
        let bytes = encode(1_000, &entry());
        let back = decode(&bytes, 1_004).unwrap();
        assert!(same(&back, &entry()));
        // What is left of its life, for the tier it is copied into.
        assert_eq!(back.ttl, 6);
        assert!(decode(&bytes, 1_009).is_some());
        assert!(decode(&bytes, 1_010).is_none(), "expired");
        assert_eq!(expiry(1_000, &entry()), 1_010);
    }

    #[test]
    fn damaged_or_truncated_bytes_are_a_miss() {
        let bytes = encode(0, &entry());
        // Every cut, in the header and in the body alike.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 0).is_none(), "cut at {cut}");
        }
        // Every single flipped bit.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                assert!(decode(&damaged, 0).is_none(), "bit {bit} of byte {i}");
            }
        }
        // Bytes past the end.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, 0).is_none());
        // An entry in the older layout, or something else entirely.
        assert!(decode(b"ET1\n", 0).is_none());
        assert!(decode(b"", 0).is_none());
    }

    #[test]
    fn a_checksummed_entry_with_a_lying_length_is_a_miss() {
        // The checksum is right, but the length is not the body's: a
        // writer's bug, not damage, and still never served.
        let mut bytes = encode(0, &entry());
        bytes.truncate(bytes.len() - 4);
        let body_len = entry().body.len();
        let at = bytes.len() - body_len - 8;
        bytes[at..at + 8].copy_from_slice(&(body_len as u64 + 1).to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        assert!(decode(&bytes, 0).is_none());
        // A header count far past the bytes there are.
        let mut huge = encode(0, &entry());
        huge.truncate(huge.len() - 4);
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&huge);
        huge.extend_from_slice(&crc.to_le_bytes());
        assert!(decode(&huge, 0).is_none());
    }

    #[test]
    fn http_entries_keep_their_real_status() {
        let stored = to_http(&entry());
        assert_eq!(stored.status(), StatusCode::OK);
        let (parts, body) = stored.into_parts();
        let back = from_http(parts.headers, body).unwrap();
        assert!(same(&back, &entry()));
        // An entry written by something else is not ours to serve.
        assert!(from_http(HeaderMap::new(), Bytes::new()).is_none());
    }
}
