//! One error type for the whole request path, split by who is at fault.
//!
//! [`Error::status`] is the only place that maps an error to an HTTP status,
//! and [`Error::ttl_class`] the only place that decides how long a failure
//! may be cached (as a failure, never as a success). Depends on nothing
//! else in the crate.

use http::StatusCode;

/// Which configured lifetime a cached failure gets (`cache::Ttls` turns
/// it into seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlClass {
    /// The same URL or bytes fail the same way: `EDGETHUMB_NOT_FOUND_TTL`.
    NotFound,
    /// Transient trouble: `EDGETHUMB_UPSTREAM_ERROR_TTL`, and never more
    /// than `cap` seconds when given.
    UpstreamError { cap: Option<u32> },
}

/// Who caused a failure. Decides the status family, the cache policy and the
/// CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The URL or request is wrong: bad grammar, signature, policy.
    Request,
    /// The upstream server misbehaved: status, timeout, reset.
    Upstream,
    /// The source bytes are bad: not an image, too big, corrupt.
    Source,
    /// Our own bug or resource failure.
    Server,
}

/// Every way a thumbnail request can fail. The `Display` text is the public
/// one-line reason sent in the response body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("bad URL: {0}")]
    BadUrl(String),
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    #[error("bad argument for option `{option}`: {reason}")]
    BadOption { option: String, reason: String },
    #[error("invalid signature")]
    BadSignature,
    #[error("unsigned URLs are not allowed")]
    Unsigned,
    #[error("source not allowed: {0}")]
    SourceForbidden(String),
    #[error("URL expired")]
    Expired,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("not found")]
    RouteNotFound,

    #[error("upstream answered {0}")]
    UpstreamNotFound(u16),
    #[error("upstream answered {0}")]
    UpstreamStatus(u16),
    #[error("upstream failed: {0}")]
    UpstreamFailed(String),
    /// A transport failure. Its text (a resolver's or socket's message,
    /// which may name internal hosts) is for the log, never the body.
    #[error("upstream failed: could not connect or read")]
    UpstreamUnreachable(String),
    #[error("upstream timed out after {0} ms")]
    UpstreamTimeout(u64),
    #[error("too many redirects (limit {0})")]
    TooManyRedirects(u8),
    #[error("upstream {host} is failing; not asked again for {retry_in} s")]
    CircuitOpen { host: String, retry_in: u32 },

    #[error("source is larger than the limit of {0} bytes")]
    SourceTooLarge(u64),
    #[error("source is {width}x{height} pixels, over the limit of {limit}")]
    TooManyPixels { width: u64, height: u64, limit: u64 },
    #[error("source would need about {} MiB to transform, over the limit of {} MiB", .need >> 20, .limit >> 20)]
    OverMemoryBudget { need: u64, limit: u64 },
    #[error("over a decoding limit: {0}")]
    OverLimit(String),
    #[error("not an image")]
    NotAnImage,
    #[error("unsupported source format: {0}")]
    UnsupportedFormat(String),
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The transform ran past `EDGETHUMB_TRANSFORM_TIMEOUT_MS`.
    #[error("source took over {0} ms to transform")]
    TransformTimeout(u64),

    /// Shed load: come back after `retry_after` seconds.
    #[error("server busy: {what}; retry in {retry_after} s")]
    Overloaded {
        what: &'static str,
        retry_after: u32,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn bad_option(option: &str, reason: impl Into<String>) -> Self {
        Error::BadOption {
            option: option.to_string(),
            reason: reason.into(),
        }
    }

    pub fn fault(&self) -> Fault {
        use Error::*;
        match self {
            BadUrl(_)
            | UnknownOption(_)
            | BadOption { .. }
            | BadSignature
            | Unsigned
            | SourceForbidden(_)
            | Expired
            | MethodNotAllowed
            | RouteNotFound => Fault::Request,
            UpstreamNotFound(_)
            | UpstreamStatus(_)
            | UpstreamFailed(_)
            | UpstreamUnreachable(_)
            | UpstreamTimeout(_)
            | TooManyRedirects(_)
            | CircuitOpen { .. } => Fault::Upstream,
            SourceTooLarge(_)
            | TooManyPixels { .. }
            | OverMemoryBudget { .. }
            | OverLimit(_)
            | NotAnImage
            | UnsupportedFormat(_)
            | Decode(_)
            | TransformTimeout(_) => Fault::Source,
            Overloaded { .. } | Internal(_) => Fault::Server,
        }
    }

    /// A stable name for the log and the metrics' labels: a fixed set,
    /// whatever the input.
    pub fn kind(&self) -> &'static str {
        use Error::*;
        match self {
            BadUrl(_) => "bad_url",
            UnknownOption(_) => "unknown_option",
            BadOption { .. } => "bad_option",
            BadSignature => "bad_signature",
            Unsigned => "unsigned",
            SourceForbidden(_) => "source_forbidden",
            Expired => "expired",
            MethodNotAllowed => "method_not_allowed",
            RouteNotFound => "route_not_found",
            UpstreamNotFound(_) => "upstream_not_found",
            UpstreamStatus(_) => "upstream_status",
            UpstreamFailed(_) => "upstream_failed",
            UpstreamUnreachable(_) => "upstream_unreachable",
            UpstreamTimeout(_) => "upstream_timeout",
            TooManyRedirects(_) => "too_many_redirects",
            CircuitOpen { .. } => "circuit_open",
            SourceTooLarge(_) => "source_too_large",
            TooManyPixels { .. } => "too_many_pixels",
            OverMemoryBudget { .. } => "over_memory_budget",
            OverLimit(_) => "over_limit",
            NotAnImage => "not_an_image",
            UnsupportedFormat(_) => "unsupported_format",
            Decode(_) => "decode",
            TransformTimeout(_) => "transform_timeout",
            Overloaded { .. } => "overloaded",
            Internal(_) => "internal",
        }
    }

    /// Why load was shed, for a shed request.
    pub fn shed_reason(&self) -> Option<&'static str> {
        match self {
            Error::Overloaded { what, .. } => Some(what),
            _ => None,
        }
    }

    /// The HTTP status for this error (DESIGN.md, "Failures").
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            BadUrl(_) | UnknownOption(_) | BadOption { .. } => StatusCode::BAD_REQUEST,
            BadSignature | Unsigned | SourceForbidden(_) => StatusCode::FORBIDDEN,
            // imgproxy answers expired URLs with 404.
            Expired | RouteNotFound | UpstreamNotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            UpstreamStatus(_)
            | UpstreamFailed(_)
            | UpstreamUnreachable(_)
            | TooManyRedirects(_)
            | CircuitOpen { .. } => StatusCode::BAD_GATEWAY,
            UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            SourceTooLarge(_)
            | TooManyPixels { .. }
            | OverMemoryBudget { .. }
            | OverLimit(_)
            | TransformTimeout(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotAnImage | UnsupportedFormat(_) | Decode(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// [`Error::status`], with upstream failures (all but a missing
    /// original) answered with `upstream_failure` when one is configured.
    pub fn status_with(&self, upstream_failure: Option<StatusCode>) -> StatusCode {
        match upstream_failure {
            Some(s)
                if self.fault() == Fault::Upstream
                    && !matches!(self, Error::UpstreamNotFound(_)) =>
            {
                s
            }
            _ => self.status(),
        }
    }

    /// Which configured lifetime this failure may be cached for; `None`
    /// means never. Request errors are not cached: they cost nothing to
    /// recompute and depend on the clock (expiry) or configuration (keys).
    pub fn ttl_class(&self) -> Option<TtlClass> {
        match self.fault() {
            Fault::Request | Fault::Server => None,
            Fault::Upstream => match self {
                Error::UpstreamNotFound(_) => Some(TtlClass::NotFound),
                // Not past the moment the host may be asked again.
                Error::CircuitOpen { retry_in, .. } => Some(TtlClass::UpstreamError {
                    cap: Some(*retry_in),
                }),
                _ => Some(TtlClass::UpstreamError { cap: None }),
            },
            // Time depends on the machine's load too: cached briefly.
            Fault::Source if matches!(self, Error::TransformTimeout(_)) => {
                Some(TtlClass::UpstreamError { cap: None })
            }
            // The same bytes fail the same way: cache as long as a 404.
            Fault::Source => Some(TtlClass::NotFound),
        }
    }

    /// Seconds for `Retry-After`: when a shed request may come back, or
    /// when an open breaker will ask its host again.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::Overloaded { retry_after, .. } => Some(*retry_after),
            Error::CircuitOpen { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// What the operator's log gets beyond the public line, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::UpstreamUnreachable(d) => Some(d),
            _ => None,
        }
    }

    /// The one-line public reason, with no line breaks from upstream text.
    pub fn public_line(&self) -> String {
        // Cut by characters: the text may quote non-ASCII input.
        self.to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(300)
            .collect()
    }
}

/// A configuration problem. Always names the variable at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `url` fuzz target: a reason quoting a multi-byte
    /// character across the 300th byte made `truncate` panic.
    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        for pad in 0..4 {
            let text = format!("{}{}", "a".repeat(pad), "չ".repeat(400));
            let line = Error::UnknownOption(text).public_line();
            assert_eq!(line.chars().count(), 300);
        }
        let e = Error::BadUrl("bad\nline\r".into());
        assert_eq!(e.public_line(), "bad URL: bad line ");
    }
}
