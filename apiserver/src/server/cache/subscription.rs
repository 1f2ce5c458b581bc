//! One watcher's view of the cache: the window's changes after its
//! revision, then live ones; a watcher that falls behind the live channel
//! catches up from the window, or gets 410 Expired once the window has
//! moved past it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Cache, Change, State};
use crate::error::{Error, Result};

pub struct Subscription {
    cache: Arc<Cache>,
    prefix: String,
    backlog: VecDeque<Arc<Change>>,
    live: broadcast::Receiver<Arc<Change>>,
    /// Every change up to here (under any prefix) has been seen.
    seen: u64,
}

fn expired(after: u64, since: u64) -> Error {
    Error::Expired(format!("too old resource version: {after} ({since})"))
}

impl Subscription {
    pub(super) fn new(cache: Arc<Cache>, state: &State, prefix: &str, after: u64) -> Result<Subscription> {
        if after < state.since {
            return Err(expired(after, state.since));
        }
        let mut sub = Subscription {
            cache,
            prefix: prefix.to_string(),
            backlog: VecDeque::new(),
            live: state.live.subscribe(),
            seen: after,
        };
        sub.backlog = sub.window_after_seen(state);
        Ok(sub)
    }

    fn window_after_seen(&self, state: &State) -> VecDeque<Arc<Change>> {
        let start = state.window.partition_point(|c| c.revision() <= self.seen);
        state.window.range(start..).filter(|c| c.key().starts_with(&self.prefix)).cloned().collect()
    }

    /// The revision every change of this subscription has been delivered up to.
    pub fn revision(&self) -> u64 {
        self.seen
    }

    /// The next change; `None` when the cache was reset (watch again),
    /// `Err(Expired)` when this watcher fell out of the window.
    pub async fn next(&mut self) -> Option<Result<Arc<Change>>> {
        loop {
            if let Some(c) = self.backlog.pop_front() {
                self.seen = self.seen.max(c.revision());
                return Some(Ok(c));
            }
            match self.live.recv().await {
                Ok(c) => {
                    if c.revision() <= self.seen {
                        continue;
                    }
                    self.seen = c.revision();
                    if c.key().starts_with(&self.prefix) {
                        return Some(Ok(c));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let cache = self.cache.clone();
                    let state = cache.read();
                    if self.seen < state.since {
                        return Some(Err(expired(self.seen, state.since)));
                    }
                    self.live = state.live.subscribe();
                    self.backlog = self.window_after_seen(&state);
                    // Changes not under the prefix up to the cache's revision are seen too.
                    let upto = state.revision;
                    drop(state);
                    if self.backlog.is_empty() {
                        self.seen = self.seen.max(upto);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
