//! Output format negotiation. An explicit format wins; otherwise the first
//! `EDGETHUMB_AUTO_FORMATS` entry the `Accept` header names explicitly;
//! otherwise JPEG, or PNG for images with alpha. An animated source
//! processed as one ([`Negotiated::animated`]) follows imgproxy's rules.

use crate::request::options::Format;

/// The decision, made before the source is fetched, so it can be part of
/// the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// Set by the URL; the response does not vary by `Accept`.
    Explicit(Format),
    /// Chosen because `Accept` names it.
    Accepted(Format),
    /// JPEG, or PNG when the image has alpha.
    Fallback,
}

impl Negotiated {
    /// Whether the response depends on the request's `Accept` header.
    pub fn varies(self) -> bool {
        !matches!(self, Negotiated::Explicit(_))
    }

    /// The final format once it is known whether the image has alpha.
    pub fn resolve(self, has_alpha: bool) -> Format {
        match self {
            Negotiated::Explicit(f) | Negotiated::Accepted(f) => f,
            Negotiated::Fallback if has_alpha => Format::Png,
            Negotiated::Fallback => Format::Jpeg,
        }
    }

    /// The format an animated source keeps its motion in, or `None` when
    /// only its first frame is made, as imgproxy decides: a format set by
    /// the URL is kept, and animates only if it can (WebP, GIF); WebP
    /// chosen by `Accept` animates; otherwise a GIF source stays GIF, and
    /// an animated WebP for a client that did not ask for WebP becomes GIF
    /// (the first of imgproxy's preferred formats that animates).
    pub fn animated(self) -> Option<Format> {
        match self {
            Negotiated::Explicit(f) | Negotiated::Accepted(f) => f.animates().then_some(f),
            Negotiated::Fallback => Some(Format::Gif),
        }
    }

    /// A stable token for cache keys.
    pub fn key(self) -> String {
        match self {
            Negotiated::Explicit(f) => format!("explicit:{}", f.extension()),
            Negotiated::Accepted(f) => format!("accepted:{}", f.extension()),
            Negotiated::Fallback => "fallback".into(),
        }
    }
}

pub fn negotiate(explicit: Option<Format>, accept: Option<&str>, auto: &[Format]) -> Negotiated {
    if let Some(f) = explicit {
        return Negotiated::Explicit(f);
    }
    let accept = accept.unwrap_or("");
    for f in auto {
        match f {
            // Every client takes these: the list stops here.
            Format::Jpeg | Format::Png | Format::Gif => break,
            Format::Webp if accepts(accept, f.mime()) => return Negotiated::Accepted(*f),
            Format::Webp => {}
        }
    }
    Negotiated::Fallback
}

/// Whether `Accept` names `mime` with a non-zero q. Wildcards do not count:
/// old browsers send `*/*` and cannot decode WebP.
fn accepts(accept: &str, mime: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(mime) {
            return false;
        }
        parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .all(|q| q.trim().parse::<f32>().map_or(true, |q| q > 0.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Format::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

    #[test]
    fn explicit_wins() {
        assert_eq!(
            negotiate(Some(Png), Some(CHROME), &[Webp]),
            Negotiated::Explicit(Png)
        );
    }

    #[test]
    fn accept_picks_the_first_enabled_auto_format() {
        assert_eq!(
            negotiate(None, Some(CHROME), &[Webp, Jpeg]),
            Negotiated::Accepted(Webp)
        );
        assert_eq!(
            negotiate(None, Some("image/*,*/*"), &[Webp]),
            Negotiated::Fallback
        );
        assert_eq!(
            negotiate(None, Some("image/webp;q=0"), &[Webp]),
            Negotiated::Fallback
        );
        assert_eq!(
            negotiate(None, Some("IMAGE/WEBP ; q=0.5"), &[Webp]),
            Negotiated::Accepted(Webp)
        );
        assert_eq!(negotiate(None, None, &[Webp]), Negotiated::Fallback);
        // Disabled by configuration.
        assert_eq!(negotiate(None, Some(CHROME), &[Jpeg]), Negotiated::Fallback);
        assert_eq!(
            negotiate(None, Some(CHROME), &[Jpeg, Webp]),
            Negotiated::Fallback
        );
    }

    #[test]
    fn animated_sources_keep_motion_where_the_format_allows() {
        assert_eq!(Negotiated::Explicit(Jpeg).animated(), None);
        assert_eq!(Negotiated::Explicit(Png).animated(), None);
        assert_eq!(Negotiated::Explicit(Gif).animated(), Some(Gif));
        assert_eq!(Negotiated::Explicit(Webp).animated(), Some(Webp));
        assert_eq!(Negotiated::Accepted(Webp).animated(), Some(Webp));
        assert_eq!(Negotiated::Fallback.animated(), Some(Gif));
    }

    #[test]
    fn fallback_keeps_alpha() {
        assert_eq!(Negotiated::Fallback.resolve(true), Png);
        assert_eq!(Negotiated::Fallback.resolve(false), Jpeg);
        assert_eq!(Negotiated::Accepted(Webp).resolve(true), Webp);
    }
}
