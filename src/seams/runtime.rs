//! What the core needs from the platform besides fetch and cache: clocks,
//! timers and a place for CPU work. No `Send` bounds: Worker values are
//! `!Send`, and the core never moves its own futures between threads.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A miss's work, handed to [`Runtime::detach`].
pub type Detached = Pin<Box<dyn Future<Output = ()>>>;

pub trait Runtime: 'static {
    /// Whether one request's task may be woken by work another request
    /// drives. Not on Workers: each request has its own I/O context, and a
    /// request woken from another's would do its I/O in the wrong one (an
    /// error). There, a request waiting for another's miss checks on its
    /// own timer instead.
    const CROSS_REQUEST_WAKEUPS: bool = true;

    /// Seconds since the Unix epoch (for `expires`).
    fn unix_time(&self) -> u64;

    /// A monotonic clock in milliseconds, as a plain function so the
    /// transform can time itself on any thread.
    fn clock(&self) -> fn() -> f64;

    /// Resolves after `duration` (upstream timeouts).
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;

    /// Runs CPU-bound work. A native server moves it off the I/O thread,
    /// with a bounded number at once and a bounded queue; an edge isolate
    /// runs it inline.
    fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, OffloadError>>;

    /// Runs a miss (fetch, transform, cache write) to the end even if the
    /// request that started it goes away, so a client that hangs up does
    /// not throw the work away to be done again. A native server spawns it
    /// on its I/O thread. By default the work is handed back, and the
    /// request runs it in its own task: a Worker's I/O belongs to the
    /// request that started it.
    fn detach(&self, work: Detached) -> Result<(), Detached> {
        Err(work)
    }
}

/// Why offloaded work did not run to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffloadError {
    /// Shed: too many transforms waiting, or waiting too long. The caller
    /// answers 503 with `Retry-After`.
    Busy {
        reason: &'static str,
        retry_after: u32,
    },
    /// The worker thread went away (a panic in the transform).
    Lost,
}

/// Unix time from `std`, for runtimes where std's clock works (native,
/// WASI); not on `wasm32-unknown-unknown`, where it panics.
pub fn std_unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds on std's monotonic clock since first use, for the same
/// runtimes as [`std_unix_time`]; usable as [`Runtime::clock`].
pub fn std_monotonic_ms() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
        * 1000.0
}
