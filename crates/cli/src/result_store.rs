//! `serve`'s persistent result store (`EDGETHUMB_RESULT_STORE`), behind the
//! in-memory cache: a local directory (`file:///var/cache/edgethumb`) or S3
//! (`s3://bucket/prefix`, with the usual `AWS_*` variables, including
//! `AWS_ENDPOINT` for S3-compatible servers), through `object_store`.
//!
//! - Reads run on the thread that asks; the core bounds them in time and
//!   treats an error as a miss. Errors are logged here, never served.
//! - Writes go through a bounded queue to a writer thread, so no response
//!   waits for one; when the queue is full a write is dropped (and
//!   counted), which only costs a later miss. Puts are atomic (a file is
//!   renamed into place, an S3 object appears whole), so a reader never
//!   sees half an entry; the entry's checksum catches the rest.
//! - Keys are the core's cache keys under `<prefix>/v1/<2 hex>/`, so no
//!   directory holds more than 1/256 of them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use edgethumb::{ConfigError, EntryMeta, Store, StoreError, MAX_ENTRY_BYTES};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::{mpsc, Notify};

/// Writes waiting at once; past this they are dropped.
const QUEUE: usize = 1024;
/// Writes in flight at once.
const CONCURRENT_WRITES: usize = 8;

/// What the store has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub read_hits: AtomicU64,
    pub read_misses: AtomicU64,
    pub read_errors: AtomicU64,
    pub writes: AtomicU64,
    pub write_errors: AtomicU64,
    pub writes_dropped: AtomicU64,
    /// Writes queued or in flight.
    pub writes_pending: AtomicU64,
}

struct Shared {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    describe: String,
    stats: StoreStats,
}

/// A handle on the store: cheap to clone, one per service.
#[derive(Clone)]
pub struct ResultStore {
    shared: Arc<Shared>,
    queue: mpsc::Sender<(Path, Vec<u8>)>,
}

/// The writer thread; [`Writer::finish`] lets queued writes land.
pub struct Writer {
    closing: Arc<Notify>,
    done: std::sync::mpsc::Receiver<()>,
}

/// Where results are stored: `EDGETHUMB_RESULT_STORE` if set (`none` for
/// nowhere); in dev mode, a directory under the user's cache, so a
/// restart keeps results.
pub fn location(dev: bool) -> Option<String> {
    match crate::settings::env("EDGETHUMB_RESULT_STORE") {
        Some(v) if v.trim() == "none" => None,
        Some(v) => Some(v.trim().to_string()),
        None if dev => Some(format!("file://{}", dev_directory().display())),
        None => None,
    }
}

/// `$XDG_CACHE_HOME` (or `~/.cache`, or the temporary directory)
/// `/edgethumb/results-<version>`: a new release starts empty, since its
/// output may differ.
fn dev_directory() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("edgethumb")
        .join(format!("results-{}", env!("CARGO_PKG_VERSION")))
}

impl ResultStore {
    /// Opens the store at `url` and starts its writer thread.
    pub fn open(url: &str) -> Result<(ResultStore, Writer), ConfigError> {
        let bad = |reason: String| ConfigError::new("EDGETHUMB_RESULT_STORE", reason);
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("`{url}`: {e}")))?;
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| bad(format!("`{url}` is not a local path")))?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(format!("{}: {e}", dir.display())))?;
                (Arc::new(fs), Path::from("v1"))
            }
            "s3" => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                let prefix = Path::from(parsed.path().trim_matches('/')).join("v1");
                (Arc::new(s3), prefix)
            }
            other => {
                return Err(bad(format!(
                    "`{other}:` is not a store this build knows (file://, s3://, or none)"
                )))
            }
        };
        let shared = Arc::new(Shared {
            store,
            prefix,
            describe: url.to_string(),
            stats: StoreStats::default(),
        });
        let (queue, writes) = mpsc::channel(QUEUE);
        let closing = Arc::new(Notify::new());
        let (finished, done) = std::sync::mpsc::channel();
        let (writer_shared, writer_closing) = (shared.clone(), closing.clone());
        std::thread::Builder::new()
            .name("edgethumb-store".into())
            .spawn(move || {
                if let Ok(rt) = crate::serve::current_thread() {
                    rt.block_on(write_all(writer_shared, writes, writer_closing));
                }
                let _ = finished.send(());
            })
            .map_err(|e| bad(format!("cannot start its writer thread: {e}")))?;
        Ok((ResultStore { shared, queue }, Writer { closing, done }))
    }

    pub fn stats(&self) -> &StoreStats {
        &self.shared.stats
    }

    pub fn describe(&self) -> &str {
        &self.shared.describe
    }

    fn path(&self, key: &str) -> Path {
        let fan = key.get(..2).unwrap_or("__");
        self.shared.prefix.clone().join(fan).join(key)
    }
}

impl Store for ResultStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let stats = &self.shared.stats;
        let found = match self.shared.store.get(&self.path(key)).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                stats.read_misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            Err(e) => return Err(self.read_error(key, e.to_string())),
        };
        if found.meta.size > MAX_ENTRY_BYTES {
            let size = found.meta.size;
            return Err(self.read_error(key, format!("{size} bytes is not a result")));
        }
        match found.bytes().await {
            Ok(bytes) => {
                stats.read_hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(bytes))
            }
            Err(e) => Err(self.read_error(key, e.to_string())),
        }
    }

    fn put(&self, key: &str, entry: Vec<u8>, _meta: EntryMeta) {
        // The entry's own bytes hold its type, ETag and expiry: object
        // attributes would only repeat them (and a directory has none).
        let stats = &self.shared.stats;
        stats.writes_pending.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send((self.path(key), entry)).is_err() {
            stats.writes_pending.fetch_sub(1, Ordering::Relaxed);
            self.shared
                .stats
                .writes_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key, "result store: write queue full, write dropped");
        }
    }
}

impl ResultStore {
    fn read_error(&self, key: &str, error: String) -> StoreError {
        self.shared
            .stats
            .read_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(key, error = %error, store = %self.shared.describe, "result store read failed; treated as a miss");
        StoreError(error)
    }
}

/// The writer thread's loop: queued writes, a few at once; once closing,
/// what is already queued, then out.
async fn write_all(
    shared: Arc<Shared>,
    mut writes: mpsc::Receiver<(Path, Vec<u8>)>,
    closing: Arc<Notify>,
) {
    let write = |(path, entry): (Path, Vec<u8>)| {
        let shared = shared.clone();
        async move {
            let payload = PutPayload::from(Bytes::from(entry));
            match shared.store.put(&path, payload).await {
                Ok(_) => shared.stats.writes.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "result store write failed");
                    shared.stats.write_errors.fetch_add(1, Ordering::Relaxed)
                }
            };
            shared.stats.writes_pending.fetch_sub(1, Ordering::Relaxed);
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut stop = std::pin::pin!(closing.notified());
    let mut closed = false;
    loop {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            () = &mut stop, if !closed => {
                // Nothing new; what is queued still drains below.
                writes.close();
                closed = true;
            }
            next = writes.recv(), if in_flight.len() < CONCURRENT_WRITES => match next {
                Some(w) => in_flight.push(write(w)),
                None => break,
            },
        }
    }
    while in_flight.next().await.is_some() {}
}

impl Writer {
    /// Stops taking writes and waits up to `grace` for queued ones to
    /// land; says whether they did.
    pub fn finish(self, grace: Duration) -> bool {
        self.closing.notify_one();
        self.done.recv_timeout(grace).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> EntryMeta {
        EntryMeta {
            content_type: None,
            etag: None,
            cache_control: None,
            expires: 0,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_directory_store_keeps_entries_across_handles() {
        let dir = std::env::temp_dir().join(format!("edgethumb-store-{}", std::process::id()));
        let url = format!("file://{}", dir.display());
        let (store, writer) = ResultStore::open(&url).unwrap();
        let key = "ab".repeat(32);
        store.put(&key, b"entry bytes".to_vec(), meta());
        assert!(writer.finish(Duration::from_secs(10)), "writes land");
        assert_eq!(store.stats().writes.load(Ordering::Relaxed), 1);
        assert!(dir.join("v1/ab").join(&key).exists());

        // A new process, as after a restart.
        let (again, _writer) = ResultStore::open(&url).unwrap();
        let rt = rt();
        let got = rt.block_on(again.get(&key)).unwrap();
        assert_eq!(got.as_deref(), Some(&b"entry bytes"[..]));
        assert_eq!(rt.block_on(again.get(&"cd".repeat(32))), Ok(None));
        assert_eq!(again.stats().read_hits.load(Ordering::Relaxed), 1);
        assert_eq!(again.stats().read_misses.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unknown_scheme_names_the_variable() {
        let err = ResultStore::open("ftp://example.com/x").err().unwrap();
        assert_eq!(err.var, "EDGETHUMB_RESULT_STORE");
        assert!(err.reason.contains("ftp"), "{}", err.reason);
    }
}
