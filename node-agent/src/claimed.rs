//! The claim gate: a `Pending` placement starts only once this agent's
//! ledger (`Agent.status.claims`) holds a placement claim for it, so a
//! placement a scheduler or the allocator refused, or one made by hand,
//! never runs and never overcommits the machine. The agent follows its own
//! `Agent` with a watch; a waiting placement also follows its own updates
//! (from the placement watch), so one that ends while it waits (`Failed`
//! with `OfferRefused`, deleted) is never started. One still unclaimed after
//! [`AgentConfig::claim_wait`](crate::AgentConfig::claim_wait) is marked
//! `Failed` with reason `Unclaimed`. Either decision (`Staging` or
//! `Unclaimed`) is written with the placement's resourceVersion as
//! precondition. Placements past `Pending` (adopted after a restart) are not
//! re-checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::{Agent, Claim, ClaimKind, Phase, Placement};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::runtime::Runtime;
use crate::{AgentContext, Error};

/// The reason a placement never claimed in the ledger ends with.
pub const REASON_UNCLAIMED: &str = "Unclaimed";

/// What waiting placements share: this agent's ledger and their own updates.
pub struct Gate {
    /// This agent's claims; `None` until its `Agent` has been seen.
    ledger: watch::Sender<Option<Vec<Claim>>>,
    /// Placement UID → the latest version of that waiting placement.
    waiting: Mutex<HashMap<String, watch::Sender<Placement>>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { ledger: watch::Sender::new(None), waiting: Mutex::new(HashMap::new()) }
    }
}

impl Gate {
    /// Records this agent's current ledger.
    pub fn ledger_seen(&self, claims: Vec<Claim>) {
        self.ledger.send_replace(Some(claims));
    }

    /// Hands a newer version of `p` to its waiter, if it waits.
    pub fn observe(&self, p: &Placement) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = waiting.get(&p.uid().unwrap_or_default()) {
            tx.send_replace(p.clone());
        }
    }

    fn enter(&self, p: &Placement) -> (watch::Receiver<Placement>, Leave<'_>) {
        let uid = p.uid().unwrap_or_default();
        let (tx, rx) = watch::channel(p.clone());
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone(), tx);
        (rx, Leave { gate: self, uid })
    }
}

/// Removes a waiter from the gate however its wait ends (also when aborted).
struct Leave<'a> {
    gate: &'a Gate,
    uid: String,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.gate.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.uid);
    }
}

/// True when `ledger` holds a placement claim for `p`: its owner is `p`'s
/// `namespace/name` and, when the claim records a UID (the allocator's
/// claims do; a shared-state scheduler claims before the placement exists),
/// that UID is `p`'s.
pub fn holds_claim(ledger: &[Claim], p: &Placement) -> bool {
    claim_of(ledger, p).is_some()
}

/// `p`'s placement claim in `ledger`, as [`holds_claim`] finds it.
pub fn claim_of<'l>(ledger: &'l [Claim], p: &Placement) -> Option<&'l Claim> {
    let owner = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
    let uid = p.uid().unwrap_or_default();
    ledger.iter().find(|c| c.kind == ClaimKind::Placement && c.owner == owner && (c.uid.is_empty() || c.uid == uid))
}

/// Ended, or asked to stop (`spec.kill`): it ends without ever starting.
fn ended(p: &Placement) -> bool {
    p.metadata.deletion_timestamp.is_some()
        || p.spec.kill.is_some()
        || p.status.as_ref().is_some_and(|s| s.phase.is_terminal())
}

fn pending(p: &Placement) -> bool {
    p.status.as_ref().is_none_or(|s| s.phase == Phase::Pending)
}

/// Waits until `p` may run: `Some` (its latest version) once it is claimed
/// — then it is already `Staging` — or when it is past `Pending`; `None`
/// when it ended while waiting or was marked `Unclaimed` after the agent's
/// `claim_wait`. Either decision is written on the condition that the
/// placement has not changed since it was read, so a refusal written
/// meanwhile wins and nothing is started.
pub async fn admit<R: Runtime>(ctx: &Arc<AgentContext<R>>, p: Placement) -> Result<Option<Placement>, Error> {
    if !pending(&p) {
        return Ok(Some(p));
    }
    let gate = &ctx.gate;
    let (mut updates, _leave) = gate.enter(&p);
    let mut ledger = gate.ledger.subscribe();
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    wait_for_claim(&api, &ctx.config.name, ctx.config.claim_wait, &mut updates, &mut ledger).await
}

/// The gate's decision for one placement, whose versions arrive on
/// `updates` and whose agent's (`agent`) ledger arrives on `ledger` (`None`
/// until it has been read): as [`admit`] says. Public so that simulated
/// agents (`berth sim`) pass through the same gate.
pub async fn wait_for_claim(
    api: &Api<Placement>,
    agent: &str,
    wait: Duration,
    updates: &mut watch::Receiver<Placement>,
    ledger: &mut watch::Receiver<Option<Vec<Claim>>>,
) -> Result<Option<Placement>, Error> {
    wait_for_claim_then(api, agent, wait, updates, ledger, |ports| (Phase::Staging, ports_status(ports))).await
}

/// The status fields of a claimed placement: the host ports its claim holds.
pub fn ports_status(ports: &[u16]) -> serde_json::Value {
    if ports.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "ports": ports }) }
}

/// [`wait_for_claim`], with the placement moved from `Pending` to the
/// phase and status fields `begin` gives for its claim's host ports
/// (`Staging` for `berth agent`; a simulated agent, which has nothing to
/// pull, goes straight to `Running`).
pub async fn wait_for_claim_then(
    api: &Api<Placement>,
    agent: &str,
    wait: Duration,
    updates: &mut watch::Receiver<Placement>,
    ledger: &mut watch::Receiver<Option<Vec<Claim>>>,
    begin: impl Fn(&[u16]) -> (Phase, serde_json::Value),
) -> Result<Option<Placement>, Error> {
    let deadline = Instant::now() + wait;
    // After a conflicting write, decide again only once the placement changed.
    let mut conflicted = false;
    loop {
        let latest = updates.borrow_and_update().clone();
        if ended(&latest) {
            return Ok(None);
        }
        if !pending(&latest) {
            return Ok(Some(latest));
        }
        let claimed =
            ledger.borrow_and_update().as_ref().map(|claims| claim_of(claims, &latest).map(|c| c.ports.clone()));
        let decided = match claimed {
            _ if conflicted => None,
            Some(Some(ports)) => {
                let (phase, status) = begin(&ports);
                Some(write_from_pending(api, &latest, phase, status).await.map(Some))
            }
            Some(None) if Instant::now() >= deadline => {
                Some(mark_unclaimed(api, agent, &latest, wait).await.map(|_| None))
            }
            _ => None,
        };
        match decided {
            Some(Ok(admitted)) => return Ok(admitted),
            Some(Err(Error::Kube(kube::Error::Api(e)))) if e.code == 409 => conflicted = true,
            Some(Err(e)) => return Err(e),
            None => {}
        }
        tokio::select! {
            r = ledger.changed() => if r.is_err() { return Ok(None) },
            r = updates.changed() => {
                if r.is_err() {
                    return Ok(None);
                }
                conflicted = false;
            }
            _ = tokio::time::sleep_until(deadline), if Instant::now() < deadline => {}
        }
    }
}

/// Marks `p` `Failed`/`Unclaimed`.
async fn mark_unclaimed(api: &Api<Placement>, agent: &str, p: &Placement, wait: Duration) -> Result<Placement, Error> {
    let message = format!(
        "no claim for it in agent {agent}'s ledger after {}s: a placement runs only once a scheduler \
         or the allocator has claimed its resources on the agent",
        wait.as_secs()
    );
    tracing::warn!(placement = %p.name_any(), %message, "not starting an unclaimed placement");
    let status = serde_json::json!({
        "reason": REASON_UNCLAIMED,
        "message": message,
        "finishedAt": berth_api::now_rfc3339(),
    });
    write_from_pending(api, p, Phase::Failed, status).await
}

/// Writes `p`'s status from `Pending` to `to` (with the fields in `status`),
/// on the condition that `p` is unchanged since it was read: 409 otherwise.
async fn write_from_pending(
    api: &Api<Placement>,
    p: &Placement,
    to: Phase,
    mut status: serde_json::Value,
) -> Result<Placement, Error> {
    status["phase"] = serde_json::to_value(Phase::Pending.transition(to)?).unwrap_or_default();
    let patch = serde_json::json!({ "metadata": { "resourceVersion": p.resource_version() }, "status": status });
    Ok(api.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
}

/// Follows this agent's own `Agent` and hands its ledger to the gate until
/// `shutdown` resolves.
pub async fn follow_ledger<R: Runtime>(ctx: Arc<AgentContext<R>>, shutdown: impl Future<Output = ()> + Send) {
    let api: Api<Agent> = Api::all(ctx.client.clone());
    let wc = watcher::Config::default().fields(&format!("metadata.name={}", ctx.config.name));
    let mut events = watcher(api, wc).default_backoff().boxed();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => return,
            e = events.next() => match e { Some(e) => e, None => return },
        };
        match event {
            Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                ctx.gate.ledger_seen(a.status.map(|s| s.claims).unwrap_or_default())
            }
            Ok(watcher::Event::Delete(_)) => ctx.gate.ledger_seen(Vec::new()),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => tracing::warn!(error = %e, "watching this agent's ledger failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{PlacementSpec, Resources};

    fn placement(ns: &str, name: &str, uid: &str) -> Placement {
        let mut p = Placement::new(name, PlacementSpec::default());
        p.metadata.namespace = Some(ns.into());
        p.metadata.uid = Some(uid.into());
        p
    }

    fn claim(kind: ClaimKind, owner: &str, uid: &str) -> Claim {
        Claim {
            kind,
            owner: owner.into(),
            uid: uid.into(),
            resources: Resources::default(),
            ports: Vec::new(),
            created_at: None,
        }
    }

    #[test]
    fn a_claim_names_its_placement_by_owner_and_by_uid_when_it_has_one() {
        let p = placement("default", "web-0", "u1");
        assert!(holds_claim(&[claim(ClaimKind::Placement, "default/web-0", "")], &p), "a scheduler's claim");
        assert!(holds_claim(&[claim(ClaimKind::Placement, "default/web-0", "u1")], &p), "the allocator's claim");
        assert!(!holds_claim(&[claim(ClaimKind::Placement, "default/web-0", "u0")], &p), "an earlier namesake's");
        assert!(!holds_claim(&[claim(ClaimKind::Placement, "other/web-0", "")], &p), "another namespace's");
        assert!(!holds_claim(&[claim(ClaimKind::Hold, "default/web-0", "")], &p), "a hold is no placement claim");
        assert!(!holds_claim(&[], &p));
    }
}
