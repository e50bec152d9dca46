//! The request, read and checked before any I/O: the URL grammar
//! ([`path`]), processing options and presets ([`options`]), the HMAC
//! ([`signature`]), allowed upstreams ([`source_policy`]) and the output
//! format for the client's `Accept` ([`negotiate`]), and the client hints
//! that default `dpr` and `width` ([`client_hints`]). [`url_builder`] is the
//! other side: it signs URLs for the CLI and for clients.

pub mod client_hints;
pub mod negotiate;
pub mod options;
pub mod path;
pub mod signature;
pub mod source_policy;
pub mod url_builder;
