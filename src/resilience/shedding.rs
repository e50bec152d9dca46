//! Load shedding inside the core: a budget for the source bytes that misses
//! hold at once (downloading, queued for a transform, transforming). Under a
//! flood of misses it is this, not the number of requests, that would
//! exhaust memory; past it a miss is refused with 503 and `Retry-After`
//! instead of being buffered. Bounding transforms in flight and their queue
//! is the runtime's job (`Runtime::offload`).
//!
//! State lives in the [`Service`](crate::Service): per process (native),
//! per isolate (Workers) or per instance (Spin).

use std::cell::Cell;
use std::rc::Rc;

use crate::error::Error;

/// Seconds a refused request is asked to wait before trying again.
pub const RETRY_AFTER_SECS: u32 = 1;

/// How much the misses in flight may hold at once; past either, 503.
#[derive(Debug, Clone)]
pub struct SheddingLimits {
    /// Source bytes all misses may hold at once ([`SourceBudget`]), so a
    /// flood is refused instead of buffered.
    pub max_source_bytes_in_flight: u64,
    /// Distinct misses being fetched or transformed at once.
    pub max_misses_in_flight: u64,
}

impl Default for SheddingLimits {
    fn default() -> Self {
        SheddingLimits {
            max_source_bytes_in_flight: 256 * 1024 * 1024,
            max_misses_in_flight: 10_000,
        }
    }
}

/// Bytes of source images held by all misses at once.
#[derive(Debug, Clone)]
pub struct SourceBudget {
    limit: u64,
    used: Rc<Cell<u64>>,
}

impl SourceBudget {
    pub fn new(limit: u64) -> Self {
        SourceBudget {
            limit,
            used: Rc::new(Cell::new(0)),
        }
    }

    /// An empty claim on the budget, grown as bytes arrive.
    pub fn claim(&self) -> Claim {
        Claim {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Bytes currently held.
    pub fn used(&self) -> u64 {
        self.used.get()
    }
}

/// One miss's share of the [`SourceBudget`], given back when dropped.
#[derive(Debug)]
pub struct Claim {
    budget: SourceBudget,
    held: u64,
}

impl Claim {
    /// Bytes this claim holds.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Takes `bytes` more, or refuses with [`Error::Overloaded`] if that
    /// would take the budget past its limit. A single source is always
    /// admitted when nothing else is held, so a budget smaller than
    /// `EDGETHUMB_MAX_SRC_BYTES` cannot refuse everything.
    pub fn grow(&mut self, bytes: u64) -> Result<(), Error> {
        let used = self.budget.used.get();
        let alone = used == self.held;
        if !alone && used.saturating_add(bytes) > self.budget.limit {
            return Err(Error::Overloaded {
                what: "too many source bytes in flight",
                retry_after: RETRY_AFTER_SECS,
            });
        }
        self.budget.used.set(used.saturating_add(bytes));
        self.held += bytes;
        Ok(())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let used = self.budget.used.get();
        self.budget.used.set(used.saturating_sub(self.held));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_bounded_and_given_back() {
        let budget = SourceBudget::new(100);
        let mut a = budget.claim();
        a.grow(60).unwrap();
        let mut b = budget.claim();
        b.grow(40).unwrap();
        assert_eq!(budget.used(), 100);
        let mut c = budget.claim();
        assert!(matches!(c.grow(1), Err(Error::Overloaded { .. })));
        drop(a);
        assert_eq!(budget.used(), 40);
        c.grow(60).unwrap();
        drop(b);
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn one_source_alone_always_fits() {
        let budget = SourceBudget::new(10);
        let mut a = budget.claim();
        a.grow(8).unwrap();
        a.grow(50).unwrap();
        assert_eq!(budget.used(), 58);
        let mut b = budget.claim();
        assert!(b.grow(1).is_err());
        drop(a);
        b.grow(1).unwrap();
    }
}
