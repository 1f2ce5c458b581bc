//! The allocator's applier: makes a round's offers real and withdraws
//! rescinded ones. An offer is first a hold claim in its agent's ledger,
//! written with the agent's resourceVersion as precondition (on 409 the
//! agent is read again and the hold made only if it still fits — so two
//! allocators racing on the same capacity cannot both hold it), then the
//! `Offer` object. A rescind marks the Offer `Rescinded` and releases the hold.

use std::collections::BTreeMap;

use berth_api::{Agent, Claim, ClaimKind, Offer, OfferSpec, OfferState, ResourceVec};
use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::input::{NewOffer, RescindReason, RoundPlan};
use crate::Error;
use crate::scheduler::claim::without_claims;

/// How often one agent's ledger write is retried after a conflict.
const MAX_ATTEMPTS: usize = 8;

/// What applying a plan did.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// `namespace/name` of each Offer made (or found already made).
    pub made: Vec<String>,
    /// Offers not made: the agent no longer has room (another hold or claim won).
    pub refused: Vec<NewOffer>,
    /// `namespace/name` of each Offer rescinded.
    pub rescinded: Vec<String>,
}

/// The Offer's name: framework, agent and expiry, so re-applying a plan is idempotent.
pub fn offer_name(o: &NewOffer) -> String {
    let fw = o.framework.rsplit('/').next().unwrap_or(&o.framework);
    format!("{fw}-{}-{}", o.agent, o.expires_at.as_millisecond())
}

fn split(id: &str) -> (&str, &str) {
    id.split_once('/').unwrap_or(("default", id))
}

/// The `namespace/name` of the Offer that makes `o`.
pub fn offer_id(o: &NewOffer) -> String {
    format!("{}/{}", split(&o.framework).0, offer_name(o))
}

/// Applies `plan`: rescinds first (releasing holds), then makes offers.
pub async fn apply(client: &Client, plan: &RoundPlan, now: Timestamp) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    for (id, reason) in &plan.rescinds {
        rescind(client, id, *reason, now).await?;
        applied.rescinded.push(id.clone());
    }
    // Offers on different agents write different ledgers: they are made
    // concurrently, each agent's in plan order, so a round takes as long as
    // its busiest agent rather than the sum over the cluster (a long round
    // leaves answers unsettled and the round's offers half made).
    let mut by_agent: BTreeMap<&str, Vec<&NewOffer>> = BTreeMap::new();
    for o in &plan.offers {
        by_agent.entry(o.agent.as_str()).or_default().push(o);
    }
    let per_agent = by_agent.into_values().map(|offers| async move {
        let mut out = Vec::new();
        for o in offers {
            let made = make_offer(client, o, now).await;
            let failed = made.is_err();
            out.push((o, made));
            if failed {
                break;
            }
        }
        out
    });
    for (o, made) in futures::future::join_all(per_agent).await.into_iter().flatten() {
        match made? {
            Some(id) => applied.made.push(id),
            None => applied.refused.push(o.clone()),
        }
    }
    Ok(applied)
}

/// Holds `o`'s resources on its agent, then creates the Offer. `None` when
/// the agent no longer has room.
async fn make_offer(client: &Client, o: &NewOffer, now: Timestamp) -> Result<Option<String>, Error> {
    let (ns, fw) = split(&o.framework);
    let name = offer_name(o);
    let id = offer_id(o);
    let agents: Api<Agent> = Api::all(client.clone());
    let Some(held_ports) = hold(&agents, &o.agent, &id, o.resources, now).await? else {
        tracing::debug!(offer = %id, agent = %o.agent, "no longer fits; not offered");
        return Ok(None);
    };
    let offers: Api<Offer> = Api::namespaced(client.clone(), ns);
    let spec = OfferSpec {
        framework: fw.to_string(),
        agent: o.agent.clone(),
        resources: o.resources.to_resources(),
        ports: berth_api::ports::to_ranges(&held_ports),
        expires_at: Some(berth_api::format_time(o.expires_at)),
        decline: None,
    };
    match offers.create(&PostParams::default(), &Offer::new(&name, spec)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Made by an earlier application of this plan — unless it was
            // answered or rescinded since: then it is not made again.
            let closed =
                offers.get(&name).await?.status.and_then(|s| s.state).is_some_and(|s| s != OfferState::Outstanding);
            if closed {
                release(&agents, &o.agent, &id).await?;
                return Ok(None);
            }
        }
        Err(e) => {
            release(&agents, &o.agent, &id).await?;
            return Err(e.into());
        }
    }
    let status = json!({"status": {"state": "Outstanding"}});
    offers.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    tracing::info!(offer = %id, agent = %o.agent, resources = %o.resources, "offered");
    Ok(Some(id))
}

/// The agent with a hold for `owner` added, or `None` if it does not fit.
/// The hold takes every free host port of the agent (as Mesos offers all
/// of an agent's free port ranges); placements accepting the offer are
/// given theirs from it. A hold already there is kept as it is.
pub fn with_hold(agent: &Agent, owner: &str, resources: ResourceVec, now: Timestamp) -> Option<Agent> {
    let mut next = agent.clone();
    let status = next.status.get_or_insert_with(Default::default);
    if status.claims.iter().any(|c| c.owner == owner) {
        return Some(next);
    }
    if !resources.fits_in(&status.free().ok()?) {
        return None;
    }
    status.claims.push(Claim {
        kind: ClaimKind::Hold,
        owner: owner.to_string(),
        uid: String::new(),
        resources: resources.to_resources(),
        ports: status.free_ports().iter().flat_map(|r| r.begin..=r.end).collect(),
        created_at: Some(berth_api::format_time(now)),
    });
    status.allocated = status.claimed().ok()?.to_resources();
    Some(next)
}

/// Writes a hold with the agent's resourceVersion as precondition; the
/// host ports it holds, or `None` when it no longer fits.
async fn hold(
    api: &Api<Agent>,
    agent: &str,
    owner: &str,
    resources: ResourceVec,
    now: Timestamp,
) -> Result<Option<Vec<u16>>, Error> {
    for _ in 0..MAX_ATTEMPTS {
        let current = api.get(agent).await?;
        let Some(next) = with_hold(&current, owner, resources, now) else { return Ok(None) };
        let held = next.status.iter().flat_map(|s| &s.claims).find(|c| c.owner == owner);
        let ports = held.map(|c| c.ports.clone()).unwrap_or_default();
        if next.status == current.status {
            return Ok(Some(ports));
        }
        match api.replace_status(agent, &PostParams::default(), &next).await {
            Ok(_) => return Ok(Some(ports)),
            Err(kube::Error::Api(e)) if e.code == 409 => tracing::debug!(agent, "ledger moved; re-reading"),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Contended(agent.to_string()))
}

/// Removes `owner`'s claim from the agent's ledger (absent agent: nothing to do).
async fn release(api: &Api<Agent>, agent: &str, owner: &str) -> Result<(), Error> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = api.get_opt(agent).await? else { return Ok(()) };
        let next = without_claims(&current, &[owner.to_string()]);
        if next.status == current.status {
            return Ok(());
        }
        match api.replace_status(agent, &PostParams::default(), &next).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Contended(agent.to_string()))
}

/// Marks the Offer `Rescinded` with `reason` and releases its hold.
async fn rescind(client: &Client, id: &str, reason: RescindReason, now: Timestamp) -> Result<(), Error> {
    let (ns, name) = split(id);
    let offers: Api<Offer> = Api::namespaced(client.clone(), ns);
    let Some(offer) = offers.get_opt(name).await? else { return Ok(()) };
    let status = json!({"status": {
        "state": "Rescinded",
        "reason": reason.as_str(),
        "message": format!("rescinded: {}", reason.as_str()),
        "closedAt": berth_api::format_time(now),
    }});
    offers.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    release(&Api::all(client.clone()), &offer.spec.agent, id).await?;
    tracing::info!(offer = %id, reason = reason.as_str(), "rescinded");
    Ok(())
}
