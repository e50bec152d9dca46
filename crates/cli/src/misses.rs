//! The miss thread: `serve`'s one owner of every miss.
//!
//! Connections and cache hits run on every I/O thread (`serve`), but a
//! miss is handed here, to the one [`Service`] that fetches and
//! transforms. One owner keeps what must be exact exact, without locks:
//! one fetch and one transform per key (coalescing), the breaker, the
//! source-byte budget and the cap on misses in flight. Transforms still use
//! every core, on the blocking pool; this thread only does the misses'
//! upstream I/O and bookkeeping.

use std::io;
use std::rc::Rc;

use bytes::Bytes;
use edgethumb::service::{error_response, BodyCut, Load, Miss, ResponseBody, Vary};
use edgethumb::Error;
use futures_util::StreamExt as _;
use http::Response;
use tokio::sync::{mpsc, oneshot};

use crate::serve::NativeService;

/// Chunks of a streamed body in flight between the threads: a little
/// ahead of the client, so the client's pace still sets the upstream's.
const STREAM_AHEAD: usize = 4;

enum Job {
    Miss(Box<Miss>, oneshot::Sender<Response<SentBody>>),
    Load(oneshot::Sender<Load>),
}

/// A response body that can cross threads.
enum SentBody {
    Full(Bytes),
    Streamed(mpsc::Receiver<Result<Bytes, BodyCut>>),
}

/// A handle to the miss thread; cheap to clone, one per I/O thread.
#[derive(Clone)]
pub struct Misses {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Misses {
    /// Starts the thread. `service` is built on it (the core's service is
    /// `!Send`, like a Worker's): it must share the I/O threads' cache.
    pub fn start(service: impl FnOnce() -> NativeService + Send + 'static) -> io::Result<Misses> {
        let rt = crate::serve::current_thread()?;
        let (jobs, mut queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("misses".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let service = Rc::new(service());
                    while let Some(job) = queue.recv().await {
                        match job {
                            Job::Load(reply) => {
                                let _ = reply.send(service.load());
                            }
                            Job::Miss(miss, reply) => {
                                tokio::task::spawn_local(answer(service.clone(), *miss, reply));
                            }
                        }
                    }
                });
            })?;
        Ok(Misses { jobs })
    }

    /// Answers `miss` on the miss thread.
    pub async fn answer(&self, miss: Miss) -> Response<ResponseBody> {
        let (reply, answered) = oneshot::channel();
        if self.jobs.send(Job::Miss(Box::new(miss), reply)).is_err() {
            return gone();
        }
        let Ok(resp) = answered.await else {
            return gone();
        };
        resp.map(|body| match body {
            SentBody::Full(bytes) => ResponseBody::Full(bytes),
            SentBody::Streamed(rx) => ResponseBody::Streamed(
                futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|chunk| (chunk, rx))
                })
                .boxed_local(),
            ),
        })
    }

    /// What the miss thread's service holds now, for `/metrics`.
    pub async fn load(&self) -> Option<Load> {
        let (reply, answered) = oneshot::channel();
        self.jobs.send(Job::Load(reply)).ok()?;
        answered.await.ok()
    }
}

/// Runs on the miss thread. The miss runs to its end even when its client
/// has gone (its result is still cached), except a streamed body, which
/// is dropped unread, so its miss is abandoned, as the core does.
async fn answer(
    service: Rc<NativeService>,
    miss: Miss,
    reply: oneshot::Sender<Response<SentBody>>,
) {
    let (parts, body) = service.answer_miss(miss).await.into_parts();
    let body = match body {
        ResponseBody::Full(bytes) => SentBody::Full(bytes),
        ResponseBody::Streamed(mut chunks) => {
            let (tx, rx) = mpsc::channel(STREAM_AHEAD);
            tokio::task::spawn_local(async move {
                while let Some(chunk) = chunks.next().await {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            });
            SentBody::Streamed(rx)
        }
    };
    let _ = reply.send(Response::from_parts(parts, body));
}

/// The miss thread stopped: it never should.
fn gone() -> Response<ResponseBody> {
    let e = Error::Internal("the miss thread stopped".into());
    error_response(&e, None, Vary::default()).map(ResponseBody::Full)
}
