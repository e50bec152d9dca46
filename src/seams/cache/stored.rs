//! How a [`CachedResponse`] is stored outside the process, so every
//! adapter writes and reads the same thing and none re-implements it:
//! - as bytes, for key-value stores ([`encode`], [`decode`]);
//! - as an HTTP response with its real status in a header, for HTTP
//!   caches that keep only some statuses ([`to_http`], [`from_http`]).
//!
//! Anything that does not read back whole and current is a miss, never a
//! partial or stale entry.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::CachedResponse;

/// Starts every byte entry; a new layout gets a new tag.
const MAGIC: &[u8; 4] = b"ET1\n";

/// Where [`to_http`] keeps the real status.
pub const STATUS_HEADER: &str = "x-edgethumb-status";

/// The entry as bytes, valid until `now_unix + response.ttl`.
pub fn encode(now_unix: u64, r: &CachedResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&now_unix.saturating_add(u64::from(r.ttl)).to_le_bytes());
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

/// The entry, if `bytes` hold a whole one that is still valid at
/// `now_unix`.
pub fn decode(bytes: &[u8], now_unix: u64) -> Option<CachedResponse> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return None;
    }
    let expires = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    if expires <= now_unix {
        return None;
    }
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
    Some(CachedResponse {
        status,
        headers,
        body: Bytes::copy_from_slice(r.0),
        ttl,
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
        let back = decode(&bytes, 1_009).unwrap();
        assert!(same(&back, &entry()));
        assert_eq!(back.ttl, 10);
        assert!(decode(&bytes, 1_010).is_none(), "expired");
    }

    #[test]
    fn damaged_bytes_are_a_miss() {
        let bytes = encode(0, &entry());
        let header_end = bytes.len() - entry().body.len();
        // Every cut inside the header; a cut body cannot be told apart by
        // length, which is why stores write an entry whole or not at all.
        for cut in 0..header_end {
            assert!(decode(&bytes[..cut], 0).is_none(), "cut at {cut}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(decode(&wrong, 0).is_none());
        let mut huge = bytes;
        // A header count far past the bytes there are.
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
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
