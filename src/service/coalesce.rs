//! One miss per cache key in a process or isolate: the first request
//! leads (fetches, transforms, stores), identical ones wait for its result
//! and take over if it goes away.

use std::rc::Rc;

use futures_channel::oneshot;
use futures_util::future::{FutureExt, Shared};

use super::plan::Plan;
use super::produce::{failure, produce, Produced};
use super::{ServerTiming, Service};
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

    /// Registers a miss for `key`: identical requests wait for what the
    /// returned [`Leading`] sends, and take over if it is dropped unsent.
    pub(super) fn register(&self, key: String) -> (Leading<F, C, R>, InFlight) {
        let (tx, rx) = oneshot::channel();
        let done = rx.shared();
        self.inner
            .inflight
            .borrow_mut()
            .insert(key.clone(), done.clone());
        let leading = Leading {
            tx: Some(tx),
            service: self.clone(),
            key,
        };
        (leading, done)
    }

    /// Stores a result unless its TTL is 0 ("do not store", for every
    /// cache: decided here once).
    pub(super) async fn store(&self, key: &str, produced: &Produced) {
        if produced.response.ttl > 0 {
            self.inner.cache.put(key, produced.response.clone()).await;
        }
    }

    /// Does a miss while identical requests in this process or isolate
    /// wait for the result instead of repeating it. Where the runtime can
    /// ([`Runtime::detach`]), the miss runs on after this request goes
    /// away and its result is still cached; otherwise it runs in this
    /// request's own task, so the I/O it starts belongs to this request.
    pub(super) async fn lead(&self, plan: Plan) -> Rc<Produced> {
        let (leading, done) = self.register(plan.key.clone());
        let this = self.clone();
        let work: Detached = Box::pin(async move {
            let produced = Rc::new(produce(&this.inner, plan).await);
            this.store(&leading.key, &produced).await;
            leading.send(produced);
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

/// A miss in the in-flight map. Its entry is removed however it ends,
/// dropped midway included; requests waiting on it then take over.
pub(super) struct Leading<F, C, R> {
    tx: Option<oneshot::Sender<Rc<Produced>>>,
    service: Service<F, C, R>,
    pub key: String,
}

impl<F, C, R> Leading<F, C, R> {
    /// Gives the waiting requests their answer.
    pub fn send(mut self, produced: Rc<Produced>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(produced);
        }
    }
}

impl<F, C, R> Drop for Leading<F, C, R> {
    fn drop(&mut self) {
        self.service.inner.inflight.borrow_mut().remove(&self.key);
    }
}
