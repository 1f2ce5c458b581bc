//! Submitting a plan: each agent's share is claimed in one ledger write
//! with the agent's resourceVersion as precondition ([`claim_on_agent`]),
//! and gangs are kept whole across agents.
//!
//! How a gang stays all-or-nothing: its instances are claimed agent by
//! agent, so a later agent's conflict (another scheduler took the room
//! since the plan was made) can leave it part-claimed. Then every claim the
//! gang holds — made now or left by an earlier round — is released again
//! ([`release_on_agent`]) and none of its instances is returned as bound,
//! so no placement of it is created: no half gang runs, or holds resources
//! another gang waits for (two gangs cannot deadlock). Should a release
//! itself fail, the claim has no placement, and the ledger reconciler
//! releases it after `ORPHAN_GRACE`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use berth_api::Agent;
use futures::StreamExt;
use kube::api::Api;

use super::claim::{claim_on_agent, release_on_agent};
use super::plan::Plan;
use crate::Error;

/// What was claimed, and why some of the plan was not.
#[derive(Debug, Default)]
pub struct Applied {
    /// `(placement, agent)` for every instance that holds a claim and may
    /// get its placement: the plan's claims that succeeded plus the `held`
    /// ones passed in, less any gang that is not whole.
    pub bound: Vec<(String, String)>,
    /// Why part of the plan could not be claimed, if it could not.
    pub conflict: Option<String>,
    /// The agents as this wrote them (newer than any cache of them).
    pub written: Vec<Agent>,
}

/// How many agents' ledgers are written at once.
const CONCURRENT_CLAIMS: usize = 16;

/// Claims `plan` on the agents (`cached` are the agents it was planned
/// from). `held` are instances already holding a claim from an earlier
/// round; `gang_of` maps each gang instance's placement to its gang (task group).
pub async fn apply(
    api: &Api<Agent>,
    cached: &[Arc<Agent>],
    namespace: &str,
    plan: &Plan,
    held: Vec<(String, String)>,
    gang_of: &BTreeMap<String, String>,
    now: &str,
) -> Result<Applied, Error> {
    let mut broken: BTreeSet<String> =
        plan.unplaced.iter().filter_map(|(d, _)| gang_of.get(&d.placement).cloned()).collect();
    let mut applied = Applied { bound: held, ..Applied::default() };
    let by_name: HashMap<&str, &Arc<Agent>> =
        cached.iter().map(|a| (a.metadata.name.as_deref().unwrap_or_default(), a)).collect();
    // Different agents' ledgers are written concurrently; results are taken
    // in the plan's order, so the conflict reported does not depend on timing.
    let mut claims = Vec::new();
    for (agent, wanted) in &plan.assignments {
        let cache = by_name.get(agent.as_str()).map(|a| (***a).clone());
        claims.push(async move { (agent, wanted, claim_on_agent(api, cache, agent, namespace, wanted, now).await) });
    }
    let results: Vec<_> = futures::stream::iter(claims).buffered(CONCURRENT_CLAIMS).collect().await;
    for (agent, wanted, result) in results {
        let (claimed, written) = result?;
        applied.written.extend(written);
        let got: BTreeSet<&str> = claimed.iter().map(|c| c.placement.as_str()).collect();
        for d in wanted.iter().filter(|d| !got.contains(d.placement.as_str())) {
            let gang = gang_of.get(&d.placement).cloned();
            applied.conflict.get_or_insert_with(|| match &gang {
                Some(g) => format!("gang {g}: agent {agent} filled up while claiming; released its claims, retrying"),
                None => format!("agent {agent} filled up while placing; retrying"),
            });
            broken.extend(gang);
        }
        drop(got);
        applied.bound.extend(claimed.into_iter().map(|d| (d.placement, agent.clone())));
    }
    if broken.is_empty() {
        return Ok(applied);
    }
    let (drop, keep): (Vec<_>, Vec<_>) =
        applied.bound.into_iter().partition(|(p, _)| gang_of.get(p).is_some_and(|g| broken.contains(g)));
    applied.bound = keep;
    let mut by_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (p, agent) in drop {
        by_agent.entry(agent).or_default().push(format!("{namespace}/{p}"));
    }
    for (agent, owners) in by_agent {
        match release_on_agent(api, &agent, &owners).await {
            Ok(()) => tracing::info!(%agent, released = ?owners, "released an incomplete gang's claims"),
            Err(error) => {
                tracing::warn!(%agent, %error, "could not release a gang's claims; the ledger reconciler will")
            }
        }
    }
    Ok(applied)
}
