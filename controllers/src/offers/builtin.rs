//! The built-in batch scheduler in `Offers` mode, its pure part: which
//! instances of a framework's Jobs wait for a placement, what the framework
//! therefore asks the allocator for (the sum of those instances, offered in
//! units of the smallest, only on agents where at least one of them may go
//! under its group's constraints), and how its open offers are used — the
//! same planner as shared-state mode ([`plan`]: strategy, constraints,
//! gangs all or nothing), run over agent views whose free capacity is only
//! what is offered. The writes are in `builtin_answer`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use berth_api::constraint::Constraint;
use berth_api::{Framework, Job, Placement, ResourceVec};
use jiff::Timestamp;
use kube::ResourceExt;

use crate::allocator::Demand;
use crate::allocator::snapshot::demand_of;
use crate::attempts::Needed;
use crate::batch;
use crate::job::placement_name;
use crate::job_status;
use crate::scheduler::constraints::exclusions;
use crate::scheduler::plan::{AgentView, Demand as Task, Group, Request, plan};

/// One Job with instances that have no placement yet.
#[derive(Clone, Debug)]
pub struct PendingJob<'a> {
    pub job: &'a Job,
    /// The Job's non-terminal placements (what constraints and `spread` count).
    pub live: Vec<&'a Placement>,
    /// The instances without a live or finished placement, in spec order,
    /// with the attempt each needs now (`batch::needed`: dependencies,
    /// parallelism, backoff, suspend and deadline obeyed).
    pub missing: Vec<Needed<'a>>,
}

/// A placement to create: instance `instance` of `group` of `pending[job]`, on `agent`.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub job: usize,
    pub group: String,
    pub instance: u32,
    pub attempt: u32,
    pub placement: String,
    pub agent: String,
}

/// What planning a framework's pending Jobs over some agents gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Planning {
    pub placed: Vec<Planned>,
    /// Per Job (index into the pending Jobs), why its first unplaced instance fits nowhere.
    pub unplaced: BTreeMap<usize, String>,
}

/// The pending instances of `job` given its placements in the store
/// (`named`: those whose `spec.job` names it, in its namespace) and those
/// `created` (`namespace/name`) but not yet seen there. `None` when the Job
/// is finished, being deleted, or has a constraint that does not parse.
pub fn pending_job<'a>(
    job: &'a Job,
    named: &[&'a Placement],
    created: &HashSet<String>,
    now: Timestamp,
) -> Option<PendingJob<'a>> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    if job_status::is_finished(job)
        || job.metadata.deletion_timestamp.is_some()
        || berth_api::constraint::validate(&job.spec.task_groups).is_err()
        || berth_api::ports::validate(&job.spec.task_groups).is_err()
    {
        return None;
    }
    let uid = job.uid().unwrap_or_default();
    let own: Vec<&Placement> =
        named.iter().copied().filter(|p| p.owner_references().iter().any(|o| o.uid == uid)).collect();
    let missing = batch::needed(job, &own, now)
        .into_iter()
        .filter(|(g, i, a)| !created.contains(&format!("{ns}/{}", placement_name(&name, &g.name, *i, *a))))
        .collect::<Vec<_>>();
    let live = own.into_iter().filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal())).collect();
    Some(PendingJob { job, live, missing })
}

/// The Jobs of builtin framework `fw` with instances waiting, first served
/// first: higher `spec.priority`, then older, then by name.
pub fn pending<'a>(
    fw: &Framework,
    jobs: &'a [Arc<Job>],
    placements: &'a [Arc<Placement>],
    created: &HashSet<String>,
    now: Timestamp,
) -> Vec<PendingJob<'a>> {
    let (ns, name) = (fw.namespace(), fw.name_any());
    let mut mine: Vec<&Job> =
        jobs.iter().filter(|j| j.namespace() == ns && j.spec.framework.as_ref() == Some(&name)).map(|j| &**j).collect();
    mine.sort_by_key(|j| {
        (std::cmp::Reverse(j.spec.priority.unwrap_or(0)), j.creation_timestamp().map(|t| t.0), j.name_any())
    });
    if mine.is_empty() {
        return Vec::new();
    }
    let mut by_job: BTreeMap<(Option<String>, &str), Vec<&Placement>> = BTreeMap::new();
    for p in placements {
        by_job.entry((p.namespace(), p.spec.job.as_str())).or_default().push(p);
    }
    mine.into_iter()
        .filter_map(|j| {
            let named = by_job.get(&(j.namespace(), j.metadata.name.as_deref().unwrap_or_default()));
            pending_job(j, named.map(Vec::as_slice).unwrap_or_default(), created, now)
        })
        .filter(|p| !p.missing.is_empty())
        .collect()
}

/// What the framework asks the allocator for: its demand (`None` when
/// nothing waits) and the agents at least one waiting instance may go to.
pub fn wants(pending: &[PendingJob], agents: &[AgentView]) -> (Option<Demand>, Option<BTreeSet<String>>) {
    let tasks: Vec<ResourceVec> =
        pending.iter().flat_map(|p| &p.missing).filter_map(|(g, _, _)| g.container.resources.to_vec().ok()).collect();
    let Some(demand) = demand_of(&tasks) else { return (None, None) };
    let mut usable = BTreeSet::new();
    let index: HashMap<&str, &AgentView> = agents.iter().map(|a| (a.name.as_str(), a)).collect();
    for p in pending {
        let waiting: BTreeSet<&str> = p.missing.iter().map(|(m, _, _)| m.name.as_str()).collect();
        for g in p.job.spec.task_groups.iter().filter(|g| waiting.contains(g.name.as_str())) {
            let constraints: Vec<Constraint> = g.constraints.iter().filter_map(|c| Constraint::parse(c).ok()).collect();
            // Where the group runs matters only to its constraints.
            let on: Vec<&AgentView> = match constraints.is_empty() {
                true => Vec::new(),
                false => p
                    .live
                    .iter()
                    .filter(|l| l.spec.task_group == g.name)
                    .filter_map(|l| index.get(l.spec.agent.as_str()).copied())
                    .collect(),
            };
            let ruled_out = exclusions(&constraints, agents, &on);
            for (a, why) in agents.iter().zip(ruled_out) {
                if a.excluded.is_none() && why.is_none() {
                    usable.insert(a.name.clone());
                }
            }
        }
    }
    (Some(demand), Some(usable))
}

/// Plans the pending Jobs in order over `agents`, each Job taking what the
/// ones before it left (`agents`' free capacity is reduced accordingly).
pub fn plan_jobs(pending: &[PendingJob], agents: &mut [AgentView], seed: u64) -> Planning {
    let mut out = Planning::default();
    for (j, p) in pending.iter().enumerate() {
        let name = p.job.name_any();
        let mut job_tasks: BTreeMap<String, u32> = BTreeMap::new();
        for l in &p.live {
            *job_tasks.entry(l.spec.agent.clone()).or_default() += 1;
        }
        let mut group_of: BTreeMap<String, Needed> = BTreeMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for g in &p.job.spec.task_groups {
            let placed = p.live.iter().filter(|l| l.spec.task_group == g.name).map(|l| l.spec.agent.clone()).collect();
            let constraints = g.constraints.iter().filter_map(|c| Constraint::parse(c).ok()).collect();
            let mut demands = Vec::new();
            for (_, i, a) in p.missing.iter().filter(|(m, _, _)| m.name == g.name) {
                let Ok(resources) = g.container.resources.to_vec() else { continue };
                let placement = placement_name(&name, &g.name, *i, *a);
                group_of.insert(placement.clone(), (g, *i, *a));
                demands.push(Task::new(placement, resources, g.container.ports.len() as u32));
            }
            groups.push(Group { constraints, gang: g.gang, placed, demands });
        }
        let request = Request { strategy: p.job.spec.strategy, seed: seed ^ j as u64, job_tasks, groups };
        let planned = plan(agents, &request);
        let index: HashMap<String, usize> = agents.iter().enumerate().map(|(i, a)| (a.name.clone(), i)).collect();
        for (agent, tasks) in &planned.assignments {
            let Some(view) = index.get(agent).map(|&i| &mut agents[i]) else { continue };
            for t in tasks {
                view.free = view.free.saturating_sub(&t.resources);
                let (g, instance, attempt) = group_of[&t.placement];
                out.placed.push(Planned {
                    job: j,
                    group: g.name.clone(),
                    instance,
                    attempt,
                    placement: t.placement.clone(),
                    agent: agent.clone(),
                });
            }
        }
        if let Some((d, why)) = planned.unplaced.first() {
            let msg = match p.job.spec.task_groups.len() > 1 {
                true => format!("task group {}: {why}", group_of[&d.placement].0.name),
                false => why.clone(),
            };
            out.unplaced.insert(j, msg);
        }
    }
    out
}

#[cfg(test)]
#[path = "builtin_tests.rs"]
mod tests;
