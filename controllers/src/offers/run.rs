//! The allocation loop: a round on every change of Agents, Frameworks,
//! Offers, Placements, Clusters or Jobs, and at least once a [`PERIOD`]. A
//! round settles the frameworks' answers, plans from the caches, applies the
//! plan (holds, Offers, rescinds), answers the built-in schedulers' offers,
//! kills the tasks of frameworks past their failover timeout and writes the
//! frameworks' status.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

use super::builtin_answer::{self, Memory};
use super::failover::{self, Connection};
use super::inputs::{Caches, input};
use super::{answers, status};
use crate::Error;
use crate::allocator::{apply::apply, plan_round};

/// The longest time between two rounds.
pub const PERIOD: Duration = Duration::from_secs(1);

/// A cache of all objects of `K` that pokes `changed` on every event.
pub fn watched<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(stream.for_each(move |_| {
        changed.notify_one();
        futures::future::ready(())
    }));
    reader
}

/// A cache of all objects of `K` that pokes nothing: for objects that
/// change often without needing a round at once (Leases are renewed every
/// few seconds; what matters is when they expire, which the periodic round sees).
fn quiet<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

/// The caches the loop reads, each poking `changed` (but Leases: see [`quiet`]).
pub async fn caches(client: &Client, changed: Arc<Notify>) -> Caches {
    let c = Caches {
        agents: watched(Api::all(client.clone()), changed.clone()),
        frameworks: watched(Api::all(client.clone()), changed.clone()),
        offers: watched(Api::all(client.clone()), changed.clone()),
        placements: watched(Api::all(client.clone()), changed.clone()),
        clusters: watched(Api::all(client.clone()), changed.clone()),
        jobs: watched(Api::all(client.clone()), changed),
        leases: quiet(Api::all(client.clone())),
    };
    let _ = tokio::join!(
        c.agents.wait_until_ready(),
        c.frameworks.wait_until_ready(),
        c.offers.wait_until_ready(),
        c.placements.wait_until_ready(),
        c.clusters.wait_until_ready(),
        c.jobs.wait_until_ready(),
        c.leases.wait_until_ready()
    );
    c
}

/// One round at `now`: settle answers, plan, make the offers, let the
/// built-in schedulers answer theirs, write the frameworks' status.
pub async fn round(client: &Client, c: &Caches, now: Timestamp, memory: &mut Memory) -> Result<(), Error> {
    // Without frameworks and offers there is nothing to offer, answer or
    // report; skipping spares a read of every agent's ledger per change.
    if c.frameworks.is_empty() && c.offers.is_empty() {
        return Ok(());
    }
    answers::settle(client, c, now).await?;
    let mut input = input(c, now);
    memory.made.complete(&mut input, &c.offers, now);
    let plan = plan_round(&input, now);
    let applied = apply(client, &plan, now).await?;
    memory.made.record(&plan, &applied);
    builtin_answer::answer(client, c, &input, &plan, &applied, now, memory).await?;
    let frameworks = c.frameworks.state();
    let mut connections = status::Connections::new();
    for fw in &frameworks {
        let conn = failover::connection(fw, &c.leases, now);
        if let Connection::FailedOver { timeout_seconds, .. } = conn {
            failover::kill(client, fw, timeout_seconds, &c.offers.state(), &c.placements.state()).await?;
        }
        connections.insert(format!("{}/{}", fw.namespace().unwrap_or_default(), fw.name_any()), conn);
    }
    status::write(client, &frameworks, &input, &plan, &applied, &connections, &berth_api::format_time(now)).await
}

/// Runs rounds until `stopped` resolves.
pub async fn allocation_loop(client: Client, stopped: impl Future<Output = ()>) {
    let changed = Arc::new(Notify::new());
    let c = caches(&client, changed.clone()).await;
    let mut memory = Memory::default();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
            _ = changed.notified() => {}
        }
        if let Err(e) = round(&client, &c, Timestamp::now(), &mut memory).await {
            tracing::warn!(error = %e, "allocation round failed; the next one retries");
        }
    }
}
