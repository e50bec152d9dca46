//! `Server-Timing` (W3C): what a response's work cost, entry by entry, so
//! every place that adds one writes the same syntax.

use std::fmt::Write as _;

/// The entries of one response's `Server-Timing`, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerTiming(Vec<Entry>);

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: &'static str,
    desc: Option<String>,
    dur: Option<f64>,
}

impl ServerTiming {
    /// A step that took `ms` milliseconds.
    pub fn dur(&mut self, name: &'static str, ms: f64) -> &mut Self {
        self.0.push(Entry {
            name,
            desc: None,
            dur: Some(ms),
        });
        self
    }

    /// A step described by a word (a cache status, a failure).
    pub fn desc(&mut self, name: &'static str, desc: impl Into<String>) -> &mut Self {
        self.0.push(Entry {
            name,
            desc: Some(desc.into()),
            dur: None,
        });
        self
    }

    /// Both.
    pub fn desc_dur(&mut self, name: &'static str, desc: impl Into<String>, ms: f64) -> &mut Self {
        self.0.push(Entry {
            name,
            desc: Some(desc.into()),
            dur: Some(ms),
        });
        self
    }

    /// The time of every entry named `name`, added up; `None` if none has one.
    pub fn total(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| e.dur)
            .reduce(|a, b| a + b)
    }

    /// The header value: `name;desc=d;dur=1.2, …`.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(e.name);
            if let Some(d) = &e.desc {
                let _ = write!(out, ";desc={d}");
            }
            if let Some(ms) = e.dur {
                let _ = write!(out, ";dur={ms:.1}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_order_with_desc_before_dur() {
        let mut t = ServerTiming::default();
        t.dur("fetch", 12.34).desc("cache", "miss");
        assert_eq!(t.header_value(), "fetch;dur=12.3, cache;desc=miss");
        let mut hit = ServerTiming::default();
        hit.desc_dur("cache", "hit", 0.04);
        assert_eq!(hit.header_value(), "cache;desc=hit;dur=0.0");
        assert_eq!(ServerTiming::default().header_value(), "");
        t.dur("fetch", 1.0);
        assert_eq!(t.total("fetch"), Some(13.34));
        assert_eq!(t.total("cache"), None);
    }
}
