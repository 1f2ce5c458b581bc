//! The pure planner: a snapshot of agents and the tasks to place in, a plan
//! out. No I/O and no clock, so tests drive it directly.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use berth_api::{Agent, Quantity, ResourceVec};

/// What the planner needs to know of one agent.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentView {
    pub name: String,
    /// Allocatable less every claim in its ledger.
    pub free: ResourceVec,
    /// Why it takes no placements at all (`not ready`, `unschedulable`), if so.
    pub excluded: Option<&'static str>,
}

impl AgentView {
    /// The planner's view of an agent; an agent whose ledger cannot be read is excluded.
    pub fn of(agent: &Agent) -> AgentView {
        let name = agent.metadata.name.clone().unwrap_or_default();
        let status = agent.status.clone().unwrap_or_default();
        let free = status.free();
        let excluded = if agent.spec.unschedulable {
            Some("unschedulable")
        } else if !status.is_ready() {
            Some("not ready")
        } else if free.is_err() {
            Some("unreadable ledger")
        } else {
            None
        };
        AgentView { name, free: free.unwrap_or_default(), excluded }
    }
}

/// One task instance that needs an agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// The placement name it will get.
    pub placement: String,
    pub resources: ResourceVec,
}

/// The outcome: which placement goes where, and why the rest cannot go anywhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Agent name → placements to claim on it, in demand order.
    pub assignments: BTreeMap<String, Vec<Demand>>,
    /// Placements that fit nowhere now, with an explanation in numbers.
    pub unplaced: Vec<(Demand, String)>,
}

/// Places each demand on the fitting agent with the least free memory, then
/// least free CPU (bin packing), counting earlier assignments of this plan.
pub fn plan_binpack(agents: &[AgentView], demands: &[Demand]) -> Plan {
    let mut free: Vec<(usize, ResourceVec)> =
        agents.iter().enumerate().filter(|(_, a)| a.excluded.is_none()).map(|(i, a)| (i, a.free)).collect();
    let mut plan = Plan::default();
    for d in demands {
        let best = free
            .iter_mut()
            .filter(|(_, f)| d.resources.fits_in(f))
            .min_by_key(|(i, f)| (f.memory_bytes, f.cpu_millis, agents[*i].name.clone()));
        match best {
            Some((i, f)) => {
                *f = f.saturating_sub(&d.resources);
                plan.assignments.entry(agents[*i].name.clone()).or_default().push(d.clone());
            }
            None => plan.unplaced.push((d.clone(), explain(agents, &free, &d.resources))),
        }
    }
    plan
}

/// "0/3 agents fit: 2 insufficient memory (need 2Gi, most free 1Gi), 1 not ready".
fn explain(agents: &[AgentView], free: &[(usize, ResourceVec)], need: &ResourceVec) -> String {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for a in agents {
        if let Some(why) = a.excluded {
            *reasons.entry(why.to_string()).or_default() += 1;
        }
    }
    for name in ["cpu", "memory"] {
        let short: Vec<&ResourceVec> =
            free.iter().map(|(_, f)| f).filter(|f| need.shortfalls(f).iter().any(|s| s.0 == name)).collect();
        if short.is_empty() {
            continue;
        }
        let (need_q, most) = match name {
            "cpu" => (
                Quantity::from_millis(need.cpu_millis),
                Quantity::from_millis(short.iter().map(|f| f.cpu_millis).max().unwrap_or(0)),
            ),
            _ => (
                Quantity::from_bytes(need.memory_bytes),
                Quantity::from_bytes(short.iter().map(|f| f.memory_bytes).max().unwrap_or(0)),
            ),
        };
        reasons.insert(format!("insufficient {name} (need {need_q}, most free {most})"), short.len());
    }
    let mut msg = format!("0/{} agents fit", agents.len());
    if agents.is_empty() {
        msg.push_str(": no agents are registered");
    }
    for (i, (why, n)) in reasons.iter().enumerate() {
        let _ = write!(msg, "{}{n} {why}", if i == 0 { ": " } else { ", " });
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GI: u64 = 1 << 30;

    fn agent(name: &str, cpu: u64, mem: u64) -> AgentView {
        AgentView { name: name.into(), free: ResourceVec::new(cpu, mem), excluded: None }
    }

    fn demand(n: usize, cpu: u64, mem: u64) -> Demand {
        Demand { placement: format!("p{n}"), resources: ResourceVec::new(cpu, mem) }
    }

    #[test]
    fn packs_onto_the_fullest_agent_that_fits() {
        let agents = [agent("big", 4000, 8 * GI), agent("small", 1000, GI)];
        let plan = plan_binpack(&agents, &[demand(0, 500, GI / 2)]);
        assert_eq!(plan.assignments.keys().collect::<Vec<_>>(), ["small"]);
    }

    #[test]
    fn explains_in_numbers_why_nothing_fits() {
        let mut down = agent("c", 4000, 8 * GI);
        down.excluded = Some("not ready");
        let agents = [agent("a", 4000, GI), agent("b", 4000, GI / 2), down];
        let plan = plan_binpack(&agents, &[demand(0, 100, 2 * GI)]);
        assert_eq!(plan.unplaced[0].1, "0/3 agents fit: 2 insufficient memory (need 2Gi, most free 1Gi), 1 not ready");
    }

    #[test]
    fn says_when_there_are_no_agents() {
        let plan = plan_binpack(&[], &[demand(0, 100, GI)]);
        assert_eq!(plan.unplaced[0].1, "0/0 agents fit: no agents are registered");
    }

    proptest! {
        #[test]
        fn a_plan_never_overcommits_an_agent(
            frees in prop::collection::vec((0u64..8000, 0u64..16 * GI), 1..6),
            needs in prop::collection::vec((1u64..3000, 1u64..6 * GI), 0..20),
        ) {
            let agents: Vec<AgentView> =
                frees.iter().enumerate().map(|(i, (c, m))| agent(&format!("a{i}"), *c, *m)).collect();
            let demands: Vec<Demand> = needs.iter().enumerate().map(|(i, (c, m))| demand(i, *c, *m)).collect();
            let plan = plan_binpack(&agents, &demands);
            for a in &agents {
                let used: ResourceVec = plan.assignments.get(&a.name).into_iter().flatten().map(|d| d.resources).sum();
                prop_assert!(used.fits_in(&a.free), "{} overcommitted: {used} > {}", a.name, a.free);
            }
            let placed: usize = plan.assignments.values().map(Vec::len).sum();
            prop_assert_eq!(placed + plan.unplaced.len(), demands.len());
            // Nothing was left unplaced that would have fit on an agent's leftover.
            for (d, _) in &plan.unplaced {
                for a in &agents {
                    let used: ResourceVec = plan.assignments.get(&a.name).into_iter().flatten().map(|d| d.resources).sum();
                    prop_assert!(!d.resources.fits_in(&a.free.saturating_sub(&used)));
                }
            }
        }
    }
}
