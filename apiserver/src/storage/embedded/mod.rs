//! The embedded backend: one `redb` file on local disk.
//!
//! Tables: `kv` (key → create/mod revision and value), `log` (revision →
//! event with the previous value) and `meta` (the format, the revision
//! counter and the compacted revision). Writes go through one writer
//! thread that commits them in groups, each group one transaction and one
//! fsync, and answers a write only once it is durable (see `writer`). Reads
//! are redb read transactions on blocking threads and see committed data
//! only. A damaged file is refused at open (see `open`).

mod codec;
mod open;
mod read;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures::stream::BoxStream;
use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use super::{Event, KeyValue, Range, Result, Storage, StorageError};
use writer::{Counters, Done, Op, Request};

pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const REVISION: &str = "revision";
pub(crate) const COMPACTED: &str = "compacted";
const FORMAT: &str = "format";
const FORMAT_VERSION: u64 = 1;

/// How many live events a slow watcher may fall behind before it re-reads
/// the log (it never loses events, it only pays a read).
const BROADCAST_CAPACITY: usize = 1024;

/// The embedded store. Cheap to clone; clones share one open file.
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Arc<Database>,
    pub(crate) events: broadcast::Sender<Event>,
    writer: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    path: PathBuf,
}

impl Drop for Inner {
    /// Stops the writer (after its batch in hand) and waits for it, so the
    /// file is closed when the last handle is gone and can be opened again.
    fn drop(&mut self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

pub(crate) fn backend<E: Into<redb::Error>>(e: E) -> StorageError {
    StorageError::Backend(e.into().to_string())
}

impl Embedded {
    /// Opens (or creates) the store at `path`. A file that is not a Berth
    /// store, or is truncated or corrupt, is refused with an error naming
    /// the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<Embedded> {
        let db = Arc::new(open::open_or_create(path)?);
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let counters = Arc::new(Counters::default());
        let (writer, thread) = writer::spawn(db.clone(), events.clone(), counters.clone())
            .map_err(|e| StorageError::Backend(format!("starting the store's writer thread: {e}")))?;
        let inner = Inner {
            db,
            events,
            writer: Mutex::new(Some(writer)),
            thread: Mutex::new(Some(thread)),
            counters,
            path: path.to_path_buf(),
        };
        Ok(Embedded { inner: Arc::new(inner) })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many transactions (each one fsync) the writer has committed, and
    /// how many write operations it has answered, since the store was opened.
    pub fn commit_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.inner.counters.commits.load(Relaxed), self.inner.counters.writes.load(Relaxed))
    }

    /// Queues `op` for the writer and waits until it is durable (or refused).
    async fn write(&self, op: Op) -> Result<Done> {
        let (reply, answer) = oneshot::channel();
        let gone = || StorageError::Backend("the store's writer has stopped".into());
        {
            let writer = self.inner.writer.lock().map_err(|_| gone())?;
            writer.as_ref().ok_or_else(gone)?.send(Request { op, reply }).map_err(|_| gone())?;
        }
        answer.await.map_err(|_| gone())?
    }

    async fn put(&self, op: Op) -> Result<KeyValue> {
        match self.write(op).await? {
            Done::Put(kv) => Ok(kv),
            _ => Err(StorageError::Backend("the writer answered a put with another result".into())),
        }
    }
}

/// Runs blocking redb work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Backend(format!("store task failed: {e}")))?
}

impl Storage for Embedded {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.put(Op::Create { key: key.to_string(), value }).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: u64) -> Result<KeyValue> {
        self.put(Op::Update { key: key.to_string(), value, expected }).await
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<(KeyValue, u64)> {
        match self.write(Op::Delete { key: key.to_string(), expected }).await? {
            Done::Deleted(prev, rev) => Ok((prev, rev)),
            _ => Err(StorageError::Backend("the writer answered a delete with another result".into())),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let inner = self.inner.clone();
        let key = key.to_string();
        blocking(move || {
            let txn = inner.db.begin_read().map_err(backend)?;
            let kv = txn.open_table(KV).map_err(backend)?;
            let found = kv.get(key.as_str()).map_err(backend)?;
            found.map(|v| codec::decode_kv(&key, v.value())).transpose()
        })
        .await
    }

    async fn range(&self, prefix: &str, start_after: Option<&str>, revision: u64, limit: usize) -> Result<Range> {
        let inner = self.inner.clone();
        let (prefix, start_after) = (prefix.to_string(), start_after.map(str::to_string));
        blocking(move || read::range(&inner.db, &prefix, start_after.as_deref(), revision, limit)).await
    }

    async fn watch(&self, prefix: &str, after: u64) -> Result<BoxStream<'static, Result<Event>>> {
        watch::start(&self.inner, prefix, after).await
    }

    async fn current_revision(&self) -> Result<u64> {
        let inner = self.inner.clone();
        blocking(move || {
            let txn = inner.db.begin_read().map_err(backend)?;
            read::meta(&txn.open_table(META).map_err(backend)?, REVISION)
        })
        .await
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        self.write(Op::Compact { revision }).await.map(|_| ())
    }
}

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;
