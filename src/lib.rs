//! edgethumb core: signed, imgproxy-compatible thumbnail URLs, answered by
//! one runtime-neutral [`Service`]. The core does no I/O: adapters (the
//! native server, Cloudflare Workers, Spin) supply [`Fetch`], [`Cache`] and
//! [`Runtime`] and convert `http` requests and responses.
//!
//! Where things are, in the order a request meets them:
//! - [`request`]: URL grammar (`request::path`), options and presets
//!   (`request::options`), the signature check (`request::signature`),
//!   allowed upstreams (`request::source_policy`), format negotiation
//!   (`request::negotiate`);
//! - [`service`]: the request path (plan, coalesce, produce, respond);
//! - [`seams`]: what adapters supply (fetch, cache, runtime) and the
//!   policy around it;
//! - [`resilience`]: the breaker and load shedding;
//! - [`pipeline`]: the transform (hostile-input checks before any decoder
//!   in `pipeline::preflight`);
//! - [`error`]: errors and their statuses; [`config`]: loading settings.
//!
//! No `unsafe` here: the codecs that need it (libwebp and its wasm libc)
//! are in `edgethumb-codecs` (`crates/codecs`).
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod pipeline;
pub mod request;
pub mod resilience;
pub mod seams;
pub mod service;

pub use config::Config;
pub use error::{ConfigError, Error, Fault, TtlClass};
pub use seams::cache::tiered::Tiered;
pub use seams::cache::{Cache, CachedResponse, NoCache, Tier};
pub use seams::fetch::{Body, Fetch, FetchError};
pub use seams::runtime::{OffloadError, Runtime};
pub use seams::store::{EntryMeta, NoStore, Store, StoreError, MAX_ENTRY_BYTES};
pub use service::Service;
