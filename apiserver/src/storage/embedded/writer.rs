//! Group commit: one thread owns every write to the file.
//!
//! Callers queue their operation and wait on a reply. The writer takes
//! whatever has queued up (at least one, at most [`MAX_BATCH`]), applies the
//! operations one after another in a single redb write transaction, commits
//! it with one fsync, publishes the batch's events in revision order, and
//! only then answers the callers — after kine's batching on SQLite and
//! etcd's backend batch. While one batch is being fsynced the next one
//! queues, so the number of fsyncs follows the disk, not the writers.
//!
//! Each operation keeps its own precondition: it is checked against the
//! state the batch has built so far (a batch-mate's write counts), and a
//! failed check fails that operation alone and takes no revision, so the
//! committed revisions stay gap-free. An error of the file itself fails the
//! whole batch and nothing of it is stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, Table};
use tokio::sync::{broadcast, oneshot};

use super::{COMPACTED, KV, LOG, META, REVISION, backend, codec, read};
use crate::storage::{Event, KeyValue, Result, StorageError};

/// The most operations one transaction takes.
const MAX_BATCH: usize = 512;

/// One write, as queued.
pub(crate) enum Op {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, expected: u64 },
    Delete { key: String, expected: Option<u64> },
    Compact { revision: u64 },
}

/// What a successful write returns.
pub(crate) enum Done {
    Put(KeyValue),
    Deleted(KeyValue, u64),
    Compacted,
}

/// Counts of what the writer did, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Transactions committed (one fsync each).
    pub commits: AtomicU64,
    /// Operations answered (accepted or refused).
    pub writes: AtomicU64,
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done>>,
}

/// Starts the writer thread. It ends when every sender is dropped, after
/// the batch in hand is committed and answered.
pub(crate) fn spawn(
    db: Arc<Database>,
    events: broadcast::Sender<Event>,
    counters: Arc<Counters>,
) -> std::io::Result<(mpsc::Sender<Request>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Request>();
    let handle = std::thread::Builder::new().name("berth-store-writer".into()).spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            commit(&db, &events, &counters, batch);
        }
    })?;
    Ok((tx, handle))
}

/// Applies and answers one batch, counting it before anyone is answered.
fn commit(db: &Database, events: &broadcast::Sender<Event>, counters: &Counters, batch: Vec<Request>) {
    let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    counters.writes.fetch_add(ops.len() as u64, Ordering::Relaxed);
    match apply(db, ops) {
        Ok((results, published, committed)) => {
            if committed {
                counters.commits.fetch_add(1, Ordering::Relaxed);
            }
            // Durable now: publish first, so a caller that watches after its
            // write returns never misses its own event.
            for ev in published {
                // No receivers is fine: nobody is watching.
                let _ = events.send(ev);
            }
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "a write batch to the embedded store failed; none of it was stored");
            for reply in replies {
                let _ = reply.send(Err(StorageError::Backend(e.to_string())));
            }
        }
    }
}

struct Tables<'t> {
    kv: Table<'t, &'static str, &'static [u8]>,
    log: Table<'t, u64, &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    /// The last revision written (by this batch or before it).
    revision: u64,
}

/// Each operation's answer, the events to publish, and whether a
/// transaction was committed.
type Applied = (Vec<Result<Done>>, Vec<Event>, bool);

/// Applies `ops` in one transaction; an error fails the whole batch.
fn apply(db: &Database, ops: Vec<Op>) -> Result<Applied> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate).map_err(|e| StorageError::Backend(e.to_string()))?;
    let mut results = Vec::with_capacity(ops.len());
    let mut published = Vec::new();
    let mut changed = false;
    {
        let meta = txn.open_table(META).map_err(backend)?;
        let revision = read::meta(&meta, REVISION)?;
        let mut t = Tables {
            kv: txn.open_table(KV).map_err(backend)?,
            log: txn.open_table(LOG).map_err(backend)?,
            meta,
            revision,
        };
        for op in ops {
            match t.apply_one(op)? {
                Ok((done, event)) => {
                    changed = true;
                    published.extend(event);
                    results.push(Ok(done));
                }
                Err(refused) => results.push(Err(refused)),
            }
        }
        if changed {
            t.meta.insert(REVISION, t.revision).map_err(backend)?;
        }
    }
    if changed {
        txn.commit().map_err(backend)?;
    } else {
        // Every operation was refused: nothing to make durable.
        txn.abort().map_err(backend)?;
    }
    Ok((results, published, changed))
}

impl Tables<'_> {
    fn current(&self, key: &str) -> Result<Option<KeyValue>> {
        let found = self.kv.get(key).map_err(backend)?;
        found.map(|v| codec::decode_kv(key, v.value())).transpose()
    }

    /// The outer `Result` is an error of the file; the inner one is this
    /// operation's refusal (its precondition failed).
    fn apply_one(&mut self, op: Op) -> Result<Result<(Done, Option<Event>)>> {
        match op {
            Op::Create { key, value } => {
                if self.current(&key)?.is_some() {
                    return Ok(Err(StorageError::AlreadyExists(key)));
                }
                let rev = self.revision + 1;
                let kv = self.put(&key, rev, rev, value)?;
                Ok(Ok((Done::Put(kv.clone()), Some(self.log(Event::Put { kv, prev: None })?))))
            }
            Op::Update { key, value, expected } => {
                let Some(prev) = self.current(&key)? else { return Ok(Err(StorageError::NotFound(key))) };
                if prev.mod_revision != expected {
                    return Ok(Err(StorageError::Conflict { key, current: prev.mod_revision }));
                }
                let kv = self.put(&key, prev.create_revision, self.revision + 1, value)?;
                Ok(Ok((Done::Put(kv.clone()), Some(self.log(Event::Put { kv, prev: Some(prev) })?))))
            }
            Op::Delete { key, expected } => {
                let Some(prev) = self.current(&key)? else { return Ok(Err(StorageError::NotFound(key))) };
                if expected.is_some_and(|e| e != prev.mod_revision) {
                    return Ok(Err(StorageError::Conflict { key, current: prev.mod_revision }));
                }
                self.kv.remove(key.as_str()).map_err(backend)?;
                let rev = self.revision + 1;
                let ev = self.log(Event::Delete { prev: prev.clone(), revision: rev })?;
                Ok(Ok((Done::Deleted(prev, rev), Some(ev))))
            }
            Op::Compact { revision } => {
                if revision > self.revision {
                    return Ok(Err(StorageError::FutureRevision(revision)));
                }
                if revision > read::meta(&self.meta, COMPACTED)? {
                    self.meta.insert(COMPACTED, revision).map_err(backend)?;
                    self.log.retain_in(..=revision, |_, _| false).map_err(backend)?;
                }
                Ok(Ok((Done::Compacted, None)))
            }
        }
    }

    fn put(&mut self, key: &str, create: u64, rev: u64, value: Bytes) -> Result<KeyValue> {
        self.kv.insert(key, codec::encode_kv(create, rev, &value).as_slice()).map_err(backend)?;
        Ok(KeyValue { key: key.to_string(), value, create_revision: create, mod_revision: rev })
    }

    /// Appends `ev` to the log at the next revision.
    fn log(&mut self, ev: Event) -> Result<Event> {
        self.revision = ev.revision();
        self.log.insert(self.revision, codec::encode_event(&ev).as_slice()).map_err(backend)?;
        Ok(ev)
    }
}
