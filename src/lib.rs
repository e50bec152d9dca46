//! edgethumb core: signed, imgproxy-compatible thumbnail URLs, answered by
//! one runtime-neutral [`Service`]. The core does no I/O: adapters (the
//! native server, Cloudflare Workers, Spin) supply [`Fetch`], [`Cache`] and
//! [`Runtime`] and convert `http` requests and responses.
//!
//! Where things are:
//! - URL grammar: [`path`]; processing options and presets: [`options`];
//! - signature check: [`signature`]; allowed upstreams: [`source_policy`];
//! - format negotiation: [`negotiate`]; cache keys and seam: [`cache`];
//! - fetch limits and redirects: [`fetch`]; failing upstream hosts:
//!   [`breaker`]; the transform: [`pipeline`] (hostile-input checks before
//!   any decoder: `pipeline::preflight`);
//! - the request path: [`service`]; errors and statuses: [`error`].
//!
//! No `unsafe` here: the codecs that need it (libwebp and its wasm libc)
//! are in `edgethumb-codecs` (`crates/codecs`).
#![forbid(unsafe_code)]

pub mod breaker;
pub mod cache;
pub mod config;
pub mod error;
pub mod fetch;
pub mod negotiate;
pub mod options;
pub mod path;
pub mod pipeline;
pub mod runtime;
pub mod service;
pub mod shedding;
pub mod signature;
pub mod source_policy;
pub mod url_builder;

pub use cache::{Cache, CachedResponse, NoCache};
pub use config::Config;
pub use error::{ConfigError, Error, Fault, TtlClass};
pub use fetch::{Body, Fetch, FetchError};
pub use runtime::{OffloadError, Runtime};
pub use service::Service;
