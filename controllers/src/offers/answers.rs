//! The frameworks' answers. A decline (`spec.decline`) releases the hold and
//! closes the Offer `Declined`, recording the refuse time the planner's
//! filter honours. An accept — Placements whose `spec.offer` names the
//! offer — turns the hold into placement claims in one ledger write (with
//! the agent's resourceVersion as precondition, retried on 409), releasing
//! the remainder at once, and closes the Offer `Accepted`. Placements that
//! name another agent, exceed what is left of the offer, or name an offer
//! that is closed or expired are refused, naming why.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use berth_api::{Agent, Claim, ClaimKind, Offer, Placement, ResourceVec};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::inputs::{Caches, cluster_spec, is_open};
use super::refuse::refuse;
use crate::Error;

const MAX_ATTEMPTS: usize = 8;

/// How many answers are settled at once.
const SETTLE_CONCURRENCY: usize = 16;

fn key(obj: &impl ResourceExt) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Handles every answered offer in the caches.
pub async fn settle(client: &Client, c: &Caches, now: Timestamp) -> Result<(), Error> {
    let offers: HashMap<String, Arc<Offer>> = c.offers.state().into_iter().map(|o| (key(&*o), o)).collect();
    let mut naming: HashMap<String, Vec<Arc<Placement>>> = HashMap::new();
    // Every phase: a placement may be Pending, waiting at the agent for its claim, or already ended.
    for p in c.placements.state() {
        if let Some(o) = &p.spec.offer {
            naming.entry(format!("{}/{o}", p.namespace().unwrap_or_default())).or_default().push(p);
        }
    }
    let held: HashSet<String> = c
        .agents
        .state()
        .iter()
        .flat_map(|a| a.status.iter().flat_map(|s| &s.claims).filter(|c| c.kind == ClaimKind::Hold))
        .map(|c| c.owner.clone())
        .collect();
    let stamp = berth_api::format_time(now);
    // Each answer touches its own Offer and hold: they are settled
    // concurrently, so a round with many answers takes as long as the
    // slowest rather than the sum (answers on one agent race on its ledger;
    // the loser gets 409 and re-reads). Settled late, accepted tasks wait
    // for their claims and freed capacity waits for the next round.
    let answers = naming.into_iter().map(|(id, mut ps)| {
        let (offers, held, stamp) = (&offers, &held, &stamp);
        async move {
            ps.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.name_any()));
            // Settled answers stay in the caches; only a Pending placement or a hold left over needs work.
            let pending = ps.iter().any(|p| p.status.as_ref().is_none_or(|s| s.phase == berth_api::Phase::Pending));
            if !pending && !held.contains(&id) {
                return Ok(());
            }
            match offers.get(&id) {
                None => {
                    // The framework may have seen the Offer before this cache did.
                    let (ns, name) = id.split_once('/').unwrap_or_default();
                    if Api::<Offer>::namespaced(client.clone(), ns).get_opt(name).await?.is_some() {
                        return Ok(());
                    }
                    for p in &ps {
                        refuse(client, p, &format!("offer {id} does not exist"), stamp).await?;
                    }
                }
                Some(o) if o.status.as_ref().and_then(|s| s.state) == Some(berth_api::OfferState::Accepted) => {
                    finish_accept(client, o, &ps, now).await?
                }
                Some(o) if o.spec.decline.is_some() || !is_open(o) => {
                    let state = o.status.as_ref().and_then(|s| s.state).unwrap_or_default();
                    let state = if o.spec.decline.is_some() { berth_api::OfferState::Declined } else { state };
                    for p in &ps {
                        refuse(client, p, &format!("offer {id} is closed ({state:?})"), stamp).await?;
                    }
                }
                Some(o) => accept(client, o, &ps, now).await?,
            }
            Ok::<(), Error>(())
        }
    });
    futures::stream::iter(answers).buffer_unordered(SETTLE_CONCURRENCY).try_collect::<Vec<()>>().await?;
    let refuse_default = cluster_spec(&c.clusters).refuse_seconds();
    for o in offers.values().filter(|o| o.spec.decline.is_some() && is_open(o)) {
        decline(client, o, refuse_default, now).await?;
    }
    sweep_holds(client, c, &offers).await
}

/// Releases `o`'s hold and closes it `Declined`.
pub(super) async fn decline(client: &Client, o: &Offer, refuse_default: u32, now: Timestamp) -> Result<(), Error> {
    let secs = o.spec.decline.as_ref().and_then(|d| d.refuse_seconds).unwrap_or(refuse_default);
    let status = json!({"state": "Declined", "refuseSeconds": secs, "closedAt": berth_api::format_time(now),
        "message": format!("declined; agent {} is not offered again for {secs}s", o.spec.agent)});
    if close(client, o, status).await? {
        crate::scheduler::claim::release_on_agent(&Api::all(client.clone()), &o.spec.agent, &[key(o)]).await?;
        tracing::info!(offer = %key(o), refuse_seconds = secs, "declined");
    }
    Ok(())
}

/// Writes a closing status with the cached resourceVersion as precondition;
/// false when the Offer moved (the next round looks again).
async fn close(client: &Client, o: &Offer, status: serde_json::Value) -> Result<bool, Error> {
    let api: Api<Offer> = Api::namespaced(client.clone(), &o.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"resourceVersion": o.resource_version()}, "status": status});
    match api.patch_status(&o.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Which of `ps` (oldest first) `o` takes, and why each other one is refused;
/// expiry is checked only when `now` is given (an offer still open).
pub fn split_accept<'p>(
    o: &Offer,
    ps: &'p [Arc<Placement>],
    now: Option<Timestamp>,
) -> (Vec<&'p Placement>, Vec<(&'p Placement, String)>) {
    let id = key(o);
    let total = o.spec.resources.to_vec().unwrap_or_default();
    let expires: Option<Timestamp> = o.spec.expires_at.as_deref().and_then(|t| t.parse().ok());
    let mut left = total;
    let total_ports = berth_api::ports::count(&o.spec.ports);
    let mut ports_left = total_ports;
    let (mut take, mut refused) = (Vec::new(), Vec::new());
    for p in ps {
        let p = &**p;
        let need = p.spec.container.resources.to_vec();
        let why = if let Some(now) = now
            && expires.is_none_or(|e| now >= e)
        {
            Some(format!("offer {id} expired at {}", o.spec.expires_at.as_deref().unwrap_or("?")))
        } else if p.spec.agent != o.spec.agent {
            Some(format!("spec.agent {} is not offer {id}'s agent {}", p.spec.agent, o.spec.agent))
        } else if p.labels().get(FRAMEWORK_LABEL).is_some_and(|f| *f != o.spec.framework) {
            Some(format!("offer {id} is made to framework {}, not {}", o.spec.framework, p.labels()[FRAMEWORK_LABEL]))
        } else {
            match need {
                Err(e) => Some(format!("spec.resources.{}: {}", e.field, e.error)),
                Ok(need) if !need.fits_in(&left) => {
                    Some(format!("spec.resources {need} exceed what is left of offer {id}: {left} of {total}"))
                }
                Ok(_) if p.spec.container.ports.len() as u32 > ports_left => Some(format!(
                    "spec.ports: needs {} ports, offer {id} has {ports_left} left of {total_ports}",
                    p.spec.container.ports.len()
                )),
                Ok(need) => {
                    left = left.saturating_sub(&need);
                    ports_left -= p.spec.container.ports.len() as u32;
                    None
                }
            }
        };
        match why {
            None => take.push(p),
            Some(w) => refused.push((p, w)),
        }
    }
    (take, refused)
}

/// The label a Placement may carry naming its framework; when set, it must be the offer's.
pub use berth_api::LABEL_FRAMEWORK as FRAMEWORK_LABEL;

/// Closes `o` `Accepted` (first, so an open offer always has its hold),
/// then turns its hold into claims for the placements it takes.
pub(super) async fn accept(client: &Client, o: &Offer, ps: &[Arc<Placement>], now: Timestamp) -> Result<(), Error> {
    let stamp = berth_api::format_time(now);
    let (take, refused) = split_accept(o, ps, Some(now));
    if take.is_empty() {
        for (p, why) in &refused {
            refuse(client, p, why, &stamp).await?;
        }
        return Ok(());
    }
    let msg = format!("accepted by {} placement(s); the remainder was released", take.len());
    if !close(client, o, json!({"state": "Accepted", "closedAt": stamp, "message": msg})).await? {
        return Ok(());
    }
    tracing::info!(offer = %key(o), placements = take.len(), "accepted");
    finish_accept(client, o, ps, now).await
}

/// For an `Accepted` offer: its hold, if still in the ledger, becomes claims
/// for the placements it takes (the rest released); placements it cannot
/// take — and all of them once the hold is gone — are refused unless claimed.
async fn finish_accept(client: &Client, o: &Offer, ps: &[Arc<Placement>], now: Timestamp) -> Result<(), Error> {
    let id = key(o);
    let stamp = berth_api::format_time(now);
    let (take, refused) = split_accept(o, ps, None);
    let agents: Api<Agent> = Api::all(client.clone());
    let mut taken = false;
    for attempt in 0.. {
        if attempt == MAX_ATTEMPTS {
            return Err(Error::Contended(o.spec.agent.clone()));
        }
        let Some(current) = agents.get_opt(&o.spec.agent).await? else { break };
        let Some(next) = converted(&current, &id, &take, &stamp) else { break };
        match agents.replace_status(&o.spec.agent, &PostParams::default(), &next).await {
            Ok(_) => {
                taken = true;
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if !taken {
        for p in &take {
            refuse(client, p, &format!("offer {id} was already accepted; its remainder was released"), &stamp).await?;
        }
    }
    for (p, why) in &refused {
        refuse(client, p, why, &stamp).await?;
    }
    Ok(())
}

/// Releases holds whose offer was declined or rescinded but whose release
/// did not happen (the allocator stopped between the two writes).
async fn sweep_holds(client: &Client, c: &Caches, offers: &HashMap<String, Arc<Offer>>) -> Result<(), Error> {
    let api: Api<Agent> = Api::all(client.clone());
    for a in c.agents.state() {
        let stale: Vec<String> =
            a.status
                .iter()
                .flat_map(|s| &s.claims)
                .filter(|cl| cl.kind == ClaimKind::Hold)
                .filter(|cl| {
                    offers.get(&cl.owner).and_then(|o| o.status.as_ref()).and_then(|s| s.state).is_some_and(|st| {
                        matches!(st, berth_api::OfferState::Declined | berth_api::OfferState::Rescinded)
                    })
                })
                .map(|cl| cl.owner.clone())
                .collect();
        if !stale.is_empty() {
            crate::scheduler::claim::release_on_agent(&api, &a.name_any(), &stale).await?;
        }
    }
    Ok(())
}

/// The agent with `hold`'s claim replaced by placement claims for `take`,
/// each given its host ports from the hold's, lowest first; `None` when the
/// hold is gone (rescinded or already turned).
pub fn converted(agent: &Agent, hold: &str, take: &[&Placement], now: &str) -> Option<Agent> {
    let mut next = agent.clone();
    let status = next.status.as_mut()?;
    let at = status.claims.iter().position(|c| c.kind == ClaimKind::Hold && c.owner == hold)?;
    let mut held_ports = status.claims.remove(at).ports.into_iter();
    for p in take {
        let owner = key(*p);
        let finished = p.status.as_ref().is_some_and(|s| s.phase.is_terminal());
        if finished || status.claims.iter().any(|c| c.owner == owner) {
            continue;
        }
        let need: ResourceVec = p.spec.container.resources.to_vec().ok()?;
        let ports: Vec<u16> = held_ports.by_ref().take(p.spec.container.ports.len()).collect();
        if ports.len() < p.spec.container.ports.len() {
            continue; // split_accept refuses it: the offer has too few ports
        }
        status.claims.push(Claim {
            kind: ClaimKind::Placement,
            owner,
            uid: p.uid().unwrap_or_default(),
            resources: need.to_resources(),
            ports,
            created_at: Some(now.to_string()),
        });
    }
    status.allocated = status.claimed().ok()?.to_resources();
    Some(next)
}
