//! Clocks and timers from the JS host. std's `Instant` and `SystemTime`
//! panic on wasm32-unknown-unknown.

use std::future::Future;
use std::time::Duration;

use edgethumb::Runtime;

pub struct WorkerRuntime;

/// `Date.now()`. Workers freeze it during CPU work (a Spectre mitigation),
/// so stage timings read 0 until the next I/O; fetch times are real.
fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Runtime for WorkerRuntime {
    const CROSS_REQUEST_WAKEUPS: bool = false;

    fn unix_time(&self) -> u64 {
        (now_ms() / 1000.0) as u64
    }

    fn clock(&self) -> fn() -> f64 {
        now_ms
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        worker::Delay::from(duration)
    }

    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, edgethumb::OffloadError> {
        // One thread per isolate: the transform runs inline.
        Ok(work())
    }
}

/// The module's linear memory in bytes. It never shrinks for the life of
/// the isolate, so this is the high-water mark.
pub fn linear_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
