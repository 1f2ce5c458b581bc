//! The watch cache (after Kubernetes' cacher): every stored object in
//! memory plus a window of recent changes, fed by one storage watch of all
//! keys. Watches and lists (`resourceVersion=0`, `NotOlderThan`, and
//! consistent lists once the cache has reached storage's current revision;
//! the first page of each) read it; `Exact` reads of old revisions and
//! `continue` pages go to storage.
//!
//! The window keeps the last `Options::watch_cache_events` changes; a watch
//! from a revision before it gets 410 Expired, as one that falls behind it.
//! When the storage watch breaks, the cache lists again and every open
//! watch ends (clients watch again from their last revision).

mod lines;
mod subscription;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

pub use lines::Lines;
pub use subscription::Subscription;

use crate::error::{Error, Result};
use crate::storage::{Event, KeyValue, Storage};

/// Every object's key starts here.
pub const ROOT: &str = "/registry/";
/// Live changes a watcher may be behind before it catches up from the window.
const BROADCAST: usize = 1024;

/// One stored object: its key, parsed stored form and mod revision.
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub revision: u64,
}

impl Entry {
    /// The object as the API shows it for `kind`, at `revision`.
    pub fn shown(&self, kind: &crate::registry::Kind, revision: u64) -> Value {
        let mut obj = self.value.clone();
        crate::server::object::set_revision(&mut obj, revision);
        obj["apiVersion"] = Value::String(kind.api_version());
        obj["kind"] = Value::String(kind.kind.clone());
        obj
    }

    /// [`Entry::shown`] as a view that serializes without copying the
    /// stored object (what watch events are encoded from).
    pub fn shown_ref<'a>(&'a self, kind: &'a crate::registry::Kind, revision: u64) -> Shown<'a> {
        Shown { value: &self.value, revision: revision.to_string(), api_version: kind.api_version(), kind: &kind.kind }
    }

    fn of(kv: &KeyValue) -> Option<Arc<Entry>> {
        let value = serde_json::from_slice(&kv.value).ok()?;
        Some(Arc::new(Entry { key: kv.key.clone(), value, revision: kv.mod_revision }))
    }
}

/// A stored object with its `apiVersion`, `kind` and
/// `metadata.resourceVersion` as the API shows them; serializes to the
/// same JSON object as [`Entry::shown`] (its keys in another order).
pub struct Shown<'a> {
    value: &'a Value,
    revision: String,
    api_version: String,
    kind: &'a str,
}

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let empty = serde_json::Map::new();
        let top = self.value.as_object().unwrap_or(&empty);
        let rest = || top.iter().filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("apiVersion", &self.api_version)?;
        map.serialize_entry("kind", self.kind)?;
        let meta = top.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
        map.serialize_entry("metadata", &ShownMeta { meta, revision: &self.revision })?;
        for (k, v) in rest() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `metadata` with the resourceVersion shown.
struct ShownMeta<'a> {
    meta: &'a serde_json::Map<String, Value>,
    revision: &'a str,
}

impl serde::Serialize for ShownMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.meta.iter().filter(|(k, _)| *k != "resourceVersion") {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("resourceVersion", self.revision)?;
        map.end()
    }
}

/// One change, as watchers receive it.
#[derive(Debug)]
pub enum Change {
    Put { entry: Arc<Entry>, prev: Option<Arc<Entry>> },
    Delete { prev: Arc<Entry>, revision: u64 },
}

impl Change {
    pub fn revision(&self) -> u64 {
        match self {
            Change::Put { entry, .. } => entry.revision,
            Change::Delete { revision, .. } => *revision,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Change::Put { entry, .. } => &entry.key,
            Change::Delete { prev, .. } => &prev.key,
        }
    }
}

struct State {
    objects: BTreeMap<String, Arc<Entry>>,
    window: VecDeque<Arc<Change>>,
    /// Every change up to here is applied.
    revision: u64,
    /// The window holds every change after this revision.
    since: u64,
    /// Live changes; replaced (ending every subscription) on a relist.
    live: broadcast::Sender<Arc<Change>>,
}

pub struct Cache {
    /// Encoded events, shared by the watchers of a change.
    pub lines: Lines,
    state: RwLock<State>,
    progress: watch::Sender<u64>,
    capacity: usize,
}

/// A consistent read of the cache: matching entries under a prefix.
pub struct Listed {
    pub entries: Vec<Arc<Entry>>,
    pub revision: u64,
    /// The last key returned, when `limit` cut the list short.
    pub more_after: Option<String>,
}

impl Cache {
    pub fn new(capacity: usize) -> Arc<Cache> {
        let (live, _) = broadcast::channel(BROADCAST);
        let state = State { objects: BTreeMap::new(), window: VecDeque::new(), revision: 0, since: 0, live };
        Arc::new(Cache {
            lines: Lines::default(),
            state: RwLock::new(state),
            progress: watch::channel(0).0,
            capacity: capacity.max(1),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    /// Waits until the cache has reached `revision`; false after `limit`.
    pub async fn wait_for(&self, revision: u64, limit: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|r| *r >= revision)).await.is_ok_and(|r| r.is_ok())
    }

    /// Entries under `prefix` after `start_after` that `keep`, at most `limit` (0 = all).
    pub fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize, keep: &dyn Fn(&Value) -> bool) -> Listed {
        let state = self.read();
        let start = start_after.unwrap_or(prefix).max(prefix).to_string();
        let mut entries = Vec::new();
        let mut more_after = None;
        for (key, entry) in state.objects.range(start..) {
            if !key.starts_with(prefix) {
                break;
            }
            if Some(key.as_str()) == start_after {
                continue;
            }
            if limit > 0 && entries.len() == limit {
                more_after = entries.last().map(|e: &Arc<Entry>| e.key.clone());
                break;
            }
            if keep(&entry.value) {
                entries.push(entry.clone());
            }
        }
        Listed { entries, revision: state.revision, more_after }
    }

    /// Every change under `prefix` after `after`: from the window, then live.
    pub fn watch(self: &Arc<Cache>, prefix: &str, after: u64) -> Result<Subscription> {
        let state = self.read();
        Subscription::new(self.clone(), &state, prefix, after)
    }

    /// Every entry under `prefix` now, and a subscription from that revision.
    pub fn snapshot_and_watch(self: &Arc<Cache>, prefix: &str) -> Result<(Vec<Arc<Entry>>, u64, Subscription)> {
        let state = self.read();
        let entries = state.objects.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        let entries = entries.map(|(_, e)| e.clone()).collect();
        let sub = Subscription::new(self.clone(), &state, prefix, state.revision)?;
        Ok((entries, state.revision, sub))
    }

    /// Replaces the contents with a fresh list; open subscriptions end.
    fn reset(&self, kvs: &[KeyValue], revision: u64) {
        let mut state = self.write();
        state.objects = kvs.iter().filter_map(|kv| Some((kv.key.clone(), Entry::of(kv)?))).collect();
        state.window.clear();
        state.revision = revision;
        state.since = revision;
        state.live = broadcast::channel(BROADCAST).0;
        drop(state);
        self.progress.send_replace(revision);
    }

    fn apply(&self, ev: &Event) {
        let mut state = self.write();
        if ev.revision() <= state.revision {
            return;
        }
        let change = match ev {
            Event::Put { kv, .. } => {
                let Some(entry) = Entry::of(kv) else { return };
                let prev = state.objects.insert(kv.key.clone(), entry.clone());
                Change::Put { entry, prev }
            }
            Event::Delete { prev, revision } => match state.objects.remove(&prev.key) {
                Some(prev) => Change::Delete { prev, revision: *revision },
                None => return,
            },
        };
        let change = Arc::new(change);
        state.revision = change.revision();
        state.window.push_back(change.clone());
        while state.window.len() > self.capacity {
            if let Some(old) = state.window.pop_front() {
                state.since = old.revision();
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = state.live.send(change);
        let revision = state.revision;
        drop(state);
        self.progress.send_replace(revision);
    }

    /// Lists everything, then follows storage; lists again when the watch breaks.
    pub async fn fill<S: Storage>(&self, store: &S) -> Result<u64> {
        let range = store.range(ROOT, None, 0, 0).await?;
        self.reset(&range.kvs, range.revision);
        Ok(range.revision)
    }

    /// Follows storage from `revision` until stopped, refilling after a broken watch.
    pub async fn follow<S: Storage>(&self, store: &S, mut revision: u64) {
        loop {
            if let Err(e) = self.follow_once(store, revision).await {
                tracing::warn!(error = %e, "watch cache: the storage watch broke; listing again");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.fill(store).await {
                Ok(r) => revision = r,
                Err(e) => tracing::warn!(error = %e, "watch cache: listing failed"),
            }
        }
    }

    async fn follow_once<S: Storage>(&self, store: &S, revision: u64) -> Result<()> {
        let mut events = store.watch(ROOT, revision).await?;
        while let Some(ev) = events.next().await {
            self.apply(&ev?);
        }
        Err(Error::Internal("the storage watch ended".into()))
    }
}

#[cfg(test)]
mod tests;
