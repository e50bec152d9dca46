//! URL signatures, imgproxy's scheme: `base64url_nopad(HMAC-SHA256(key,
//! salt ‖ path))`, optionally truncated to `signature_size` bytes, with any
//! number of key/salt pairs accepted so keys can rotate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

type HmacSha256 = Hmac<Sha256>;

/// One signing key and its salt, both raw bytes (configured as hex).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

// Keys are secrets: never print them.
impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair(..)")
    }
}

impl KeyPair {
    /// Parses one hex key and one hex salt.
    pub fn from_hex(key: &str, salt: &str) -> Result<Self, ConfigError> {
        Self::parse_lists("EDGETHUMB_KEY", key, "EDGETHUMB_SALT", salt)?
            .pop()
            .ok_or_else(|| ConfigError::new("EDGETHUMB_KEY", "empty"))
    }

    /// Parses comma-separated hex keys and salts; the n-th key pairs with
    /// the n-th salt.
    pub fn parse_lists(
        key_var: &str,
        keys: &str,
        salt_var: &str,
        salts: &str,
    ) -> Result<Vec<Self>, ConfigError> {
        let keys = parse_hex_list(key_var, keys)?;
        let salts = parse_hex_list(salt_var, salts)?;
        if keys.len() != salts.len() {
            return Err(ConfigError::new(
                salt_var,
                format!(
                    "{} keys but {} salts: give one salt per key",
                    keys.len(),
                    salts.len()
                ),
            ));
        }
        Ok(keys
            .into_iter()
            .zip(salts)
            .map(|(key, salt)| KeyPair { key, salt })
            .collect())
    }

    fn mac(&self, path: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        };
        mac.update(&self.salt);
        // imgproxy signs the path with its leading slash, and adds one if a
        // client library left it out.
        if !path.starts_with('/') {
            mac.update(b"/");
        }
        mac.update(path.as_bytes());
        mac
    }
}

fn parse_hex_list(var: &str, value: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .map(|h| {
            if h.is_empty() {
                return Err(ConfigError::new(var, "empty entry in the list"));
            }
            hex::decode(h).map_err(|e| ConfigError::new(var, format!("not valid hex ({e})")))
        })
        .collect()
}

/// Signs `path` (everything after the signature segment, leading `/`
/// included) with one key pair.
pub fn sign(path: &str, pair: &KeyPair, size: usize) -> String {
    let tag = pair.mac(path).finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&tag[..size.clamp(1, tag.len())])
}

/// Checks `signature` against every key pair, in constant time per pair.
/// Padded, re-encoded or wrongly sized signatures are refused.
pub fn verify(signature: &str, path: &str, keys: &[KeyPair], size: usize) -> bool {
    let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    if given.len() != size.clamp(1, 32) {
        return false;
    }
    keys.iter()
        .any(|pair| pair.mac(path).verify_truncated_left(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &[u8], salt: &[u8]) -> KeyPair {
        KeyPair {
            key: key.to_vec(),
            salt: salt.to_vec(),
        }
    }

    const DESIGN_PATH: &str =
        "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";

    #[test]
    fn published_imgproxy_vector() {
        let p = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
        assert_eq!(
            sign(DESIGN_PATH, &p, 32),
            "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"
        );
        assert!(verify(
            "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8",
            DESIGN_PATH,
            &[p],
            32
        ));
    }

    // imgproxy's own security/signature_test.go vectors.
    #[test]
    fn imgproxy_test_suite_vectors() {
        let a = pair(b"test-key", b"test-salt");
        let b = pair(b"test-key2", b"test-salt2");
        assert!(verify(
            "oWaL7QoW5TsgbuiS9-5-DI8S3Ibbo1gdB2SteJh3a20",
            "asd",
            std::slice::from_ref(&a),
            32
        ));
        assert!(verify("oWaL7QoW5Ts", "asd", std::slice::from_ref(&a), 8));
        assert!(!verify("oWaL7QoW5Ts", "asd", std::slice::from_ref(&a), 32));
        let both = [a, b];
        assert!(verify(
            "jYz1UZ7j1BCdSzH3pZhaYf0iuz0vusoOTdqJsUT6WXI",
            "asd",
            &both,
            32
        ));
        assert!(verify(
            "oWaL7QoW5TsgbuiS9-5-DI8S3Ibbo1gdB2SteJh3a20",
            "asd",
            &both,
            32
        ));
        assert!(!verify("dtLwhdnPPis", "asd", &both, 32));
    }

    #[test]
    fn tampering_is_refused() {
        let p = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
        let keys = std::slice::from_ref(&p);
        let good = "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8";
        // A changed option, source and extension.
        for path in [
            DESIGN_PATH.replace("300", "301"),
            DESIGN_PATH.replace("anBn", "anBm"),
            DESIGN_PATH.replace(".png", ".webp"),
        ] {
            assert!(!verify(good, &path, keys, 32), "{path}");
        }
        // Truncated, padded, re-encoded and altered signatures.
        assert!(!verify(&good[..42], DESIGN_PATH, keys, 32));
        assert!(!verify(&format!("{good}="), DESIGN_PATH, keys, 32));
        assert!(!verify(&good.replace('_', "/"), DESIGN_PATH, keys, 32));
        assert!(!verify(&good.replace('o', "p"), DESIGN_PATH, keys, 32));
        // A wrong key.
        let wrong = KeyPair::from_hex("736563726575", "68656C6C6F").unwrap();
        assert!(!verify(good, DESIGN_PATH, &[wrong], 32));
        // No keys at all.
        assert!(!verify(good, DESIGN_PATH, &[], 32));
    }

    #[test]
    fn truncated_signatures_round_trip() {
        let p = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
        let s = sign(DESIGN_PATH, &p, 8);
        assert_eq!(s, "oKfUtW34Dvo");
        assert!(verify(&s, DESIGN_PATH, std::slice::from_ref(&p), 8));
    }

    #[test]
    fn rotation_needs_one_salt_per_key() {
        let e = KeyPair::parse_lists("EDGETHUMB_KEY", "aa,bb", "EDGETHUMB_SALT", "cc").unwrap_err();
        assert_eq!(e.var, "EDGETHUMB_SALT");
        assert_eq!(
            KeyPair::parse_lists("EDGETHUMB_KEY", "aa,bb", "EDGETHUMB_SALT", "cc,dd")
                .unwrap()
                .len(),
            2
        );
    }
}
