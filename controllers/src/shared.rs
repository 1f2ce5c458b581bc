//! One watch of every placement, shared: it keeps the placement cache and,
//! only once the cache holds a change, hands the placement to the Job
//! controller (its owner's trigger) and to the ledger controller (its
//! agent's). A trigger therefore never runs ahead of the cache a reconcile
//! reads ([`crate::expect`]), and the API server serves one placement watch
//! to the controllers instead of three.
//!
//! During a relist (the first list, or after the watch expired) the cache
//! is replaced only when the list is complete, so the listed placements are
//! handed on then, not as they arrive.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use berth_api::Placement;
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::expect::Expected;

/// The placement cache and the two triggers it feeds.
pub struct Shared {
    pub store: Store<Placement>,
    /// Every placement change, for the Job controller (`owns_stream`).
    pub to_jobs: UnboundedReceiver<Placement>,
    /// Every placement change, for the ledger controller (`watches_stream`).
    pub to_ledger: UnboundedReceiver<Placement>,
}

/// Every placement the watch reported, as `namespace/name` (see `ledger`).
pub type Seen = Arc<Mutex<HashSet<String>>>;

/// Starts watching `api` in the background; `expected` forgets each
/// created placement as the watch reports it, and `seen` records it.
pub fn placements(api: Api<Placement>, expected: Arc<Expected>, seen: Seen) -> Shared {
    let (store, writer) = reflector::store();
    let (jobs_tx, to_jobs) = unbounded();
    let (ledger_tx, to_ledger) = unbounded();
    let events = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(async move {
        let mut relisted: Option<Vec<Placement>> = None;
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let Ok(event) = event else { continue };
            match event {
                watcher::Event::Apply(p) | watcher::Event::Delete(p) => {
                    hand_on(p, (&expected, &seen), &jobs_tx, &ledger_tx);
                }
                watcher::Event::Init => relisted = Some(Vec::new()),
                watcher::Event::InitApply(p) => relisted.get_or_insert_with(Vec::new).push(p),
                watcher::Event::InitDone => {
                    for p in relisted.take().unwrap_or_default() {
                        hand_on(p, (&expected, &seen), &jobs_tx, &ledger_tx);
                    }
                }
            }
        }
    });
    Shared { store, to_jobs, to_ledger }
}

fn hand_on(
    p: Placement,
    (expected, seen): (&Expected, &Seen),
    jobs: &UnboundedSender<Placement>,
    ledger: &UnboundedSender<Placement>,
) {
    expected.observed(&p);
    let key = format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or_default(), p.name_any());
    seen.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    // A controller that stopped (shutdown) no longer listens; that is fine.
    let _ = jobs.unbounded_send(p.clone());
    let _ = ledger.unbounded_send(p);
}
