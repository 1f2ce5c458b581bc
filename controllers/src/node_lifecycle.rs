//! The node-lifecycle controller (Kubernetes' node-lifecycle controller,
//! Nomad's heartbeat TTL, Mesos' agent removal): an agent whose Lease
//! (`kube-node-lease/<agent>`) has not moved for the TTL is marked
//! `Ready=False` (reason `AgentLost`), and each of its non-terminal
//! placements `Lost` (reason [`REASON_AGENT_LOST`]) and freed of the
//! agent's finalizer, so its Job places the next attempt elsewhere and the
//! ledger reconciler releases its claim. An agent that renews again is
//! `Ready=True` again.
//!
//! The TTL is measured on this controller's clock from when it last *saw*
//! `renewTime` change — never from the agent's clock, which may be skewed —
//! as kube-controller-manager does. An agent without a Lease never opted in
//! (simulated agents, old agents) and is left alone. [`decide`] is pure;
//! [`run`] applies it on a short period.

use std::collections::HashMap;
use std::time::Duration;

use berth_api::condition::{Condition, find, set_condition};
use berth_api::placement::{FINALIZER_AGENT, REASON_AGENT_LOST};
use berth_api::{Agent, Phase, Placement, format_time};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::events::Note;

/// Where agents renew their Leases (as the kubelet does in Kubernetes).
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The default of `--agent-ttl-seconds`.
pub const DEFAULT_AGENT_TTL: Duration = Duration::from_secs(10);
/// How many placements of a lost agent are marked `Lost` at once.
const LOSE_CONCURRENCY: usize = 16;
/// `Ready` condition reason of an agent marked lost.
pub const REASON_NOT_RENEWING: &str = "AgentLost";

/// The last `renewTime` seen of one agent's Lease and when it was seen to change.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub renew_time: Option<String>,
    pub changed_at: Timestamp,
    /// True once `renew_time` was seen to change: the agent is known to
    /// renew, not merely to have renewed before this controller started.
    pub moved: bool,
}

/// Records `renew_time` of an agent's Lease observed at `now`: the clock
/// restarts only when it differs from the last one seen.
pub fn observe(seen: &mut Option<Seen>, renew_time: Option<String>, now: Timestamp) {
    match seen {
        None => *seen = Some(Seen { renew_time, changed_at: now, moved: false }),
        Some(s) if s.renew_time != renew_time => *s = Seen { renew_time, changed_at: now, moved: true },
        Some(_) => {}
    }
}

/// What an agent is at one moment.
#[derive(Clone, Debug, PartialEq)]
pub enum Liveness {
    /// No Lease: not judged.
    Unleased,
    /// Its Lease was first seen within the TTL and has not moved since
    /// (this controller just started): neither lost nor known to be alive.
    Unconfirmed,
    /// Its Lease moved within the TTL.
    Alive,
    /// Its Lease was last seen moving at `since`.
    Lost { since: Timestamp },
}

/// The verdict for an agent whose Lease was `seen`, with `ttl`, at `now`.
pub fn decide(seen: Option<&Seen>, ttl: Duration, now: Timestamp) -> Liveness {
    let Some(s) = seen else { return Liveness::Unleased };
    let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
    match (now.duration_since(s.changed_at) < ttl, s.moved) {
        (true, true) => Liveness::Alive,
        (true, false) => Liveness::Unconfirmed,
        (false, _) => Liveness::Lost { since: s.changed_at },
    }
}

/// The `Ready` condition to write on `agent`, if it must change: `False`
/// once lost; `True` again when it renews after it was marked lost.
pub fn ready_change(agent: &Agent, liveness: &Liveness, ttl: Duration) -> Option<Condition> {
    let conditions = agent.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ready = find(conditions, "Ready");
    match liveness {
        Liveness::Unleased | Liveness::Unconfirmed => None,
        Liveness::Lost { since } => ready.is_none_or(|r| r.reason != REASON_NOT_RENEWING).then(|| {
            let msg = format!(
                "the agent has not renewed its Lease since {} (agent TTL {}s); its placements are Lost",
                format_time(*since),
                ttl.as_secs()
            );
            Condition::new("Ready", false, REASON_NOT_RENEWING, msg)
        }),
        Liveness::Alive => ready
            .is_some_and(|r| r.reason == REASON_NOT_RENEWING)
            .then(|| Condition::new("Ready", true, "AgentReady", "the agent renews its Lease again")),
    }
}

/// The placements of `agent` that a loss ends: every one not yet terminal.
pub fn to_lose<'a>(agent: &str, placements: &'a [std::sync::Arc<Placement>]) -> Vec<&'a Placement> {
    placements
        .iter()
        .filter(|p| p.spec.agent == agent)
        .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
        .map(|p| &**p)
        .collect()
}

/// Judges every agent each `ttl / 8` (at most half a second) until `shutdown`.
pub async fn run(
    client: Client,
    agents: Store<Agent>,
    placements: Store<Placement>,
    leases: Store<Lease>,
    ttl: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut seen: HashMap<String, Option<Seen>> = HashMap::new();
    let mut tick = tokio::time::interval((ttl / 8).clamp(Duration::from_millis(100), Duration::from_millis(500)));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let now = Timestamp::now();
        // Each Lease found by name and the placements read once per round:
        // a search per agent was quadratic in agents (10,000 agents spent a
        // whole core on it).
        let leases = leases.state();
        let lease_of: HashMap<&str, &Lease> =
            leases.iter().filter_map(|l| Some((l.metadata.name.as_deref()?, &**l))).collect();
        let placements = placements.state();
        for agent in agents.state() {
            let name = agent.name_any();
            let entry = seen.entry(name.clone()).or_default();
            if let Some(l) = lease_of.get(name.as_str()) {
                let renewed = l.spec.as_ref().and_then(|s| s.renew_time.as_ref()).map(|t| t.0.to_string());
                observe(entry, renewed, now);
            }
            let liveness = decide(entry.as_ref(), ttl, now);
            if let Err(e) = apply(&client, &agent, &liveness, &placements, ttl).await {
                tracing::warn!(agent = %name, error = %e, "applying the agent's liveness failed; retrying");
            }
        }
    }
}

/// Writes what `liveness` means for `agent` and its placements.
async fn apply(
    client: &Client,
    agent: &Agent,
    liveness: &Liveness,
    placements: &[std::sync::Arc<Placement>],
    ttl: Duration,
) -> Result<(), kube::Error> {
    let name = agent.name_any();
    if let Some(ready) = ready_change(agent, liveness, ttl) {
        let mut conditions = agent.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        set_condition(&mut conditions, ready.clone(), &berth_api::now_rfc3339());
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": agent.resource_version()},
            "status": {"conditions": conditions},
        });
        Api::<Agent>::all(client.clone()).patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        tracing::warn!(agent = %name, ready = %ready.status, reason = %ready.reason, "{}", ready.message);
        let type_ = if ready.status == "True" { "Normal" } else { "Warning" };
        let note = Note { type_, reason: ready.reason.clone(), message: ready.message.clone() };
        crate::events::record(client, agent, &note).await;
    }
    let Liveness::Lost { since } = liveness else { return Ok(()) };
    // Concurrently: an agent may have run hundreds, and each waits for its replacement.
    let lost: Vec<Placement> = to_lose(&name, placements).into_iter().cloned().collect();
    let since = *since;
    let writes = lost.into_iter().map(|p| lose(client.clone(), p, name.clone(), since));
    let results: Vec<Result<(), kube::Error>> =
        futures::stream::iter(writes).buffer_unordered(LOSE_CONCURRENCY).collect().await;
    results.into_iter().collect()
}

/// Marks `p` Lost (on its cached resourceVersion: a 409 means the agent or
/// another writer moved it, judged again next round), then removes the
/// agent's finalizer so it can be deleted while its agent is away.
async fn lose(client: Client, p: Placement, agent: String, since: Timestamp) -> Result<(), kube::Error> {
    let api: Api<Placement> = Api::namespaced(client, &p.namespace().unwrap_or_default());
    let name = p.name_any();
    let now = berth_api::now_rfc3339();
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": p.resource_version()},
        "status": {
            "phase": Phase::Lost,
            "reason": REASON_AGENT_LOST,
            "message": format!("agent {agent} stopped renewing its Lease (last renewal seen at {})", format_time(since)),
            "finishedAt": now,
        },
    });
    let written = match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(w) => w,
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => return Ok(()),
        Err(e) => return Err(e),
    };
    tracing::warn!(placement = %name, %agent, "marked Lost: its agent stopped renewing its Lease");
    let finalizers = written.finalizers();
    if finalizers.iter().any(|f| f == FINALIZER_AGENT) {
        let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER_AGENT).collect();
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": written.resource_version(), "finalizers": rest},
        });
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "node_lifecycle_tests.rs"]
mod tests;
