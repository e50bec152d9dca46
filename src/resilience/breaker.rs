//! A circuit breaker per upstream host: after `failures` failures in a row
//! from one host (5xx, 429, timeouts, resets), requests for it fail fast
//! for `cooldown`, then one probe request is let through (half-open). A
//! probe that succeeds closes the circuit; one that fails opens it again.
//!
//! State lives in the [`Service`](crate::Service), so it is per process
//! (native), per isolate (Workers) or per instance (Spin).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use crate::error::Error;

/// Hosts tracked at once; past it, new failing hosts are not tracked
/// (fail open) so a flood of distinct hosts cannot grow memory.
const MAX_HOSTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open a host's circuit; 0 disables.
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct HostState {
    failures: u32,
    /// Monotonic ms until which requests fail fast.
    open_until: Option<f64>,
    /// A half-open probe is in flight.
    probing: bool,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    hosts: RefCell<HashMap<String, HostState>>,
}

/// Permission to ask one host. Report the outcome with [`Ticket::record`];
/// dropped without it (the request went away), a probe is released.
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    host: Option<String>,
    probe: bool,
}

/// Whether an upstream outcome says the host is unwell. A 404, a redirect
/// loop or bad bytes come from a host that answers: they do not count.
pub fn counts_as_failure(result: &Result<impl Sized, Error>) -> bool {
    matches!(
        result,
        Err(Error::UpstreamFailed(_) | Error::UpstreamUnreachable(_) | Error::UpstreamTimeout(_))
    ) || matches!(result, Err(Error::UpstreamStatus(s)) if *s >= 500 || *s == 429)
}

/// The breaker's key for a source: scheme, host and port.
pub fn host_key(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            hosts: RefCell::new(HashMap::new()),
        }
    }

    /// Lets a request ask `host`, or fails it fast while the host's circuit
    /// is open (or its half-open probe is in flight).
    pub fn admit(&self, host: &str, now_ms: f64) -> Result<Ticket<'_>, Error> {
        if self.config.failures == 0 {
            return Ok(self.ticket(None, false));
        }
        let mut hosts = self.hosts.borrow_mut();
        let Some(state) = hosts.get_mut(host) else {
            return Ok(self.ticket(Some(host), false));
        };
        match state.open_until {
            None => Ok(self.ticket(Some(host), false)),
            Some(until) if now_ms < until => Err(open_error(host, until - now_ms)),
            // Cool-down over, another request is probing: wait for it.
            Some(_) if state.probing => Err(open_error(host, 1000.0)),
            Some(_) => {
                state.probing = true;
                Ok(self.ticket(Some(host), true))
            }
        }
    }

    fn ticket(&self, host: Option<&str>, probe: bool) -> Ticket<'_> {
        Ticket {
            breaker: self,
            host: host.map(str::to_string),
            probe,
        }
    }

    /// Every host whose circuit is not closed now: `open` (failing fast)
    /// or `half_open` (its cool-down over, a probe may ask it), for metrics.
    pub fn not_closed(&self, now_ms: f64) -> Vec<(String, &'static str)> {
        self.hosts
            .borrow()
            .iter()
            .filter_map(|(host, s)| {
                let until = s.open_until?;
                let state = if now_ms < until { "open" } else { "half_open" };
                Some((host.clone(), state))
            })
            .collect()
    }

    /// Whether `host`'s circuit is open now (for tests and metrics).
    pub fn is_open(&self, host: &str, now_ms: f64) -> bool {
        self.hosts
            .borrow()
            .get(host)
            .and_then(|s| s.open_until)
            .is_some_and(|until| now_ms < until)
    }
}

fn open_error(host: &str, remaining_ms: f64) -> Error {
    Error::CircuitOpen {
        host: host.to_string(),
        retry_in: (remaining_ms / 1000.0).ceil().max(1.0) as u32,
    }
}

impl Ticket<'_> {
    /// Reports whether asking the host failed (see [`counts_as_failure`]).
    pub fn record(mut self, failed: bool, now_ms: f64) {
        let Some(host) = self.host.take() else {
            return;
        };
        let b = self.breaker;
        let mut hosts = b.hosts.borrow_mut();
        if !failed {
            hosts.remove(&host);
            return;
        }
        if !hosts.contains_key(&host) && hosts.len() >= MAX_HOSTS {
            return;
        }
        let state = hosts.entry(host).or_default();
        state.failures = state.failures.saturating_add(1);
        let reopen =
            self.probe || (state.open_until.is_none() && state.failures >= b.config.failures);
        if self.probe {
            state.probing = false;
        }
        if reopen {
            state.open_until = Some(now_ms + b.config.cooldown.as_secs_f64() * 1000.0);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let (true, Some(host)) = (self.probe, self.host.take()) {
            if let Some(state) = self.breaker.hosts.borrow_mut().get_mut(&host) {
                state.probing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "https://a.example:443";

    fn breaker(failures: u32) -> Breaker {
        Breaker::new(BreakerConfig {
            failures,
            cooldown: Duration::from_secs(10),
        })
    }

    fn fail(b: &Breaker, host: &str, now: f64) {
        b.admit(host, now).unwrap().record(true, now);
    }

    #[test]
    fn opens_after_failures_in_a_row_and_only_for_that_host() {
        let b = breaker(3);
        fail(&b, H, 0.0);
        fail(&b, H, 1.0);
        assert!(!b.is_open(H, 2.0));
        fail(&b, H, 2.0);
        assert!(b.is_open(H, 3.0));
        let err = b.admit(H, 3.0).err().unwrap();
        assert!(
            matches!(err, Error::CircuitOpen { retry_in: 10, .. }),
            "{err:?}"
        );
        assert!(b.admit("https://b.example:443", 3.0).is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker(2);
        fail(&b, H, 0.0);
        b.admit(H, 1.0).unwrap().record(false, 1.0);
        fail(&b, H, 2.0);
        assert!(!b.is_open(H, 3.0));
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let b = breaker(1);
        fail(&b, H, 0.0);
        assert!(b.admit(H, 9_999.0).is_err());
        let probe = b.admit(H, 10_000.0).unwrap();
        assert!(b.admit(H, 10_001.0).is_err(), "one probe at a time");
        // The probe fails: open for another cool-down.
        probe.record(true, 10_002.0);
        assert!(b.admit(H, 20_001.0).is_err());
        // The next probe succeeds: closed.
        b.admit(H, 20_002.0).unwrap().record(false, 20_003.0);
        assert!(b.admit(H, 20_004.0).is_ok());
        assert!(b.admit(H, 20_005.0).is_ok());
    }

    #[test]
    fn a_dropped_probe_is_released() {
        let b = breaker(1);
        fail(&b, H, 0.0);
        drop(b.admit(H, 10_000.0).unwrap());
        assert!(b.admit(H, 10_001.0).is_ok());
    }

    #[test]
    fn zero_disables() {
        let b = breaker(0);
        for i in 0..10 {
            fail(&b, H, i as f64);
        }
        assert!(b.admit(H, 11.0).is_ok());
    }

    #[test]
    fn what_counts() {
        let r = |e: Error| counts_as_failure(&Err::<(), _>(e));
        assert!(r(Error::UpstreamStatus(503)));
        assert!(r(Error::UpstreamStatus(429)));
        assert!(r(Error::UpstreamTimeout(1)));
        assert!(r(Error::UpstreamFailed("reset".into())));
        assert!(!r(Error::UpstreamStatus(403)));
        assert!(!r(Error::UpstreamNotFound(404)));
        assert!(!r(Error::NotAnImage));
        assert!(!counts_as_failure(&Ok::<(), Error>(())));
    }

    #[test]
    fn keys_carry_the_port() {
        let u = Url::parse("http://127.0.0.1:8080/a.jpg").unwrap();
        assert_eq!(host_key(&u), "http://127.0.0.1:8080");
        let u = Url::parse("https://a.example/x").unwrap();
        assert_eq!(host_key(&u), H);
    }
}
