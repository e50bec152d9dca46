//! What each runtime supplies, and the core's policy around it: one
//! upstream GET ([`fetch`], whose redirects, limits and deadline the core
//! owns), the result cache ([`cache`]: keys, TTLs, the stored-entry
//! formats, the tiers), the persistent result store behind it
//! ([`store`]) and clocks, timers and CPU offload ([`runtime`]).

pub mod cache;
pub mod fetch;
pub mod runtime;
pub mod store;
