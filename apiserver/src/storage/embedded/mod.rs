//! The embedded backend: one `redb` file on local disk.
//!
//! Tables: `kv` (key → create/mod revision and value), `log` (revision →
//! event with the previous value) and `meta` (the revision counter and the
//! compacted revision). Every write is one redb transaction committed with
//! immediate durability (fsync) before the call returns; writes are
//! serialised by one lock held through commit *and* broadcast, so live
//! watchers see events in revision order.

mod codec;
mod read;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::broadcast;

use super::{Event, KeyValue, Range, Result, Storage, StorageError};

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
    pub(crate) db: Database,
    write_lock: Mutex<()>,
    pub(crate) events: broadcast::Sender<Event>,
    path: PathBuf,
}

pub(crate) fn backend<E: Into<redb::Error>>(e: E) -> StorageError {
    StorageError::Backend(e.into().to_string())
}

impl Embedded {
    /// Opens (or creates) the store at `path`. A file that is not a Berth
    /// store, or is corrupt, is refused with an error naming the file.
    pub fn open(path: &Path) -> Result<Embedded> {
        let fail =
            |what: String| StorageError::Backend(format!("cannot open the embedded store {}: {what}", path.display()));
        let db = Database::create(path).map_err(|e| fail(redb::Error::from(e).to_string()))?;
        let txn = db.begin_write().map_err(|e| fail(redb::Error::from(e).to_string()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(redb::Error::from(e).to_string()))?;
            let format = meta.get(FORMAT).map_err(|e| fail(e.to_string()))?.map(|v| v.value());
            match format {
                Some(FORMAT_VERSION) => {}
                Some(other) => return Err(fail(format!("unsupported format version {other}"))),
                None => {
                    meta.insert(FORMAT, FORMAT_VERSION).map_err(|e| fail(e.to_string()))?;
                }
            }
            txn.open_table(KV).map_err(|e| fail(redb::Error::from(e).to_string()))?;
            txn.open_table(LOG).map_err(|e| fail(redb::Error::from(e).to_string()))?;
        }
        txn.commit().map_err(|e| fail(redb::Error::from(e).to_string()))?;
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let inner = Inner { db, write_lock: Mutex::new(()), events, path: path.to_path_buf() };
        Ok(Embedded { inner: Arc::new(inner) })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs one write transaction on a blocking thread. `f` gets the
    /// transaction and the revision this write will have; it returns the
    /// result and the event to log, or an error to abort.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, u64) -> Result<(T, Option<Event>)> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || {
            let _serial = inner.write_lock.lock().map_err(|_| StorageError::Backend("write lock poisoned".into()))?;
            let mut txn = inner.db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(|e| StorageError::Backend(e.to_string()))?;
            let current = read::meta(&txn.open_table(META).map_err(backend)?, REVISION)?;
            let next = current + 1;
            let (out, event) = f(&txn, next)?;
            if let Some(ev) = &event {
                txn.open_table(LOG)
                    .map_err(backend)?
                    .insert(next, codec::encode_event(ev).as_slice())
                    .map_err(backend)?;
                txn.open_table(META).map_err(backend)?.insert(REVISION, next).map_err(backend)?;
            }
            txn.commit().map_err(backend)?;
            if let Some(ev) = event {
                // No receivers is fine: nobody is watching.
                let _ = inner.events.send(ev);
            }
            Ok(out)
        })
        .await
    }

    fn put(txn: &WriteTransaction, key: &str, create: u64, rev: u64, value: &[u8]) -> Result<KeyValue> {
        let mut kv = txn.open_table(KV).map_err(backend)?;
        kv.insert(key, codec::encode_kv(create, rev, value).as_slice()).map_err(backend)?;
        Ok(KeyValue {
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            create_revision: create,
            mod_revision: rev,
        })
    }
}

fn current(txn: &WriteTransaction, key: &str) -> Result<Option<KeyValue>> {
    let kv = txn.open_table(KV).map_err(backend)?;
    let found = kv.get(key).map_err(backend)?;
    found.map(|v| codec::decode_kv(key, v.value())).transpose()
}

/// Runs blocking redb work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Backend(format!("store task failed: {e}")))?
}

impl Storage for Embedded {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let key = key.to_string();
        self.write(move |txn, rev| {
            if current(txn, &key)?.is_some() {
                return Err(StorageError::AlreadyExists(key));
            }
            let kv = Self::put(txn, &key, rev, rev, &value)?;
            Ok((kv.clone(), Some(Event::Put { kv, prev: None })))
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: u64) -> Result<KeyValue> {
        let key = key.to_string();
        self.write(move |txn, rev| {
            let prev = current(txn, &key)?.ok_or_else(|| StorageError::NotFound(key.clone()))?;
            if prev.mod_revision != expected {
                return Err(StorageError::Conflict { key, current: prev.mod_revision });
            }
            let kv = Self::put(txn, &key, prev.create_revision, rev, &value)?;
            Ok((kv.clone(), Some(Event::Put { kv, prev: Some(prev) })))
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<(KeyValue, u64)> {
        let key = key.to_string();
        self.write(move |txn, rev| {
            let prev = current(txn, &key)?.ok_or_else(|| StorageError::NotFound(key.clone()))?;
            if expected.is_some_and(|e| e != prev.mod_revision) {
                return Err(StorageError::Conflict { key, current: prev.mod_revision });
            }
            txn.open_table(KV).map_err(backend)?.remove(key.as_str()).map_err(backend)?;
            Ok(((prev.clone(), rev), Some(Event::Delete { prev, revision: rev })))
        })
        .await
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
        let inner = self.inner.clone();
        blocking(move || {
            let _serial = inner.write_lock.lock().map_err(|_| StorageError::Backend("write lock poisoned".into()))?;
            let txn = inner.db.begin_write().map_err(backend)?;
            {
                let mut meta = txn.open_table(META).map_err(backend)?;
                let current = read::meta(&meta, REVISION)?;
                if revision > current {
                    return Err(StorageError::FutureRevision(revision));
                }
                if revision <= read::meta(&meta, COMPACTED)? {
                    return Ok(());
                }
                meta.insert(COMPACTED, revision).map_err(backend)?;
                txn.open_table(LOG).map_err(backend)?.retain_in(..=revision, |_, _| false).map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
