//! Client hints (`EDGETHUMB_ENABLE_CLIENT_HINTS`): the browser's device
//! pixel ratio and the image's layout width give the defaults for `dpr`
//! and `width`, read as imgproxy reads them. They only change options, so
//! the options' identity carries them into the cache key.

use std::str::FromStr;

use http::HeaderMap;

/// imgproxy ignores a DPR hint above this.
const MAX_DPR: f64 = 8.0;

/// `Vary` and `Accept-CH` when hints are on: the headers read, each pair
/// in order of preference (the `Sec-CH-` names are the current ones; the
/// bare names are what older Chromium sent).
pub const HEADER_LIST: &str = "Sec-CH-DPR, DPR, Sec-CH-Width, Width";

/// The hints a request carried; `None` where absent or unusable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hints {
    pub dpr: Option<f64>,
    /// In physical pixels, as browsers send it.
    pub width: Option<u32>,
}

impl Hints {
    /// The first usable value of each pair. A bad value is skipped, not
    /// refused: hints are advice from the browser, not part of the URL.
    pub fn read(headers: &HeaderMap) -> Hints {
        Hints {
            dpr: first(headers, ["sec-ch-dpr", "dpr"], |d: &f64| {
                *d > 0.0 && *d <= MAX_DPR
            }),
            width: first(headers, ["sec-ch-width", "width"], |w: &u32| *w > 0),
        }
    }

    /// `(dpr, width)` defaults for the options. The width hint is in
    /// physical pixels and `dpr` multiplies it again later, so it is
    /// divided by the DPR hint first (imgproxy's `Shrink`).
    pub fn defaults(self) -> (Option<f64>, Option<u32>) {
        let dpr = self.dpr.unwrap_or(1.0);
        let width = self
            .width
            .map(|w| (f64::from(w) / dpr).round().max(1.0) as u32);
        (self.dpr, width)
    }
}

/// The first of `names` whose value parses and passes `usable`.
fn first<T: FromStr>(
    headers: &HeaderMap,
    names: [&str; 2],
    usable: impl Fn(&T) -> bool,
) -> Option<T> {
    names
        .iter()
        .filter_map(|n| headers.get(*n)?.to_str().ok()?.trim().parse().ok())
        .find(usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(pairs: &[(&'static str, &str)]) -> Hints {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        Hints::read(&h)
    }

    #[test]
    fn sec_ch_names_win_over_the_old_ones() {
        let h = hints(&[("dpr", "1.5"), ("sec-ch-dpr", "2.5")]);
        assert_eq!(h.dpr, Some(2.5));
        let h = hints(&[("width", "800"), ("sec-ch-width", "1440")]);
        assert_eq!(h.width, Some(1440));
        assert_eq!(hints(&[("dpr", "1.5")]).dpr, Some(1.5));
    }

    #[test]
    fn unusable_values_are_ignored() {
        for bad in ["0", "-1", "8.5", "abc", "NaN", "inf", ""] {
            assert_eq!(hints(&[("sec-ch-dpr", bad)]).dpr, None, "{bad}");
        }
        // A bad Sec-CH value falls back to the old header, as imgproxy.
        assert_eq!(hints(&[("sec-ch-dpr", "9"), ("dpr", "2")]).dpr, Some(2.0));
        for bad in ["0", "-5", "12.5", "x", "99999999999"] {
            assert_eq!(hints(&[("sec-ch-width", bad)]).width, None, "{bad}");
        }
        assert_eq!(hints(&[]), Hints::default());
    }

    #[test]
    fn width_is_in_css_pixels_once_dpr_applies() {
        let h = hints(&[("sec-ch-dpr", "2"), ("sec-ch-width", "801")]);
        assert_eq!(h.defaults(), (Some(2.0), Some(401)));
        assert_eq!(hints(&[("width", "640")]).defaults(), (None, Some(640)));
        let h = hints(&[("sec-ch-dpr", "3"), ("sec-ch-width", "1")]);
        assert_eq!(h.defaults().1, Some(1));
    }
}
