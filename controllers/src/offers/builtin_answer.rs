//! The built-in batch scheduler answering its offers, once per allocation
//! round, right after the round's offers are made (so all the offers
//! outstanding to it at that moment are seen together — a gang is taken
//! only if it fits whole in them). For each `Offers` / `builtin-batch`
//! framework: plan its Jobs' waiting instances over its open offers
//! ([`plan_jobs`]), create their Placements naming the offer (label
//! `berth.dev/framework`, owned by the Job), accept each used offer at once
//! (its hold becomes their claims), and decline every offer it cannot use
//! with a short refusal, so it comes back when things change. Nothing is
//! held for a gang that does not fit. Why an instance waits is told by the
//! Job reconciler, which owns the Job's status.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use berth_api::framework::{Mode, Scheduler};
use berth_api::{Agent, Framework, Offer, Placement, ResourceVec};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::answers::{self, FRAMEWORK_LABEL};
use super::builtin::{Planned, pending, plan_jobs};
use super::inputs::{Caches, is_open};
use crate::Error;
use crate::allocator::apply::{Applied, offer_name};
use crate::allocator::{Input, RoundPlan};
use crate::scheduler::plan::AgentView;

/// How long a declined offer's agent is not offered again: short, so it
/// returns as soon as what the framework waits for may have changed.
pub const REFUSE_SECONDS: u32 = 1;

/// What the answerer knows that the caches may not show yet.
#[derive(Debug, Default)]
pub struct Memory {
    /// Offers (`namespace/name`) it answered, until the cache shows them closed.
    answered: HashSet<String>,
    /// Placements (`namespace/name`) it created, until the cache shows them.
    created: HashSet<String>,
    /// Offers the loop made, until the cache shows them.
    pub made: super::recent::Made,
}

/// True for a framework this module answers for.
pub fn is_builtin_offers(fw: &Framework) -> bool {
    fw.spec.mode == Mode::Offers && fw.spec.scheduler == Scheduler::BuiltinBatch
}

/// An offer open to a framework: `(namespace/name, agent, resources, expires at)`.
type Open = (String, String, ResourceVec, Timestamp);

/// Answers the open offers of every builtin-batch `Offers` framework.
pub async fn answer(
    client: &kube::Client,
    c: &Caches,
    input: &Input,
    plan: &RoundPlan,
    applied: &Applied,
    now: Timestamp,
    memory: &mut Memory,
) -> Result<(), Error> {
    let placements = c.placements.state();
    let offers = c.offers.state();
    let cached: BTreeMap<String, &Arc<Offer>> = offers.iter().map(|o| (key(&**o), o)).collect();
    if !memory.created.is_empty() {
        let seen: HashSet<String> = placements.iter().map(|p| key(&**p)).collect();
        memory.created.retain(|p| !seen.contains(p));
    }
    memory.answered.retain(|o| cached.get(o).is_none_or(|o| is_open(o) && o.spec.decline.is_none()));
    let named: HashSet<String> = placements
        .iter()
        .filter_map(|p| Some(format!("{}/{}", p.namespace().unwrap_or_default(), p.spec.offer.as_ref()?)))
        .collect();
    let rescinded: HashSet<&str> = plan.rescinds.iter().map(|(id, _)| id.as_str()).collect();
    let kept =
        input.offers.iter().map(|o| (o.id.clone(), o.framework.clone(), o.agent.clone(), o.resources, o.expires_at));
    let made = plan.offers.iter().filter_map(|n| {
        let ns = n.framework.split_once('/')?.0;
        let id = format!("{ns}/{}", offer_name(n));
        applied.made.contains(&id).then(|| (id, n.framework.clone(), n.agent.clone(), n.resources, n.expires_at))
    });
    let mut open: BTreeMap<String, Vec<Open>> = BTreeMap::new();
    for (id, fw, agent, resources, expires) in kept.chain(made) {
        if rescinded.contains(id.as_str()) || named.contains(&id) || memory.answered.contains(&id) || now >= expires {
            continue;
        }
        open.entry(fw).or_default().push((id, agent, resources, expires));
    }
    let jobs = c.jobs.state();
    // Offers are made only on agents the cluster selects; the views follow.
    let selector = super::inputs::cluster_spec(&c.clusters).agent_selector;
    let agents: Vec<Arc<Agent>> =
        c.agents.state().into_iter().filter(|a| crate::scheduler::plan::selected(a, &selector)).collect();
    for fw in c.frameworks.state().iter().filter(|f| is_builtin_offers(f)) {
        let id = key(&**fw);
        let Some(mine) = open.get(&id) else { continue };
        let waiting = pending(fw, &jobs, &placements, &memory.created, now);
        let (taken, deferred) = place(client, fw, &waiting, &agents, mine, now, memory).await;
        for (offer_id, _, _, _) in mine {
            // Planned on, but past this round's share: left open for the next round.
            if !taken.contains_key(offer_id) && deferred.contains(offer_id) {
                continue;
            }
            let answered = match taken.get(offer_id) {
                // Named by its placements from now on, so never answered twice.
                Some(ps) => {
                    memory.answered.insert(offer_id.clone());
                    accept(client, offer_id, ps, now).await
                }
                None => decline(client, offer_id, REFUSE_SECONDS, now).await,
            };
            match answered {
                Ok(()) => {
                    memory.answered.insert(offer_id.clone());
                }
                // The next round settles an accept, or declines again.
                Err(error) => tracing::warn!(offer = %offer_id, %error, "could not answer an offer"),
            }
        }
    }
    Ok(())
}

/// How many placements one round creates: their offers are accepted well
/// before they expire (`offerTimeoutSeconds`, 30 s by default).
const PER_ROUND: usize = 1_000;
/// How many placements are created at once.
const CONCURRENT_CREATES: usize = 64;

/// Plans `waiting` over the offers `mine` and creates the placements, at
/// most [`PER_ROUND`] (more when a gang would be split); returns them by
/// offer id (one that could not be created is logged and left out: its
/// offer may then be declined, and the next round tries again), and the
/// offers planned on only past the share, which are not to be declined.
async fn place(
    client: &kube::Client,
    fw: &Framework,
    waiting: &[super::builtin::PendingJob<'_>],
    agents: &[Arc<Agent>],
    mine: &[Open],
    now: Timestamp,
    memory: &mut Memory,
) -> (BTreeMap<String, Vec<Arc<Placement>>>, BTreeSet<String>) {
    let mut taken: BTreeMap<String, Vec<Arc<Placement>>> = BTreeMap::new();
    let mut deferred = BTreeSet::new();
    if waiting.is_empty() {
        return (taken, deferred);
    }
    // One view per agent: the largest offer there (the allocator makes one per agent and framework).
    let mut by_agent: BTreeMap<&str, &Open> = BTreeMap::new();
    for o in mine {
        let best = by_agent.entry(o.1.as_str()).or_insert(o);
        if best.2.fits_in(&o.2) {
            *best = o;
        }
    }
    let mut views: Vec<AgentView> = agents
        .iter()
        .map(|a| {
            let mut v = AgentView::of(a, &BTreeMap::new());
            let offer = by_agent.get(v.name.as_str());
            v.free = offer.map(|o| o.2).unwrap_or_default();
            // The offer's ports are its hold's (a hold made this round, not
            // yet in the cache, takes what the cache shows free).
            v.free_ports = match offer {
                Some(o) => hold_ports(a, &o.0).unwrap_or(v.free_ports),
                None => Vec::new(),
            };
            v
        })
        .collect();
    let seed = now.as_nanosecond() as u64;
    let mut planned = plan_jobs(waiting, &mut views, seed).placed;
    if planned.len() > PER_ROUND {
        let cut = planned.split_off(PER_ROUND);
        let gang = |p: &Planned| waiting[p.job].job.spec.task_groups.iter().any(|g| g.name == p.group && g.gang);
        let kept: BTreeSet<(usize, &str)> =
            planned.iter().filter(|p| gang(p)).map(|p| (p.job, p.group.as_str())).collect();
        match cut.iter().any(|c| gang(c) && kept.contains(&(c.job, c.group.as_str()))) {
            // A gang is placed whole or not at all.
            true => planned.extend(cut),
            false => deferred.extend(cut.iter().filter_map(|c| by_agent.get(c.agent.as_str())).map(|o| o.0.clone())),
        }
    }
    let ns = fw.namespace().unwrap_or_default();
    let api: Api<Placement> = Api::namespaced(client.clone(), &ns);
    let mut creates = Vec::new();
    for p in planned {
        let Some((offer_id, _, _, expires)) = by_agent.get(p.agent.as_str()) else { continue };
        let job = waiting[p.job].job;
        let Some(group) = job.spec.task_groups.iter().find(|g| g.name == p.group) else { continue };
        let mut placement = crate::job::new_placement(job, group, (p.instance, p.attempt), &p.placement, &p.agent);
        placement.spec.offer = offer_id.split_once('/').map(|(_, name)| name.to_string());
        placement.labels_mut().insert(FRAMEWORK_LABEL.to_string(), fw.name_any());
        let api = api.clone();
        // Not started this close to the offer's expiry (the API server
        // refuses a placement on an expired offer); the next offer serves it.
        let last_start = *expires - SignedDuration::from_secs(2);
        creates.push(async move {
            let result = match Timestamp::now() < last_start {
                true => Some(api.create(&PostParams::default(), &placement).await),
                false => None,
            };
            (p, offer_id, result)
        });
    }
    let results: Vec<_> = futures::stream::iter(creates).buffered(CONCURRENT_CREATES).collect().await;
    let late = results.iter().filter(|r| r.2.is_none()).count();
    for (p, offer_id, result) in results {
        // Too late for this offer: not declined (which would refuse the agent), left to expire.
        let Some(result) = result else {
            deferred.insert(offer_id.clone());
            continue;
        };
        match result {
            Ok(created) => {
                tracing::debug!(placement = %p.placement, agent = %p.agent, offer = %offer_id, "placed through an offer");
                memory.created.insert(format!("{ns}/{}", p.placement));
                taken.entry(offer_id.clone()).or_default().push(Arc::new(created));
            }
            // Made by an earlier round the cache has not shown yet: that round answered for it.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                memory.created.insert(format!("{ns}/{}", p.placement));
            }
            // One Job's bad placement must not keep the framework's other Jobs waiting.
            Err(error) => tracing::warn!(placement = %p.placement, %error, "could not create a placement"),
        }
    }
    if !taken.is_empty() {
        let placed: usize = taken.values().map(Vec::len).sum();
        tracing::info!(framework = %fw.name_any(), placed, offers = taken.len(), deferred = deferred.len(), late, "placed through offers");
    }
    (taken, deferred)
}

/// The host ports offer `id`'s hold holds in `agent`'s ledger, if it is there.
fn hold_ports(agent: &Agent, id: &str) -> Option<Vec<berth_api::ports::PortRange>> {
    let claims = &agent.status.as_ref()?.claims;
    let hold = claims.iter().find(|c| c.kind == berth_api::ClaimKind::Hold && c.owner == id)?;
    Some(berth_api::ports::to_ranges(&hold.ports))
}

/// Accepts offer `id` for `ps` at once: closes it and turns its hold into their claims.
async fn accept(client: &kube::Client, id: &str, ps: &[Arc<Placement>], now: Timestamp) -> Result<(), Error> {
    let (ns, name) = id.split_once('/').unwrap_or_default();
    let Some(o) = Api::<Offer>::namespaced(client.clone(), ns).get_opt(name).await? else { return Ok(()) };
    answers::accept(client, &o, ps, now).await
}

/// Declines offer `id` as a framework would (`spec.decline`, written only
/// while it is still open), then closes it and releases its hold.
async fn decline(client: &kube::Client, id: &str, refuse_seconds: u32, now: Timestamp) -> Result<(), Error> {
    let (ns, name) = id.split_once('/').unwrap_or_default();
    let api: Api<Offer> = Api::namespaced(client.clone(), ns);
    let Some(o) = api.get_opt(name).await? else { return Ok(()) };
    if !is_open(&o) || o.spec.decline.is_some() {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"resourceVersion": o.resource_version()},
        "spec": {"decline": {"refuseSeconds": refuse_seconds}},
    });
    let o = match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(o) => o,
        // It moved (rescinded, or gone): the next round looks again.
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    tracing::debug!(offer = %id, "declined: none of the framework's waiting tasks can use it");
    answers::decline(client, &o, refuse_seconds, now).await
}

fn key(obj: &impl ResourceExt) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
