//! Runs the pipeline's named steps: times each one and checks the deadline
//! before each step after the first, so work past the limit stops between
//! steps even where a decoder cannot be interrupted.

use super::deadline::Deadline;
use super::Timings;
use crate::error::Error;

pub(super) struct Steps<'a> {
    clock: fn() -> f64,
    deadline: &'a Deadline,
    timings: Timings,
}

impl<'a> Steps<'a> {
    pub fn new(clock: fn() -> f64, deadline: &'a Deadline) -> Self {
        Steps {
            clock,
            deadline,
            timings: Vec::with_capacity(4),
        }
    }

    /// Runs `step` as `name`. A finished result is never thrown away for
    /// time: the deadline is checked before a step, not after the last.
    pub fn run<T>(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        if !self.timings.is_empty() {
            self.deadline.check()?;
        }
        let started = (self.clock)();
        let out = step()?;
        self.timings.push((name, (self.clock)() - started));
        Ok(out)
    }

    pub fn into_timings(self) -> Timings {
        self.timings
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;

    thread_local! {
        static NOW: Cell<f64> = const { Cell::new(0.0) };
    }

    fn clock() -> f64 {
        NOW.with(Cell::get)
    }

    fn advance(ms: f64) {
        NOW.with(|n| n.set(n.get() + ms));
    }

    #[test]
    fn each_step_is_timed_and_the_deadline_is_checked_between_steps() {
        let deadline = Deadline::after(clock, Duration::from_millis(100));
        let mut steps = Steps::new(clock, &deadline);
        let a = steps.run("first", || {
            advance(60.0);
            Ok(1)
        });
        assert_eq!(a.unwrap(), 1);
        // Past the deadline inside the step: that step's result is kept.
        let b = steps.run("second", || {
            advance(60.0);
            Ok(2)
        });
        assert_eq!(b.unwrap(), 2);
        let ran = Cell::new(false);
        let c = steps.run("third", || {
            ran.set(true);
            Ok(3)
        });
        assert!(matches!(c, Err(Error::TransformTimeout(100))));
        assert!(!ran.get(), "no step starts past the deadline");
        assert_eq!(
            steps.into_timings(),
            vec![("first", 60.0), ("second", 60.0)]
        );
    }
}
