//! Reads of the embedded store: ranges at the current or an older
//! revision, and the event log after a revision.

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{COMPACTED, KV, LOG, META, REVISION, backend, codec};
use crate::storage::{Event, KeyValue, Range, Result, StorageError};

/// A counter from the `meta` table (0 when unset).
pub fn meta(table: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64> {
    Ok(table.get(key).map_err(backend)?.map(|v| v.value()).unwrap_or(0))
}

pub fn range(db: &Database, prefix: &str, start_after: Option<&str>, revision: u64, limit: usize) -> Result<Range> {
    let txn = db.begin_read().map_err(backend)?;
    let metas = txn.open_table(META).map_err(backend)?;
    let current = meta(&metas, REVISION)?;
    let compacted = meta(&metas, COMPACTED)?;
    let kv = txn.open_table(KV).map_err(backend)?;
    if revision == 0 || revision == current {
        let start = start_after.unwrap_or(prefix).max(prefix);
        let mut kvs = Vec::new();
        let mut more = false;
        for entry in kv.range::<&str>(start..).map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if Some(key) == start_after {
                continue;
            }
            if limit > 0 && kvs.len() == limit {
                more = true;
                break;
            }
            kvs.push(codec::decode_kv(key, v.value())?);
        }
        return Ok(Range { kvs, revision: current, more });
    }
    if revision > current {
        return Err(StorageError::FutureRevision(revision));
    }
    if revision < compacted {
        return Err(StorageError::Compacted { requested: revision, oldest: compacted });
    }
    // The state now, with every newer event under `prefix` undone.
    let mut state = BTreeMap::new();
    for entry in kv.range::<&str>(prefix..).map_err(backend)? {
        let (k, v) = entry.map_err(backend)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        state.insert(k.value().to_string(), codec::decode_kv(k.value(), v.value())?);
    }
    let log = txn.open_table(LOG).map_err(backend)?;
    for entry in log.range(revision + 1..).map_err(backend)?.rev() {
        let (r, v) = entry.map_err(backend)?;
        let ev = codec::decode_event(r.value(), v.value())?;
        if !ev.key().starts_with(prefix) {
            continue;
        }
        undo(&mut state, ev);
    }
    let mut kvs: Vec<KeyValue> =
        state.into_values().filter(|kv| start_after.is_none_or(|s| kv.key.as_str() > s)).collect();
    let more = limit > 0 && kvs.len() > limit;
    if more {
        kvs.truncate(limit);
    }
    Ok(Range { kvs, revision, more })
}

fn undo(state: &mut BTreeMap<String, KeyValue>, ev: Event) {
    match ev {
        Event::Put { kv, prev: Some(prev) } => {
            state.insert(kv.key, prev);
        }
        Event::Put { kv, prev: None } => {
            state.remove(&kv.key);
        }
        Event::Delete { prev, .. } => {
            state.insert(prev.key.clone(), prev);
        }
    }
}

/// Events under `prefix` after revision `after`, and the revision the read
/// saw (every event up to it is included).
pub fn log_after(db: &Database, prefix: &str, after: u64) -> Result<(Vec<Event>, u64)> {
    let txn = db.begin_read().map_err(backend)?;
    let metas = txn.open_table(META).map_err(backend)?;
    let current = meta(&metas, REVISION)?;
    let compacted = meta(&metas, COMPACTED)?;
    if after < compacted {
        return Err(StorageError::Compacted { requested: after, oldest: compacted });
    }
    let log = txn.open_table(LOG).map_err(backend)?;
    let mut events = Vec::new();
    for entry in log.range(after + 1..).map_err(backend)? {
        let (r, v) = entry.map_err(backend)?;
        let ev = codec::decode_event(r.value(), v.value())?;
        if ev.key().starts_with(prefix) {
            events.push(ev);
        }
    }
    Ok((events, current))
}
