//! The request path, imgproxy's URL format:
//!
//! ```text
//! /{signature}/{option}/.../plain/{percent-encoded source}[@{ext}]
//! /{signature}/{option}/.../{base64url source, may be split by /}[.{ext}]
//! ```
//!
//! The signature is found by position (the first segment), never by
//! searching, and what it covers is everything after it, leading `/`
//! included. In presets-only mode (`EDGETHUMB_ONLY_PRESETS`) the one
//! segment before the source is preset names ([`parse_presets_only`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::percent_decode_str;

use crate::error::Error;
use crate::request::options::RawOption;

/// Longest path accepted. Real thumbnail URLs are far shorter; this bounds
/// the work done on a hostile one.
pub const MAX_PATH_LEN: usize = 16 * 1024;

/// A request path split into its parts; nothing is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPath {
    pub signature: String,
    /// What the signature covers: the path after the signature segment.
    pub signed_path: String,
    pub options: Vec<RawOption>,
    pub source: String,
    pub extension: Option<String>,
}

/// The signature segment and the path it covers, with nothing else
/// parsed: a request is checked against its signature before anything in
/// it is decoded, so unsigned input gets no further than this.
pub fn split_signed(raw: &str) -> Result<(&str, String), Error> {
    let raw = raw.split_once('?').map_or(raw, |(p, _)| p);
    if raw.len() > MAX_PATH_LEN {
        return Err(Error::BadUrl(format!(
            "path is longer than {MAX_PATH_LEN} bytes"
        )));
    }
    let rest = raw
        .strip_prefix('/')
        .ok_or_else(|| Error::BadUrl("path must start with /".into()))?;
    let (signature, after) = rest
        .split_once('/')
        .ok_or_else(|| Error::BadUrl("no source URL".into()))?;
    if signature.is_empty() || after.is_empty() {
        return Err(Error::BadUrl("empty signature or source".into()));
    }
    Ok((signature, format!("/{}", redenormalize(after))))
}

/// Splits a raw (still percent-encoded) request path. A query string, if
/// any, is ignored, as imgproxy does.
pub fn parse(raw: &str) -> Result<ParsedPath, Error> {
    let (signature, signed_path) = split_signed(raw)?;
    let after = &signed_path[1..];

    let segments: Vec<&str> = after.split('/').collect();
    let mut options = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        match RawOption::split(segments[i]) {
            Some(o) => options.push(o),
            None => break,
        }
        i += 1;
    }
    let (source, extension) = decode_source(&segments[i..])?;
    Ok(ParsedPath {
        signature: signature.to_string(),
        signed_path,
        options,
        source,
        extension,
    })
}

/// Presets-only mode, as imgproxy's: one segment of preset names
/// (`thumb:blurry`, or `pr:thumb:blurry`), then the source. Nothing else
/// can reach the options.
pub fn parse_presets_only(raw: &str) -> Result<ParsedPath, Error> {
    let (signature, signed_path) = split_signed(raw)?;
    let (names, rest) = signed_path[1..]
        .split_once('/')
        .ok_or_else(|| Error::BadUrl("no source URL after the preset names".into()))?;
    let names = ["pr:", "preset:"]
        .iter()
        .find_map(|p| names.strip_prefix(p))
        .unwrap_or(names);
    let options = vec![RawOption {
        name: "preset".into(),
        args: names.split(':').map(str::to_string).collect(),
    }];
    let segments: Vec<&str> = rest.split('/').collect();
    let (source, extension) = decode_source(&segments)?;
    Ok(ParsedPath {
        signature: signature.to_string(),
        signed_path: signed_path.clone(),
        options,
        source,
        extension,
    })
}

fn decode_source(parts: &[&str]) -> Result<(String, Option<String>), Error> {
    if parts.first() == Some(&"plain") && parts.len() > 1 {
        let joined = parts[1..].join("/");
        let mut halves = joined.split('@');
        let url = halves.next().unwrap_or("");
        let ext = halves.next().filter(|e| !e.is_empty()).map(str::to_string);
        if halves.next().is_some() {
            return Err(Error::BadUrl(
                "more than one `@` in a plain source (percent-encode it as %40)".into(),
            ));
        }
        let url = percent_decode_str(url)
            .decode_utf8()
            .map_err(|_| Error::BadUrl("source URL is not UTF-8".into()))?;
        if url.is_empty() {
            return Err(Error::BadUrl("source URL is empty".into()));
        }
        return Ok((url.into_owned(), ext));
    }
    let joined = parts.concat();
    let mut halves = joined.split('.');
    let encoded = halves.next().unwrap_or("").trim_end_matches('=');
    let ext = halves.next().filter(|e| !e.is_empty()).map(str::to_string);
    if halves.next().is_some() {
        return Err(Error::BadUrl(
            "more than one `.` after a base64 source".into(),
        ));
    }
    if encoded.is_empty() {
        return Err(Error::BadUrl("source URL is empty".into()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Error::BadUrl("source is not valid base64url".into()))?;
    let url =
        String::from_utf8(bytes).map_err(|_| Error::BadUrl("source URL is not UTF-8".into()))?;
    Ok((url, ext))
}

/// Undoes what some proxies and browsers do to paths, as imgproxy does
/// before checking the signature: `:` encoded as `%3A` in options, and
/// `scheme://` collapsed to `scheme:/` in a plain source.
fn redenormalize(path: &str) -> String {
    let (options, plain) = if let Some(p) = path.strip_prefix("plain/") {
        ("", Some(p))
    } else if let Some((o, p)) = path.split_once("/plain/") {
        (o, Some(p))
    } else {
        (path, None)
    };
    let options = options.replace("%3A", ":").replace("%3a", ":");
    let Some(plain) = plain else {
        return options;
    };
    let plain = match plain.split_once(":/") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && !scheme.contains('/')
                && !rest.starts_with('/')
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            format!("{scheme}://{rest}")
        }
        _ => plain.to_string(),
    };
    if options.is_empty() {
        format!("plain/{plain}")
    } else {
        format!("{options}/plain/{plain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_only_paths() {
        for path in [
            "/s/thumb:blurry/plain/http://e.com/x.jpg@png",
            "/s/pr:thumb:blurry/plain/http://e.com/x.jpg@png",
        ] {
            let p = parse_presets_only(path).unwrap();
            assert_eq!(p.options.len(), 1);
            assert_eq!(p.options[0].name, "preset");
            assert_eq!(p.options[0].args, ["thumb", "blurry"]);
            assert_eq!(p.source, "http://e.com/x.jpg");
            assert_eq!(p.extension.as_deref(), Some("png"));
        }
        // Other options are preset names too: unknown ones, refused later.
        let p = parse_presets_only("/s/w:100/aHR0cDovL2UuY29tL3guanBn").unwrap();
        assert_eq!(p.options[0].args, ["w", "100"]);
        assert_eq!(p.source, "http://e.com/x.jpg");
        assert!(parse_presets_only("/s/thumb").is_err());
    }

    #[test]
    fn design_example_base64_split_source() {
        let p = parse(
            "/sig/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        )
        .unwrap();
        assert_eq!(p.signature, "sig");
        assert_eq!(p.options.len(), 2);
        assert_eq!(p.source, "http://example.com/images/curiosity.jpg");
        assert_eq!(p.extension.as_deref(), Some("png"));
        assert!(p.signed_path.starts_with("/rs:fill"));
    }

    #[test]
    fn plain_source_with_extension_and_escapes() {
        let p = parse("/s/w:10/plain/http://example.com/a%20b.jpg%3Fx%3D1@webp?ignored=1").unwrap();
        assert_eq!(p.source, "http://example.com/a b.jpg?x=1");
        assert_eq!(p.extension.as_deref(), Some("webp"));
        assert_eq!(
            p.signed_path,
            "/w:10/plain/http://example.com/a%20b.jpg%3Fx%3D1@webp"
        );
        // No options at all.
        assert_eq!(
            parse("/s/plain/https://e.com/x").unwrap().source,
            "https://e.com/x"
        );
    }

    #[test]
    fn proxy_normalisation_is_undone() {
        let p = parse("/s/rs%3Afit%3A10%3A10/plain/http:/example.com/x.jpg").unwrap();
        assert_eq!(
            p.signed_path,
            "/rs:fit:10:10/plain/http://example.com/x.jpg"
        );
        assert_eq!(p.source, "http://example.com/x.jpg");
    }

    #[test]
    fn bad_paths_are_400() {
        for bad in [
            "",
            "nosig",
            "/onlysig",
            "/sig/",
            "/sig/w:10",
            "/sig/w:10/plain/",
            "/sig/plain/http://a@b@png",
            "/sig/aGVsbG8.png.jpg",
            "/sig/!!!notbase64",
            "/sig/plain/http://e.com/%FF%FE",
            "/sig/_w-8",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{bad:?}: {e}");
        }
        let long = format!("/sig/plain/http://e.com/{}", "a".repeat(MAX_PATH_LEN));
        assert!(parse(&long).is_err());
    }
}
