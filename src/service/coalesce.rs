//! One miss per cache key in a process or isolate: the first request
//! leads (fetches, transforms, stores), identical ones wait for its result
//! and take over if it goes away.

use std::rc::Rc;

use futures_channel::oneshot;
use futures_util::future::{FutureExt, Shared};

use super::plan::Plan;
use super::produce::{failure, produce, Produced};
use super::{Inner, ServerTiming, Service};
use crate::error::Error;
use crate::seams::cache::Cache;
use crate::seams::fetch::Fetch;
use crate::seams::runtime::{Detached, Runtime};

/// Resolves when the request doing a miss has its result; `Err` if that
/// request was dropped first (its client went away).
pub(super) type InFlight = Shared<oneshot::Receiver<Rc<Produced>>>;

/// How often a request that joined a miss may find it abandoned and try
/// again (each try either joins another miss or does the work itself).
const JOIN_ATTEMPTS: usize = 3;
/// How often a waiting request checks, where it cannot be woken
/// ([`Runtime::CROSS_REQUEST_WAKEUPS`]).
const JOIN_POLL: std::time::Duration = std::time::Duration::from_millis(10);

impl<F: Fetch, C: Cache, R: Runtime> Service<F, C, R> {
    /// The result of an identical miss in flight, if one finishes; `None`
    /// if there is none, or each one found was abandoned.
    pub(super) async fn join(&self, key: &str) -> Option<Rc<Produced>> {
        for _ in 0..JOIN_ATTEMPTS {
            let waiting = self.inner.inflight.borrow().get(key).cloned()?;
            if let Ok(produced) = self.wait_for(waiting).await {
                return Some(produced);
            }
            // The request doing it went away: look again.
        }
        None
    }

    /// Misses being done now, each holding a client connection, an
    /// upstream one and its state.
    pub(super) fn misses_in_flight(&self) -> usize {
        self.inner.inflight.borrow().len()
    }

    async fn wait_for(&self, waiting: InFlight) -> Result<Rc<Produced>, oneshot::Canceled> {
        if R::CROSS_REQUEST_WAKEUPS {
            return waiting.await;
        }
        loop {
            // Polled without a real waker: only this request's timer wakes it.
            if let Some(result) = waiting.clone().now_or_never() {
                return result;
            }
            self.inner.runtime.sleep(JOIN_POLL).await;
        }
    }

    /// Does a miss while identical requests in this process or isolate
    /// wait for the result instead of repeating it. Where the runtime can
    /// ([`Runtime::detach`]), the miss runs on after this request goes
    /// away and its result is still cached; otherwise it runs in this
    /// request's own task, so the I/O it starts belongs to this request.
    pub(super) async fn lead(&self, plan: Plan) -> Rc<Produced> {
        let (tx, rx) = oneshot::channel();
        let key = plan.key.clone();
        let done = rx.shared();
        self.inner
            .inflight
            .borrow_mut()
            .insert(key.clone(), done.clone());
        let this = self.clone();
        let work: Detached = Box::pin(async move {
            // Removes the entry however this ends, dropped midway included.
            let _entry = InFlightEntry {
                inner: &this.inner,
                key: &key,
            };
            let produced = Rc::new(produce(&this.inner, plan).await);
            // TTL 0 means "do not store", for every cache: decided here once.
            if produced.response.ttl > 0 {
                this.inner.cache.put(&key, produced.response.clone()).await;
            }
            let _ = tx.send(produced);
        });
        if let Err(work) = self.inner.runtime.detach(work) {
            work.await;
        }
        match done.await {
            Ok(produced) => produced,
            // The detached work was lost (a panic): answered, not cached.
            Err(_) => Rc::new(failure(
                Error::Internal("the miss was lost".into()),
                &self.inner.config,
                super::Vary::default(),
                ServerTiming::default(),
            )),
        }
    }
}

struct InFlightEntry<'a, F, C, R> {
    inner: &'a Inner<F, C, R>,
    key: &'a str,
}

impl<F, C, R> Drop for InFlightEntry<'_, F, C, R> {
    fn drop(&mut self) {
        self.inner.inflight.borrow_mut().remove(self.key);
    }
}
