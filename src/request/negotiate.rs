//! Output format negotiation. An explicit format wins; otherwise the first
//! `EDGETHUMB_AUTO_FORMATS` entry the `Accept` header names explicitly;
//! otherwise JPEG, or PNG for images with alpha. An animated source
//! processed as one ([`Negotiated::animated`]) follows imgproxy's rules,
//! and an AVIF too large to encode at the edge becomes the next choice
//! ([`Negotiated::without_avif`]).

use crate::request::options::Format;

/// The decision, made before the source is fetched, so it can be part of
/// the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// Set by the URL; the response does not vary by `Accept`.
    Explicit(Format),
    /// `format` was chosen because `Accept` names it; `then` is the next
    /// enabled format it names (WebP after AVIF), for when `format`
    /// cannot be made: an AVIF over `EDGETHUMB_AVIF_MAX_PIXELS`, or an
    /// animation.
    Accepted {
        format: Format,
        then: Option<Format>,
    },
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
            Negotiated::Explicit(f) | Negotiated::Accepted { format: f, .. } => f,
            Negotiated::Fallback if has_alpha => Format::Png,
            Negotiated::Fallback => Format::Jpeg,
        }
    }

    /// The format an animated source keeps its motion in, or `None` when
    /// only its first frame is made, as imgproxy decides: a format set by
    /// the URL is kept, and animates only if it can (WebP, GIF); one chosen
    /// by `Accept` animates if it can, else the next accepted one (AVIF
    /// gives way to WebP); otherwise a GIF source stays GIF, and an
    /// animated WebP for a client that did not ask for WebP becomes GIF
    /// (the first of imgproxy's preferred formats that animates).
    pub fn animated(self) -> Option<Format> {
        match self {
            Negotiated::Explicit(f) => f.animates().then_some(f),
            Negotiated::Accepted { format, then } => [Some(format), then]
                .into_iter()
                .flatten()
                .find(|f| f.animates())
                .or(Some(Format::Gif)),
            Negotiated::Fallback => Some(Format::Gif),
        }
    }

    /// The decision with AVIF replaced, for an output too large to encode
    /// as AVIF at the edge: an explicit AVIF becomes WebP, as Cloudflare's
    /// does (every browser that decodes AVIF decodes WebP); a negotiated
    /// one becomes the next format `Accept` named, or the fallback.
    pub fn without_avif(self) -> Negotiated {
        match self {
            Negotiated::Explicit(Format::Avif) => Negotiated::Explicit(Format::Webp),
            Negotiated::Accepted {
                format: Format::Avif,
                then: Some(f),
            } => Negotiated::Accepted {
                format: f,
                then: None,
            },
            Negotiated::Accepted {
                format: Format::Avif,
                then: None,
            } => Negotiated::Fallback,
            other => other,
        }
    }

    /// A stable token for cache keys.
    pub fn key(self) -> String {
        match self {
            Negotiated::Explicit(f) => format!("explicit:{}", f.extension()),
            Negotiated::Accepted { format, then: None } => {
                format!("accepted:{}", format.extension())
            }
            Negotiated::Accepted {
                format,
                then: Some(then),
            } => format!("accepted:{},{}", format.extension(), then.extension()),
            Negotiated::Fallback => "fallback".into(),
        }
    }
}

pub fn negotiate(explicit: Option<Format>, accept: Option<&str>, auto: &[Format]) -> Negotiated {
    if let Some(f) = explicit {
        return Negotiated::Explicit(f);
    }
    let accept = accept.unwrap_or("");
    let mut chosen = auto
        .iter()
        // Every client takes these: the list stops there.
        .take_while(|f| !matches!(f, Format::Jpeg | Format::Png | Format::Gif))
        .filter(|f| accepts(accept, f.mime()));
    match (chosen.next(), chosen.next()) {
        (Some(&format), then) => Negotiated::Accepted {
            format,
            then: then.copied(),
        },
        (None, _) => Negotiated::Fallback,
    }
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

    fn accepted(format: Format, then: Option<Format>) -> Negotiated {
        Negotiated::Accepted { format, then }
    }

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
            accepted(Webp, None)
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
            accepted(Webp, None)
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
    fn avif_comes_first_when_enabled_and_keeps_the_next_choice() {
        assert_eq!(
            negotiate(None, Some(CHROME), &[Avif, Webp, Jpeg]),
            accepted(Avif, Some(Webp))
        );
        // The configured order rules, not Accept's.
        assert_eq!(
            negotiate(None, Some(CHROME), &[Webp, Avif]),
            accepted(Webp, Some(Avif))
        );
        assert_eq!(
            negotiate(None, Some("image/avif,*/*"), &[Avif, Webp]),
            accepted(Avif, None)
        );
        assert_eq!(
            negotiate(None, Some("image/webp,*/*"), &[Avif, Webp]),
            accepted(Webp, None)
        );
        assert_eq!(
            negotiate(None, Some(CHROME), &[Webp]),
            accepted(Webp, None),
            "AVIF only when enabled"
        );
        // Each outcome has its own cache key.
        let keys: std::collections::HashSet<String> = [
            accepted(Avif, Some(Webp)),
            accepted(Avif, None),
            accepted(Webp, None),
            Negotiated::Explicit(Avif),
            Negotiated::Fallback,
        ]
        .map(Negotiated::key)
        .into();
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn avif_gives_way_to_the_next_choice() {
        assert_eq!(
            Negotiated::Explicit(Avif).without_avif(),
            Negotiated::Explicit(Webp)
        );
        assert_eq!(
            accepted(Avif, Some(Webp)).without_avif(),
            accepted(Webp, None)
        );
        assert_eq!(accepted(Avif, None).without_avif(), Negotiated::Fallback);
        for other in [
            Negotiated::Explicit(Png),
            accepted(Webp, Some(Avif)),
            Negotiated::Fallback,
        ] {
            assert_eq!(other.without_avif(), other);
        }
    }

    #[test]
    fn animated_sources_keep_motion_where_the_format_allows() {
        assert_eq!(Negotiated::Explicit(Jpeg).animated(), None);
        assert_eq!(Negotiated::Explicit(Png).animated(), None);
        assert_eq!(Negotiated::Explicit(Avif).animated(), None);
        assert_eq!(Negotiated::Explicit(Gif).animated(), Some(Gif));
        assert_eq!(Negotiated::Explicit(Webp).animated(), Some(Webp));
        assert_eq!(accepted(Webp, None).animated(), Some(Webp));
        // AVIF chosen by Accept falls back to a format that animates.
        assert_eq!(accepted(Avif, Some(Webp)).animated(), Some(Webp));
        assert_eq!(accepted(Avif, None).animated(), Some(Gif));
        assert_eq!(Negotiated::Fallback.animated(), Some(Gif));
    }

    #[test]
    fn fallback_keeps_alpha() {
        assert_eq!(Negotiated::Fallback.resolve(true), Png);
        assert_eq!(Negotiated::Fallback.resolve(false), Jpeg);
        assert_eq!(accepted(Webp, None).resolve(true), Webp);
    }
}
