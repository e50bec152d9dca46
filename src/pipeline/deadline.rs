//! The transform's time limit (`EDGETHUMB_TRANSFORM_TIMEOUT_MS`), checked
//! between the pipeline's stages and inside the decoders we own (per JPEG
//! scan and MCU row, per PNG row), so a source that costs more than its
//! size suggests stops instead of holding a CPU slot.
//!
//! On Workers the clock stands still while code runs (it moves only at
//! I/O), so this never fires there; the structure checks
//! ([`super::preflight`]) and Cloudflare's own CPU limit bound it instead.

use std::time::Duration;

use crate::error::Error;

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    clock: fn() -> f64,
    /// Milliseconds on `clock`'s scale.
    at: f64,
    limit_ms: u64,
}

impl Deadline {
    /// `limit` from now, on `clock` (milliseconds from any fixed point).
    pub fn after(clock: fn() -> f64, limit: Duration) -> Deadline {
        let limit_ms = limit.as_millis().min(u64::MAX as u128) as u64;
        Deadline {
            clock,
            at: clock() + limit_ms as f64,
            limit_ms,
        }
    }

    /// A deadline that never passes (tests, fuzzing, benchmarks).
    pub fn none() -> Deadline {
        Deadline {
            clock: || 0.0,
            at: f64::INFINITY,
            limit_ms: u64::MAX,
        }
    }

    /// Whether the deadline has passed.
    #[inline]
    pub fn passed(&self) -> bool {
        (self.clock)() > self.at
    }

    /// `Err` once the deadline has passed.
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        if self.passed() {
            return Err(self.error());
        }
        Ok(())
    }

    /// The error a stage stopped by this deadline answers with.
    pub fn error(&self) -> Error {
        Error::TransformTimeout(self.limit_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_only_after_its_limit() {
        assert!(Deadline::none().check().is_ok());
        assert!(Deadline::after(|| 5.0, Duration::from_millis(10))
            .check()
            .is_ok());
        let mut d = Deadline::after(|| 5.0, Duration::from_millis(10));
        d.at = 4.0;
        assert_eq!(d.check(), Err(Error::TransformTimeout(10)));
    }
}
