//! Staying up when upstreams fail or traffic floods: a circuit breaker per
//! upstream host ([`breaker`]) and the bounds that shed load with 503 and
//! `Retry-After` ([`shedding`]).

pub mod breaker;
pub mod shedding;
