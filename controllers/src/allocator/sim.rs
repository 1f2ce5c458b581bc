//! A simulated cluster for the allocator's tests: agents with placements,
//! frameworks with queues of equal tasks that accept every offer at once
//! and hold what they get for a given number of rounds (or forever).

use berth_api::ResourceVec;
use berth_api::framework::Mode;
use jiff::{SignedDuration, Timestamp};

use super::input::{AgentInput, Demand, FrameworkInput, Input, Policy, RoundPlan};
use super::round::plan_round;

pub const GI: u64 = 1 << 30;

/// `v` times `n`, saturating.
pub fn times(v: ResourceVec, n: u64) -> ResourceVec {
    ResourceVec::new(v.cpu_millis.saturating_mul(n), v.memory_bytes.saturating_mul(n))
}

/// How many whole `task`s `amount` holds.
pub fn tasks_in(amount: ResourceVec, task: ResourceVec) -> u64 {
    let per = |a: u64, t: u64| a.checked_div(t).unwrap_or(u64::MAX);
    per(amount.cpu_millis, task.cpu_millis).min(per(amount.memory_bytes, task.memory_bytes))
}

pub struct SimFramework {
    pub id: String,
    pub role: String,
    pub weight: f64,
    pub priority: i32,
    pub task: ResourceVec,
    /// Tasks still waiting for an offer.
    pub pending: u64,
    /// How many rounds each of its tasks runs; `None` holds forever.
    pub lifetime: Option<u64>,
}

/// A placement in the simulation: framework, resources, the round it ends in.
pub struct SimPlacement {
    pub framework: usize,
    pub resources: ResourceVec,
    pub ends: Option<u64>,
}

pub struct World {
    pub agents: Vec<(String, ResourceVec, Vec<SimPlacement>)>,
    pub frameworks: Vec<SimFramework>,
    pub policy: Policy,
    pub round: u64,
    pub start: Timestamp,
}

impl World {
    pub fn new(agents: &[ResourceVec], frameworks: Vec<SimFramework>, policy: Policy) -> World {
        let agents = agents.iter().enumerate().map(|(i, a)| (format!("agent-{i:04}"), *a, Vec::new())).collect();
        World { agents, frameworks, policy, round: 0, start: "2026-01-01T00:00:00Z".parse().expect("time") }
    }

    pub fn now(&self) -> Timestamp {
        self.start + SignedDuration::from_secs(self.round as i64)
    }

    /// What framework `f`'s placements hold.
    pub fn allocated(&self, f: usize) -> ResourceVec {
        self.agents.iter().flat_map(|a| &a.2).filter(|p| p.framework == f).map(|p| p.resources).sum()
    }

    /// What agent `a` has left.
    pub fn free(&self, a: usize) -> ResourceVec {
        let (_, alloc, ps) = &self.agents[a];
        alloc.saturating_sub(&ps.iter().map(|p| p.resources).sum())
    }

    /// Whether one more task of framework `f` fits on some agent.
    pub fn fits_somewhere(&self, f: usize) -> bool {
        (0..self.agents.len()).any(|a| self.frameworks[f].task.fits_in(&self.free(a)))
    }

    /// The planner's view of the world (no offers stay open: all are accepted at once).
    pub fn input(&self) -> Input {
        let agents = self
            .agents
            .iter()
            .map(|(name, alloc, ps)| AgentInput {
                name: name.clone(),
                allocatable: *alloc,
                claimed: ps.iter().map(|p| p.resources).sum(),
                holds: vec![],
                schedulable: true,
            })
            .collect();
        let frameworks = self
            .frameworks
            .iter()
            .enumerate()
            .map(|(i, f)| FrameworkInput {
                id: f.id.clone(),
                role: f.role.clone(),
                weight: f.weight,
                priority: f.priority,
                mode: Mode::Offers,
                allocated: self.allocated(i),
                demand: (f.pending > 0).then(|| Demand { total: times(f.task, f.pending), task: f.task }),
                usable: None,
                disconnected: None,
            })
            .collect();
        Input { agents, frameworks, policy: self.policy.clone(), filters: vec![], offers: vec![] }
    }

    /// Every offer accepted whole: its tasks placed on its agent.
    pub fn accept_all(&mut self, plan: &RoundPlan) {
        for o in &plan.offers {
            let f = self.frameworks.iter().position(|f| f.id == o.framework).expect("framework");
            let a = self.agents.iter().position(|a| a.0 == o.agent).expect("agent");
            let fw = &mut self.frameworks[f];
            let n = tasks_in(o.resources, fw.task).min(fw.pending);
            fw.pending -= n;
            let ends = fw.lifetime.map(|l| self.round + l);
            for _ in 0..n {
                self.agents[a].2.push(SimPlacement { framework: f, resources: fw.task, ends });
            }
        }
    }

    /// Ends the placements whose time is up; returns how many.
    pub fn release_finished(&mut self) -> usize {
        let round = self.round;
        let mut ended = 0;
        for a in &mut self.agents {
            let before = a.2.len();
            a.2.retain(|p| p.ends.is_none_or(|e| e > round));
            ended += before - a.2.len();
        }
        ended
    }

    /// One round: release what finished, plan, accept everything.
    pub fn step(&mut self) -> RoundPlan {
        self.round += 1;
        self.release_finished();
        let plan = plan_round(&self.input(), self.now());
        self.accept_all(&plan);
        plan
    }
}
