//! The pure planner: a snapshot of agents and the tasks to place in, a plan
//! out. No I/O and no clock, so tests drive it directly.

use std::collections::{BTreeMap, HashMap};

use berth_api::constraint::{Constraint, Strategy};
use berth_api::ports::{self, PortRange};
use berth_api::{Agent, ResourceVec};

use super::choose::{Ranked, SplitMix64, choose, fits};
use super::constraints;
use super::explain::explain;

/// What the planner needs to know of one agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentView {
    pub name: String,
    /// Allocatable less every claim in its ledger.
    pub free: ResourceVec,
    /// Its host ports that no claim holds.
    pub free_ports: Vec<PortRange>,
    /// Why it takes no placements at all (`not ready`, `unschedulable`), if so.
    pub excluded: Option<&'static str>,
    /// What constraints match: the Agent's labels, then its
    /// `spec.attributes` (which win), and `hostname` (its
    /// `status.hostname`, or its name when absent).
    pub attributes: BTreeMap<String, String>,
}

impl AgentView {
    /// The planner's view of an agent; one outside the cluster's agent
    /// `selector` (labels that must all match) or whose ledger cannot be
    /// read is excluded.
    pub fn of(agent: &Agent, selector: &BTreeMap<String, String>) -> AgentView {
        let name = agent.metadata.name.clone().unwrap_or_default();
        let status = agent.status.clone().unwrap_or_default();
        let free = status.free();
        let excluded = if !selected(agent, selector) {
            Some("outside the cluster's agentSelector")
        } else if agent.spec.unschedulable {
            Some("unschedulable")
        } else if !status.is_ready() {
            Some("not ready")
        } else if free.is_err() {
            Some("unreadable ledger")
        } else {
            None
        };
        let mut attributes = agent.metadata.labels.clone().unwrap_or_default();
        attributes.extend(agent.spec.attributes.clone());
        attributes.insert("hostname".into(), status.hostname.clone().unwrap_or_else(|| name.clone()));
        let free_ports = status.free_ports();
        AgentView { name, free: free.unwrap_or_default(), free_ports, excluded, attributes }
    }
}

/// Whether `agent` carries every label of the cluster's agent `selector`.
pub fn selected(agent: &Agent, selector: &BTreeMap<String, String>) -> bool {
    let labels = agent.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// One task instance that needs an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Demand {
    /// The placement name it will get.
    pub placement: String,
    pub resources: ResourceVec,
    /// How many host ports it needs.
    pub ports: u32,
    /// The host ports the plan gives it on its agent (lowest free first);
    /// empty until planned.
    pub host_ports: Vec<u16>,
}

impl Demand {
    /// A task needing `resources` and `ports` host ports.
    pub fn new(placement: impl Into<String>, resources: ResourceVec, ports: u32) -> Demand {
        Demand { placement: placement.into(), resources, ports, host_ports: Vec::new() }
    }
}

/// The instances of one task group still to place, and what binds them.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub constraints: Vec<Constraint>,
    /// All of `demands` are placed, or none is.
    pub gang: bool,
    /// The agents this group's live instances already run on (one entry per instance).
    pub placed: Vec<String>,
    pub demands: Vec<Demand>,
}

/// Everything one planning round of one Job needs besides the agents.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub strategy: Strategy,
    /// Seeds `random`: the same seed gives the same plan.
    pub seed: u64,
    /// This Job's live tasks per agent (what `spread` evens out).
    pub job_tasks: BTreeMap<String, u32>,
    pub groups: Vec<Group>,
}

/// The outcome: which placement goes where, and why the rest cannot go anywhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Agent name → placements to claim on it, in demand order.
    pub assignments: BTreeMap<String, Vec<Demand>>,
    /// Placements that fit nowhere now, with an explanation in numbers.
    pub unplaced: Vec<(Demand, String)>,
}

/// Places each group's demands, in order, on agents that are schedulable,
/// satisfy the group's constraints (counting instances placed earlier in
/// this plan) and have room (counting earlier assignments), choosing among
/// them by `strategy`. A gang that cannot be placed whole is not placed at
/// all, and leaves the agents as it found them for the groups after it.
pub fn plan(agents: &[AgentView], req: &Request) -> Plan {
    let mut free: Vec<ResourceVec> = agents.iter().map(|a| a.free).collect();
    let mut free_ports: Vec<Vec<PortRange>> = agents.iter().map(|a| a.free_ports.clone()).collect();
    let mut tasks: Vec<u32> = agents.iter().map(|a| req.job_tasks.get(&a.name).copied().unwrap_or(0)).collect();
    let index: HashMap<&str, usize> = agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    let mut rng = SplitMix64(req.seed);
    let mut plan = Plan::default();
    for g in &req.groups {
        let constrained = !g.constraints.is_empty();
        // Where the group's instances are, for its constraints (only they need it).
        let mut placed: Vec<usize> = match constrained {
            true => g.placed.iter().filter_map(|n| index.get(n.as_str()).copied()).collect(),
            false => Vec::new(),
        };
        let (free_before, ports_before, tasks_before) = (free.clone(), free_ports.clone(), tasks.clone());
        let mut got: Vec<(usize, Demand)> = Vec::new();
        let mut gang_failure = None;
        let mut ranked: Option<Ranked> = None;
        for d in &g.demands {
            let chosen = if constrained || req.strategy == Strategy::Random {
                let on: Vec<&AgentView> = placed.iter().map(|i| &agents[*i]).collect();
                let ruled_out = constraints::exclusions(&g.constraints, agents, &on);
                let fit: Vec<usize> = (0..agents.len())
                    .filter(|i| agents[*i].excluded.is_none() && ruled_out[*i].is_none())
                    .filter(|i| fits(d, &free[*i], &free_ports[*i]))
                    .collect();
                choose(req.strategy, &fit, agents, &free, &tasks, &mut rng).ok_or(ruled_out)
            } else {
                if ranked.as_ref().is_none_or(|r| r.like != (d.resources, d.ports)) {
                    let usable = (0..agents.len()).filter(|i| agents[*i].excluded.is_none());
                    ranked = Some(Ranked::new(req.strategy, d, agents, usable, (&free, &free_ports, &tasks)));
                }
                ranked.as_ref().and_then(Ranked::best).ok_or_else(|| vec![None; agents.len()])
            };
            let i = match chosen {
                Ok(i) => i,
                Err(ruled_out) => {
                    let why = explain(agents, &free, &free_ports, &ruled_out, d);
                    if g.gang {
                        gang_failure = Some(why);
                        break;
                    }
                    plan.unplaced.push((d.clone(), why));
                    continue;
                }
            };
            free[i] = free[i].saturating_sub(&d.resources);
            let host_ports = ports::lowest(&free_ports[i], d.ports).unwrap_or_default();
            free_ports[i] = ports::minus(&free_ports[i], host_ports.iter().copied());
            tasks[i] += 1;
            if constrained {
                placed.push(i);
            }
            if let Some(r) = ranked.as_mut() {
                r.placed(i, d, agents, (&free, &free_ports, &tasks));
            }
            got.push((i, Demand { host_ports, ..d.clone() }));
        }
        if let Some(why) = gang_failure {
            (free, free_ports, tasks) = (free_before, ports_before, tasks_before);
            let size = g.placed.len() + g.demands.len();
            let fit = g.placed.len() + got.len();
            let msg = format!("gang of {size}: only {fit} fit: {why}");
            plan.unplaced.extend(g.demands.iter().map(|d| (d.clone(), msg.clone())));
            continue;
        }
        for (i, d) in got {
            plan.assignments.entry(agents[i].name.clone()).or_default().push(d);
        }
    }
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
