//! Shared-state placement of a Job's missing instances: planned over the
//! agent cache, claimed on the agents' ledgers, then given `Placement`s.
//!
//! A big Job is placed in rounds of at most [`ROUND`] instances: each
//! round's claims get their placements long before the ledger controller
//! would release them as orphans (`ledger::ORPHAN_GRACE`). Each round plans
//! over the agents as the round before wrote them (the cache may not show
//! those writes yet), and sees the placements created so far (for `spread`
//! and constraints). A gang's instances are never split across rounds. After
//! [`BUDGET`] the reconcile returns with `more` set (so the Job's status
//! moves) and is queued again at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::constraint::Constraint;
use berth_api::{Agent, Job, Placement};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use crate::attempts::Needed;
use crate::job::{new_placement, placement_name};
use crate::scheduler::apply::apply;
use crate::scheduler::plan::{AgentView, Demand, Group, Request, plan};
use crate::{Context, Error};

/// The most instances one round claims before creating their placements.
const ROUND: usize = 2_000;
/// How long one reconcile keeps starting rounds.
const BUDGET: Duration = Duration::from_secs(10);
/// How many placements are created at once.
const CONCURRENT_CREATES: usize = 128;

pub(crate) struct Placed {
    pub placements: Vec<Placement>,
    pub unplaced: Option<String>,
    /// Instances were left for the next reconcile (the time budget ran out).
    pub more: bool,
}

/// Claims and creates placements for `missing` instances. A claim left in a
/// ledger by an earlier round whose placement was never created is reused.
/// `live` are the Job's non-terminal placements (what constraints and
/// `spread` count).
pub(crate) async fn place(
    job: &Job,
    ctx: &Context,
    ns: &str,
    missing: &[Needed<'_>],
    live: &[&Placement],
    now: &str,
) -> Result<Placed, Error> {
    let started = Instant::now();
    let name = job.name_any();
    let mut agents: Vec<Arc<Agent>> = ctx.agents.state();
    let index: HashMap<String, usize> = agents.iter().enumerate().map(|(i, a)| (a.name_any(), i)).collect();
    let held = held_claims(&agents, &format!("{ns}/{name}-"));
    let mut placed = Placed { placements: Vec::new(), unplaced: None, more: false };
    for chunk in rounds(missing) {
        if started.elapsed() > BUDGET {
            placed.more = true;
            break;
        }
        let live_now: Vec<&Placement> = live.iter().copied().chain(&placed.placements).collect();
        let round = match round(job, ctx, ns, &chunk, &live_now, &agents, &held, now).await {
            Ok(round) => round,
            // What earlier rounds created is kept (and expected); the rest is retried at once.
            Err(error) if !placed.placements.is_empty() => {
                tracing::warn!(%error, "a placement round failed; retrying the rest");
                placed.more = true;
                break;
            }
            Err(error) => return Err(error),
        };
        for a in round.written {
            if let Some(&i) = index.get(&a.name_any()) {
                agents[i] = Arc::new(a);
            }
        }
        placed.placements.extend(round.placements);
        if round.unplaced.is_some() {
            placed.unplaced = round.unplaced;
            break;
        }
    }
    if !placed.placements.is_empty() {
        let on: BTreeSet<&str> = placed.placements.iter().map(|p| p.spec.agent.as_str()).collect();
        tracing::info!(
            placed = placed.placements.len(),
            agents = on.len(),
            millis = started.elapsed().as_millis() as u64,
            more = placed.more,
            "placed"
        );
    }
    Ok(placed)
}

/// `missing` cut into rounds of about [`ROUND`], each gang's instances in
/// the round of its first.
fn rounds<'a>(missing: &[Needed<'a>]) -> Vec<Vec<Needed<'a>>> {
    let mut rounds: Vec<Vec<Needed>> = vec![Vec::new()];
    let mut gang_round: HashMap<&str, usize> = HashMap::new();
    for &n in missing {
        let (g, _, _) = n;
        let last = rounds.len() - 1;
        let r = match g.gang {
            true => *gang_round.entry(g.name.as_str()).or_insert(last),
            false => last,
        };
        rounds[r].push(n);
        if rounds[last].len() >= ROUND {
            rounds.push(Vec::new());
        }
    }
    rounds.retain(|r| !r.is_empty());
    rounds
}

/// Claim owner → agent, for the claims whose owner starts with `prefix`
/// (this Job's), in every agent's ledger.
fn held_claims(agents: &[Arc<Agent>], prefix: &str) -> HashMap<String, String> {
    let mut held = HashMap::new();
    for a in agents {
        for c in a.status.iter().flat_map(|s| &s.claims).filter(|c| c.owner.starts_with(prefix)) {
            held.insert(c.owner.clone(), a.name_any());
        }
    }
    held
}

/// What one round claimed and created.
struct Round {
    placements: Vec<Placement>,
    unplaced: Option<String>,
    written: Vec<Agent>,
}

#[allow(clippy::too_many_arguments)]
async fn round(
    job: &Job,
    ctx: &Context,
    ns: &str,
    missing: &[Needed<'_>],
    live: &[&Placement],
    agents: &[Arc<Agent>],
    held: &HashMap<String, String>,
    now: &str,
) -> Result<Round, Error> {
    let name = job.name_any();
    let selector = crate::offers::inputs::cluster_spec(&ctx.clusters).agent_selector;
    let mut views: Vec<AgentView> = agents.iter().map(|a| AgentView::of(a, &selector)).collect();
    let first = crate::priority::hold_for_higher(
        job,
        &ctx.jobs.state(),
        &ctx.placements.state(),
        &mut views,
        jiff::Timestamp::now(),
    );
    let group_of: BTreeMap<String, Needed> =
        missing.iter().map(|&(g, i, a)| (placement_name(&name, &g.name, i, a), (g, i, a))).collect();

    // Instances already holding a claim (an earlier round claimed, then
    // failed before creating the placement) are bound to that agent.
    let mut bound: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    let mut job_tasks: BTreeMap<String, u32> = BTreeMap::new();
    let mut placed_by_group: HashMap<&str, Vec<String>> = HashMap::new();
    for p in live {
        *job_tasks.entry(p.spec.agent.clone()).or_default() += 1;
        placed_by_group.entry(p.spec.task_group.as_str()).or_default().push(p.spec.agent.clone());
    }
    for g in &job.spec.task_groups {
        let placed = placed_by_group.remove(g.name.as_str()).unwrap_or_default();
        let constraints = g.constraints.iter().filter_map(|c| Constraint::parse(c).ok()).collect();
        groups.insert(&g.name, Group { constraints, gang: g.gang, placed, demands: Vec::new() });
    }
    for (g, i, a) in missing {
        let pname = placement_name(&name, &g.name, *i, *a);
        let group = groups.get_mut(g.name.as_str()).expect("every task group has an entry");
        match held.get(&format!("{ns}/{pname}")) {
            Some(agent) => {
                group.placed.push(agent.clone());
                *job_tasks.entry(agent.clone()).or_default() += 1;
                bound.push((pname, agent.clone()));
            }
            None => {
                let ports = g.container.ports.len() as u32;
                group.demands.push(Demand::new(pname, g.container.resources.to_vec()?, ports))
            }
        }
    }

    let seed = jiff::Timestamp::now().as_nanosecond() as u64 ^ fnv1a(job.uid().unwrap_or_default().as_bytes());
    let request = Request { strategy: job.spec.strategy, seed, job_tasks, groups: groups.into_values().collect() };
    let plan = plan(&views, &request);
    let gang_of: BTreeMap<String, String> =
        group_of.iter().filter(|(_, (g, _, _))| g.gang).map(|(p, (g, _, _))| (p.clone(), g.name.clone())).collect();
    let agents_api: Api<Agent> = Api::all(ctx.client.clone());
    let applied = apply(&agents_api, agents, ns, &plan, bound, &gang_of, now).await?;
    // With several task groups, the message says whose tasks wait.
    let several = job.spec.task_groups.len() > 1;
    let unplaced = plan
        .unplaced
        .first()
        .map(|(d, why)| match several {
            true => format!("task group {}: {why}", group_of[&d.placement].0.name),
            false => why.clone(),
        })
        .map(|why| match first.is_empty() {
            true => why,
            false => format!("{why} (after higher-priority Jobs waiting: {})", first.join(", ")),
        })
        .or(applied.conflict);

    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), ns);
    // Created several at a time: the store commits concurrent writes
    // together, and a claim whose placement is slow to appear is released
    // by the ledger controller as an orphan.
    let creates = applied.bound.into_iter().map(|(pname, agent)| {
        let api = api.clone();
        let (group, instance, attempt) = group_of[&pname];
        let p = new_placement(job, group, (instance, attempt), &pname, &agent);
        async move {
            match api.create(&PostParams::default(), &p).await {
                Ok(created) => {
                    tracing::debug!(placement = %pname, %agent, "placed");
                    Ok(created)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(api.get(&pname).await?),
                Err(e) => Err(Error::from(e)),
            }
        }
    });
    let results: Vec<Result<Placement, Error>> =
        futures::stream::iter(creates).buffer_unordered(CONCURRENT_CREATES).collect().await;
    let placements = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(Round { placements, unplaced, written: applied.written })
}

/// FNV-1a: mixes the Job's UID into the `random` strategy's seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
