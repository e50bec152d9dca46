//! Work that finishes after the response: cache and store writes, queued
//! while a request is answered and handed to `ctx.waitUntil` by the
//! handler, so the response never waits for them.

use std::cell::RefCell;
use std::future::Future;

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;

#[derive(Default)]
pub struct AfterResponse(RefCell<Vec<LocalBoxFuture<'static, ()>>>);

impl AfterResponse {
    pub fn push(&self, work: impl Future<Output = ()> + 'static) {
        self.0.borrow_mut().push(work.boxed_local());
    }

    /// What was queued since the last call.
    pub fn take(&self) -> Vec<LocalBoxFuture<'static, ()>> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}
