//! Which upstream URLs may be fetched. Checked for the source and again for
//! every redirect hop:
//! - http(s) only, no credentials in the URL;
//! - the `EDGETHUMB_ALLOWED_SOURCES` prefix allowlist (imgproxy semantics);
//! - no loopback, private, link-local or otherwise internal IP literal, in
//!   any spelling the URL parser accepts, unless explicitly allowed.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::error::{ConfigError, Error};

/// Which upstreams may be fetched (imgproxy `ALLOWED_SOURCES` semantics).
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    /// URL prefixes. Empty means any public http(s) URL.
    pub allowed_prefixes: Vec<String>,
    /// Allow loopback, private and link-local addresses (tests, dev).
    pub allow_private: bool,
    /// Redirects followed, each target checked again.
    pub max_redirects: u8,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        SourcePolicy {
            allowed_prefixes: Vec::new(),
            allow_private: false,
            max_redirects: 5,
        }
    }
}

/// Parses the comma-separated allowlist. A prefix must name its host with a
/// trailing `/`, or `https://example.com` would also allow
/// `https://example.com.evil.net`.
pub fn parse_allowed_sources(var: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|prefix| {
            let after_scheme = prefix
                .split_once("://")
                .map(|(_, rest)| rest)
                .ok_or_else(|| ConfigError::new(var, format!("`{prefix}` has no scheme://")))?;
            if !after_scheme.contains('/') {
                return Err(ConfigError::new(
                    var,
                    format!("`{prefix}` must end its host with `/` (e.g. `{prefix}/`)"),
                ));
            }
            let parsed = Url::parse(prefix)
                .map_err(|e| ConfigError::new(var, format!("`{prefix}` is not a URL ({e})")))?;
            // Compare in the parser's normal form, as sources are.
            Ok(parsed.as_str().to_string())
        })
        .collect()
}

/// Checks one URL against the policy and returns it parsed.
pub fn check(source: &str, cfg: &SourcePolicy) -> Result<Url, Error> {
    let url = Url::parse(source)
        .map_err(|e| Error::BadUrl(format!("source is not a valid URL ({e})")))?;
    check_url(&url, cfg)?;
    Ok(url)
}

/// Checks an already parsed URL (a redirect target).
pub fn check_url(url: &Url, cfg: &SourcePolicy) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::SourceForbidden(format!(
            "scheme `{}` (only http and https)",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::SourceForbidden(
            "credentials in the source URL".into(),
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| Error::BadUrl("source URL has no host".into()))?;
    if !cfg.allowed_prefixes.is_empty()
        && !cfg
            .allowed_prefixes
            .iter()
            .any(|p| url.as_str().starts_with(p.as_str()))
    {
        return Err(Error::SourceForbidden(format!(
            "{} is not in the allowed sources",
            host_label(url)
        )));
    }
    if !cfg.allow_private && is_internal(&host) {
        return Err(Error::SourceForbidden(format!(
            "{} is a private or local address",
            host_label(url)
        )));
    }
    Ok(())
}

fn host_label(url: &Url) -> String {
    url.host_str().unwrap_or("?").to_string()
}

/// Whether an address is loopback, private, link-local or otherwise not a
/// public unicast address. Adapters that resolve names themselves (the
/// native server) filter resolved addresses with this.
pub fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => internal_v4(v4),
        std::net::IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn is_internal(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Host::Ipv4(ip) => internal_v4(*ip),
        Host::Ipv6(ip) => internal_v6(*ip),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return true;
    }
    // IPv4 embedded in IPv6: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d,
    // NAT64 64:ff9b::/96 and 6to4 2002::/16 all reach the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    // IPv4-translated ::ffff:0:a.b.c.d (SIIT) too.
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return internal_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
    }
    // Local-use NAT64 64:ff9b:1::/48 (RFC 8215) translates into a network
    // of the operator's own: never public.
    if s[..3] == [0x64, 0xff9b, 1] {
        return true;
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return internal_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
    }
    if s[0] == 0x2002 {
        return internal_v4(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32));
    }
    (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(prefixes: &[&str], allow_private: bool) -> SourcePolicy {
        SourcePolicy {
            allowed_prefixes: parse_allowed_sources("V", &prefixes.join(",")).unwrap(),
            allow_private,
            max_redirects: 5,
        }
    }

    #[test]
    fn internal_addresses_in_every_spelling_are_refused() {
        let c = cfg(&[], false);
        for url in [
            "http://127.0.0.1/x",
            "http://127.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://0x7f.0.0.1/x",
            "http://0177.0.0.1/x",
            "http://0/x",
            "http://0.0.0.0/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/x",
            "http://[::1]/x",
            "http://[::]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://[::127.0.0.1]/x",
            "http://[64:ff9b::a9fe:a9fe]/x",
            "http://[::ffff:0:7f00:1]/x",
            "http://[::ffff:0:a9fe:a9fe]/x",
            "http://[64:ff9b:1::7f00:1]/x",
            "http://[64:ff9b:1:abcd::5db8:d822]/x",
            "http://[2002:7f00:1::]/x",
            "http://[fe80::1]/x",
            "http://[fd00::1]/x",
            "http://localhost/x",
            "http://LOCALHOST./x",
            "http://api.localhost/x",
        ] {
            let e = check(url, &c).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::FORBIDDEN, "{url}: {e}");
        }
        assert!(check("http://93.184.216.34/x", &c).is_ok());
        assert!(check("http://[2606:2800:220:1::1]/x", &c).is_ok());
        // Public IPv4 behind the standard and translated prefixes.
        assert!(check("http://[64:ff9b::5db8:d822]/x", &c).is_ok());
        assert!(check("http://[::ffff:0:5db8:d822]/x", &c).is_ok());
        assert!(check("http://127.0.0.1/x", &cfg(&[], true)).is_ok());
    }

    #[test]
    fn schemes_and_credentials() {
        let c = cfg(&[], false);
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "data:image/png;base64,AAAA",
            "http://user:pw@example.com/x",
            "http://allowed.example@evil.example/x",
        ] {
            assert!(check(url, &c).is_err(), "{url}");
        }
        assert_eq!(
            check("not a url", &c).unwrap_err().status(),
            http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn allowlist_is_a_prefix_with_a_closed_host() {
        let c = cfg(
            &["https://images.example.com/", "http://cdn.example.org/pub/"],
            false,
        );
        assert!(check("https://images.example.com/a.jpg", &c).is_ok());
        assert!(check("https://IMAGES.example.com/a.jpg", &c).is_ok());
        assert!(check("http://cdn.example.org/pub/a.jpg", &c).is_ok());
        for url in [
            "https://images.example.com.evil.net/a.jpg",
            "http://images.example.com/a.jpg",
            "http://cdn.example.org/private/a.jpg",
            "https://images.example.com@evil.net/a.jpg",
            // Dot segments are resolved before the prefix is compared.
            "http://cdn.example.org/pub/../private/a.jpg",
            "http://cdn.example.org/pub/%2e%2e/private/a.jpg",
            "http://cdn.example.org/pub/.%2E/private/a.jpg",
        ] {
            assert!(check(url, &c).is_err(), "{url}");
        }
        assert!(parse_allowed_sources("V", "https://example.com").is_err());
        assert!(parse_allowed_sources("V", "example.com/").is_err());
    }
}
