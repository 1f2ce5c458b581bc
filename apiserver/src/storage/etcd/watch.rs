//! Watches on etcd: one etcd watch per call, from a revision, with the
//! previous value of every event.
//!
//! etcd's `start_revision` is inclusive and ours (`after`) is exclusive, so
//! the watch starts *at* `after` and drops the events of `after` itself:
//! that way etcd refuses exactly the revisions our other backend refuses
//! (those before the compacted one). A compaction found before the watch
//! is set up fails the call; one etcd reports later (the watcher fell
//! behind it) ends the stream with [`StorageError::Compacted`].

use etcd_client::{EventType, GetOptions, WatchOptions};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Etcd, from_etcd, kv_from, prefix_end, rev, signed};
use crate::storage::{Event, Result, StorageError};

const BUFFER: usize = 256;

pub async fn start(store: &Etcd, prefix: &str, after: u64) -> Result<BoxStream<'static, Result<Event>>> {
    let full = store.full(prefix);
    if after > 0 {
        // Fails with Compacted when `after` is gone (a future revision is fine: the watch waits for it).
        let probe = GetOptions::new().with_range(prefix_end(&full)).with_revision(signed(after)).with_count_only();
        match super::retry::unsent(|| {
            let (mut c, key, probe) = (store.kv_client(), full.clone(), probe.clone());
            async move { c.get(key, Some(probe)).await }
        })
        .await
        {
            Ok(_) => {}
            Err(e) => match from_etcd(e, after) {
                StorageError::FutureRevision(_) => {}
                other => return Err(other),
            },
        }
    }
    let opts =
        WatchOptions::new().with_range(prefix_end(&full)).with_start_revision(signed(after.max(1))).with_prev_key();
    let watch = || {
        let (mut c, key, opts) = (store.watch_client(), full.clone(), opts.clone());
        async move { c.watch(key, Some(opts)).await }
    };
    let stream = super::retry::unsent(watch).await.map_err(|e| from_etcd(e, after))?;
    let (tx, out) = mpsc::channel(BUFFER);
    tokio::spawn(follow(stream, store.prefix.clone(), after, tx));
    Ok(ReceiverStream::new(out).boxed())
}

/// Forwards events until the receiver is dropped (which cancels the etcd
/// watch, as the stream is dropped with it) or etcd ends the watch.
async fn follow(mut stream: etcd_client::WatchStream, prefix: String, after: u64, tx: mpsc::Sender<Result<Event>>) {
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = tx.closed() => return,
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                let _ = tx.send(Err(StorageError::Backend("etcd ended the watch".into()))).await;
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(from_etcd(e, after))).await;
                return;
            }
        };
        if resp.compact_revision() > 0 {
            let oldest = rev(resp.compact_revision());
            let _ = tx.send(Err(StorageError::Compacted { requested: after, oldest })).await;
            return;
        }
        for ev in resp.events() {
            let converted = match convert(&prefix, ev) {
                Ok(Some(ev)) if ev.revision() <= after => continue,
                Ok(Some(ev)) => Ok(ev),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            let failed = converted.is_err();
            if tx.send(converted).await.is_err() || failed {
                return;
            }
        }
        if resp.canceled() {
            let reason = resp.cancel_reason().to_string();
            let _ = tx.send(Err(StorageError::Backend(format!("etcd canceled the watch: {reason}")))).await;
            return;
        }
    }
}

fn convert(prefix: &str, ev: &etcd_client::Event) -> Result<Option<Event>> {
    let Some(kv) = ev.kv() else { return Ok(None) };
    let prev = ev.prev_kv().map(|p| kv_from(prefix, p)).transpose()?;
    match ev.event_type() {
        EventType::Put => Ok(Some(Event::Put { kv: kv_from(prefix, kv)?, prev })),
        EventType::Delete => {
            let revision = rev(kv.mod_revision());
            let prev = prev.ok_or_else(|| {
                StorageError::Backend(format!(
                    "etcd sent a delete of {} without its previous value",
                    kv.key_str().unwrap_or("?")
                ))
            })?;
            Ok(Some(Event::Delete { prev, revision }))
        }
    }
}
