//! The `Storage` trait: revisioned keys with compare-and-swap, range reads
//! and watches from a revision, after kine's and etcd's model.
//!
//! Keys are paths (`/berth.dev/jobs/default/hello`); values are the
//! object's JSON. Every write gets the next revision of one global counter;
//! an object's `resourceVersion` is its `mod_revision`.
//!
//! Backends: [`Embedded`] (one redb file, group commit) and [`Etcd`] (a real
//! etcd cluster, shared by several API servers). Both pass the one suite in
//! [`conformance`].

pub mod conformance;
pub mod embedded;
pub mod etcd;

pub use embedded::Embedded;
pub use etcd::{Etcd, EtcdConfig};

use futures::stream::BoxStream;

/// One stored key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: bytes::Bytes,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The revision that last wrote it: the object's resourceVersion.
    pub mod_revision: u64,
}

/// A change, as a watch delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was created (`prev` is `None`) or updated.
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// The key was deleted at `revision`; `prev` is its last value.
    Delete { prev: KeyValue, revision: u64 },
}

impl Event {
    pub fn revision(&self) -> u64 {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// A read of many keys at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: u64,
    /// True when `limit` cut the result short.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The compare-and-swap precondition failed: the key is at `current`.
    #[error("key {key} was modified (now at revision {current})")]
    Conflict { key: String, current: u64 },
    /// The revision asked for is older than the compacted window.
    #[error("revision {requested} has been compacted (oldest kept: {oldest})")]
    Compacted { requested: u64, oldest: u64 },
    #[error("revision {0} is in the future")]
    FutureRevision(u64),
    #[error("storage: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The store every API server backend implements. Each method that writes
/// returns only after the write is durable.
pub trait Storage: Send + Sync + 'static {
    /// Creates `key`; fails with `AlreadyExists` if it exists.
    fn create(&self, key: &str, value: bytes::Bytes) -> impl Future<Output = Result<KeyValue>> + Send;
    /// Replaces `key` if its mod revision is `expected`.
    fn update(&self, key: &str, value: bytes::Bytes, expected: u64) -> impl Future<Output = Result<KeyValue>> + Send;
    /// Deletes `key` if its mod revision is `expected` (or unconditionally if `None`); returns the last value.
    fn delete(&self, key: &str, expected: Option<u64>) -> impl Future<Output = Result<(KeyValue, u64)>> + Send;
    /// The current value of `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<KeyValue>>> + Send;
    /// Keys starting with `prefix` and `>= start_after` (exclusive), in key
    /// order, at `revision` (0 = current), at most `limit` (0 = all).
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        revision: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Range>> + Send;
    /// Every event on keys under `prefix` after revision `after`, then live events.
    fn watch(&self, prefix: &str, after: u64)
    -> impl Future<Output = Result<BoxStream<'static, Result<Event>>>> + Send;
    /// The current revision.
    fn current_revision(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Forgets history before `revision`.
    fn compact(&self, revision: u64) -> impl Future<Output = Result<()>> + Send;
}
