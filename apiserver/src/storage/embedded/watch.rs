//! Watches on the embedded store: replay the log after a revision, then
//! follow the live broadcast.
//!
//! The receiver subscribes *before* the log is read, so an event committed
//! during the read is either in the read or in the broadcast (or both, and
//! then it is skipped by revision): none is lost or delivered twice. A
//! watcher that falls behind the broadcast re-reads the log from the last
//! revision it delivered.

use std::sync::{Arc, Weak};

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Inner, blocking, read};
use crate::storage::{Event, Result};

const BUFFER: usize = 256;

pub async fn start(inner: &Arc<Inner>, prefix: &str, after: u64) -> Result<BoxStream<'static, Result<Event>>> {
    let rx = inner.events.subscribe();
    let (replay, seen) = replay(inner, prefix, after).await?;
    let (tx, out) = mpsc::channel(BUFFER);
    let task = Follow { inner: Arc::downgrade(inner), prefix: prefix.to_string(), last: seen.max(after), tx };
    tokio::spawn(task.run(replay, rx));
    Ok(ReceiverStream::new(out).boxed())
}

async fn replay(inner: &Arc<Inner>, prefix: &str, after: u64) -> Result<(Vec<Event>, u64)> {
    let inner = inner.clone();
    let prefix = prefix.to_string();
    blocking(move || read::log_after(&inner.db, &prefix, after)).await
}

struct Follow {
    inner: Weak<Inner>,
    prefix: String,
    /// Every event up to this revision has been delivered (or replayed).
    last: u64,
    tx: mpsc::Sender<Result<Event>>,
}

impl Follow {
    async fn run(mut self, replayed: Vec<Event>, mut rx: broadcast::Receiver<Event>) {
        for ev in replayed {
            if self.tx.send(Ok(ev)).await.is_err() {
                return;
            }
        }
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = self.tx.closed() => return,
            };
            match received {
                Ok(ev) => {
                    if ev.revision() <= self.last {
                        continue;
                    }
                    self.last = ev.revision();
                    if ev.key().starts_with(&self.prefix) && self.tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(inner) = self.inner.upgrade() else { return };
                    rx = inner.events.subscribe();
                    match replay(&inner, &self.prefix, self.last).await {
                        Ok((events, seen)) => {
                            drop(inner);
                            for ev in events {
                                if self.tx.send(Ok(ev)).await.is_err() {
                                    return;
                                }
                            }
                            self.last = self.last.max(seen);
                        }
                        Err(e) => {
                            let _ = self.tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
