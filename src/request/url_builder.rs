//! Building signed URLs (the `sign` command, `warm`, tests): the inverse of
//! [`crate::request::path`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::request::signature::{self, KeyPair};

/// Characters escaped in a `plain/` source: those that would end or split
/// the path segment, start a query, or mark the extension.
const PLAIN: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// How the source is written into the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEncoding {
    Plain,
    Base64,
}

/// The path after the signature: `/{options}/plain/{source}[@ext]` or
/// `/{options}/{base64}[.ext]`. `options` is `/`-separated, may be empty.
pub fn unsigned_path(
    options: &str,
    source: &str,
    ext: Option<&str>,
    enc: SourceEncoding,
) -> String {
    let mut p = String::new();
    for opt in options.split('/').filter(|s| !s.is_empty()) {
        p.push('/');
        p.push_str(opt);
    }
    match enc {
        SourceEncoding::Plain => {
            p.push_str("/plain/");
            p.push_str(&utf8_percent_encode(source, PLAIN).to_string());
            if let Some(e) = ext {
                p.push('@');
                p.push_str(e);
            }
        }
        SourceEncoding::Base64 => {
            p.push('/');
            p.push_str(&URL_SAFE_NO_PAD.encode(source));
            if let Some(e) = ext {
                p.push('.');
                p.push_str(e);
            }
        }
    }
    p
}

/// Prefixes a path with its signature (the first key pair signs), or with
/// `insecure` when there is no key.
pub fn sign_path(path: &str, key: Option<&KeyPair>, size: usize) -> String {
    match key {
        Some(k) => format!("/{}{path}", signature::sign(path, k, size)),
        None => format!("/insecure{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::path;

    #[test]
    fn built_paths_parse_back() {
        let k = KeyPair::from_hex("736563726574", "68656C6C6F").unwrap();
        for enc in [SourceEncoding::Plain, SourceEncoding::Base64] {
            let src = "http://example.com/a b/c.jpg?x=1&y=@2#frag";
            let p = unsigned_path("rs:fill:300:400/q:80", src, Some("webp"), enc);
            let signed = sign_path(&p, Some(&k), 32);
            let parsed = path::parse(&signed).unwrap();
            assert_eq!(parsed.source, src, "{enc:?}");
            assert_eq!(parsed.extension.as_deref(), Some("webp"));
            assert_eq!(parsed.options.len(), 2);
            assert!(signature::verify(
                &parsed.signature,
                &parsed.signed_path,
                std::slice::from_ref(&k),
                32
            ));
        }
    }
}
