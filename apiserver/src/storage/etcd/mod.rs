//! The etcd backend: the [`Storage`] trait on a real etcd cluster, for
//! several API server replicas sharing one store.
//!
//! etcd's revisions are the resourceVersions: an object's revision is its
//! key's `mod_revision`. Compare-and-swap is a `Txn` comparing
//! `mod_revision` (and `create_revision > 0`, so an update never creates);
//! ranges read at a revision with etcd's own `limit`/`more`; watches start
//! at a revision with `prev_kv` (see `watch`). A revision etcd has
//! compacted is [`StorageError::Compacted`], for ranges and watches alike.
//! Every key is stored under the configured prefix, which is stripped from
//! what is returned.

mod config;
mod retry;
mod watch;

pub use config::EtcdConfig;

use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use futures::stream::BoxStream;

use super::{Event, KeyValue, Range, Result, Storage, StorageError};

/// The largest answer taken from etcd: a list of every object of a kind
/// (limit 0) may be far above tonic's 4 MiB default.
const MAX_ANSWER: usize = 1 << 30;

/// How long connecting (and the first answer) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The etcd store. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    prefix: String,
}

impl Etcd {
    /// Connects to `etcd://host:port[,host:port...][/prefix]` and checks
    /// that the cluster answers.
    pub async fn connect(url: &str) -> Result<Etcd> {
        let config = EtcdConfig::parse(url)?;
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let fail = |e: etcd_client::Error| StorageError::Backend(format!("connecting to etcd at {url}: {e}"));
        let client = Client::connect(&config.endpoints, Some(options)).await.map_err(fail)?;
        let store = Etcd { client, prefix: config.prefix };
        match tokio::time::timeout(CONNECT_TIMEOUT, store.current_revision()).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(StorageError::Backend(e))) => {
                Err(StorageError::Backend(format!("etcd at {url} does not answer: {e}")))
            }
            Ok(Err(e)) => Err(StorageError::Backend(format!("etcd at {url} does not answer: {e}"))),
            Err(_) => Err(StorageError::Backend(format!("etcd at {url} did not answer within {CONNECT_TIMEOUT:?}"))),
        }
    }

    /// Why a compare-and-swap transaction did not apply, from the current
    /// value its `or_else` read: the key is gone, or at another revision.
    fn refused(&self, resp: &etcd_client::TxnResponse, key: &str) -> Result<StorageError> {
        Ok(match self.found(resp)? {
            None => StorageError::NotFound(key.to_string()),
            Some(cur) => StorageError::Conflict { key: key.to_string(), current: cur.mod_revision },
        })
    }

    /// The key prefix every key is stored under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn kv_client(&self) -> etcd_client::KvClient {
        self.client.kv_client().max_decoding_message_size(MAX_ANSWER)
    }

    pub(crate) fn watch_client(&self) -> etcd_client::WatchClient {
        self.client.watch_client().max_decoding_message_size(MAX_ANSWER)
    }

    fn full(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        kv_from(&self.prefix, kv)
    }

    async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse> {
        retry::unsent(|| {
            let (mut c, txn) = (self.kv_client(), txn.clone());
            async move { c.txn(txn).await }
        })
        .await
        .map_err(|e| from_etcd(e, 0))
    }

    /// The key's current value, read by the failure branch of a txn.
    fn found(&self, resp: &etcd_client::TxnResponse) -> Result<Option<KeyValue>> {
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                return get.kvs().first().map(|kv| self.kv(kv)).transpose();
            }
        }
        Ok(None)
    }
}

/// Converts etcd's key-value, stripping `prefix` from its key.
pub(crate) fn kv_from(prefix: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv.key_str().map_err(|e| StorageError::Backend(format!("etcd key is not UTF-8: {e}")))?;
    let key = key.strip_prefix(prefix).unwrap_or(key).to_string();
    Ok(KeyValue {
        key,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: rev(kv.create_revision()),
        mod_revision: rev(kv.mod_revision()),
    })
}

fn rev(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

fn signed(r: u64) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

/// The end of the key range of everything starting with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Maps an etcd error; `requested` is the revision asked for, if any.
pub(crate) fn from_etcd(e: etcd_client::Error, requested: u64) -> StorageError {
    let text = e.to_string();
    if text.contains("required revision has been compacted") {
        // etcd does not say which revision it compacted to; the next one is the oldest a client may ask for.
        StorageError::Compacted { requested, oldest: requested + 1 }
    } else if text.contains("required revision is a future revision") {
        StorageError::FutureRevision(requested)
    } else {
        StorageError::Backend(format!("etcd: {text}"))
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<u64> {
    h.map(|h| rev(h.revision())).ok_or_else(|| StorageError::Backend("etcd answered without a header".into()))
}

impl Storage for Etcd {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.to_vec(), None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        let r = header_revision(resp.header())?;
        Ok(KeyValue { key: key.to_string(), value, create_revision: r, mod_revision: r })
    }

    async fn update(&self, key: &str, value: Bytes, expected: u64) -> Result<KeyValue> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(full.clone(), CompareOp::Equal, signed(expected)),
            ])
            .and_then([TxnOp::put(full.clone(), value.to_vec(), Some(PutOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(self.refused(&resp, key)?);
        }
        let r = header_revision(resp.header())?;
        let create = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Put(p) => p.prev_key().map(|kv| rev(kv.create_revision())),
            _ => None,
        });
        let create_revision = create.ok_or_else(|| StorageError::Backend("etcd returned no previous value".into()))?;
        Ok(KeyValue { key: key.to_string(), value, create_revision, mod_revision: r })
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<(KeyValue, u64)> {
        let full = self.full(key);
        let mut when = vec![Compare::create_revision(full.clone(), CompareOp::Greater, 0)];
        if let Some(e) = expected {
            when.push(Compare::mod_revision(full.clone(), CompareOp::Equal, signed(e)));
        }
        let txn = Txn::new()
            .when(when)
            .and_then([TxnOp::delete(full.clone(), Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(self.refused(&resp, key)?);
        }
        let r = header_revision(resp.header())?;
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().map(|kv| self.kv(kv)),
            _ => None,
        });
        let prev = prev.ok_or_else(|| StorageError::Backend("etcd returned no deleted value".into()))??;
        Ok((prev, r))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = retry::unsent(|| {
            let (mut c, key) = (self.kv_client(), self.full(key));
            async move { c.get(key, None).await }
        })
        .await
        .map_err(|e| from_etcd(e, 0))?;
        resp.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn range(&self, prefix: &str, start_after: Option<&str>, revision: u64, limit: usize) -> Result<Range> {
        let full = self.full(prefix);
        let start = match start_after {
            Some(after) => {
                let mut k = self.full(after);
                k.push(0);
                k.max(full.clone())
            }
            None => full.clone(),
        };
        let mut opts = GetOptions::new().with_range(prefix_end(&full)).with_revision(signed(revision));
        if limit > 0 {
            opts = opts.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let get = || {
            let (mut c, start, opts) = (self.kv_client(), start.clone(), opts.clone());
            async move { c.get(start, Some(opts)).await }
        };
        let resp = retry::unsent(get).await.map_err(|e| from_etcd(e, revision))?;
        let kvs = resp.kvs().iter().map(|kv| self.kv(kv)).collect::<Result<Vec<_>>>()?;
        let at = if revision == 0 { header_revision(resp.header())? } else { revision };
        Ok(Range { kvs, revision: at, more: resp.more() })
    }

    async fn watch(&self, prefix: &str, after: u64) -> Result<BoxStream<'static, Result<Event>>> {
        watch::start(self, prefix, after).await
    }

    async fn current_revision(&self) -> Result<u64> {
        let opts = GetOptions::new().with_count_only();
        let get = || {
            let (mut c, key, opts) = (self.kv_client(), self.full("/"), opts.clone());
            async move { c.get(key, Some(opts)).await }
        };
        let resp = retry::unsent(get).await.map_err(|e| from_etcd(e, 0))?;
        header_revision(resp.header())
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        match retry::unsent(|| {
            let mut c = self.kv_client();
            async move { c.compact(signed(revision), None).await }
        })
        .await
        {
            Ok(_) => Ok(()),
            Err(e) => match from_etcd(e, revision) {
                // Another replica (or an earlier call) compacted this far already.
                StorageError::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests;
