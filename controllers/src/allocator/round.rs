//! One allocation round (Mesos' hierarchical allocator, made pure): rescind
//! stale offers, then hand out free capacity one task's worth at a time to
//! the framework first in order (roles below their guarantee, then weighted
//! DRF or strict priority), never beyond a role's limit, never on an agent
//! the framework declined, never on capacity another offer holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_api::ResourceVec;
use berth_api::framework::Mode;
use jiff::Timestamp;

use super::input::{Input, NewOffer, RescindReason, RoundPlan};
use super::tally::{Tally, dominant_share};

/// The state of a round in progress; `why` reads it to explain idle frameworks.
pub(super) struct Round<'a> {
    pub input: &'a Input,
    pub now: Timestamp,
    /// Free capacity per agent (zero on unschedulable ones), less this round's offers.
    pub free: Vec<ResourceVec>,
    pub free_total: ResourceVec,
    /// `(framework, agent)` pairs filtered by a decline still in force.
    pub declined: HashSet<(usize, usize)>,
    /// `(framework, agent)` pairs with an offer that stays open.
    pub open: HashSet<(usize, usize)>,
    /// `(framework, agent)` pairs where none of the framework's pending tasks may go.
    pub barred: HashSet<(usize, usize)>,
    pub reservation: Option<(usize, usize)>,
    pub tally: Tally,
}

/// Plans one round at time `now`.
pub fn plan_round(input: &Input, now: Timestamp) -> RoundPlan {
    let mut plan = RoundPlan::default();
    let mut round = Round::start(input, now, &mut plan);
    round.reservation = round.reserve();
    let made = round.offer_all();

    let expires_at = now.checked_add(input.policy.offer_timeout).unwrap_or(Timestamp::MAX);
    for (&(f, a), &resources) in &made {
        plan.offers.push(NewOffer {
            framework: input.frameworks[f].id.clone(),
            agent: input.agents[a].name.clone(),
            resources,
            expires_at,
        });
    }
    let offered: HashSet<usize> = made.keys().map(|(f, _)| *f).collect();
    for (f, fw) in input.frameworks.iter().enumerate() {
        plan.shares.insert(fw.id.clone(), dominant_share(&round.tally.fws[f].consumed, &round.tally.total));
        if fw.mode == Mode::Offers && !offered.contains(&f) {
            plan.idle.insert(fw.id.clone(), round.why(f));
        }
    }
    plan.reservation = round.reservation.map(|(f, a)| (input.frameworks[f].id.clone(), input.agents[a].name.clone()));
    plan
}

impl<'a> Round<'a> {
    /// Rescinds stale offers (into `plan`) and accounts for the rest.
    fn start(input: &'a Input, now: Timestamp, plan: &mut RoundPlan) -> Round<'a> {
        let agent_ix: HashMap<&str, usize> =
            input.agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
        let fw_ix: HashMap<&str, usize> = input
            .frameworks
            .iter()
            .enumerate()
            .filter(|(_, f)| f.mode == Mode::Offers)
            .map(|(i, f)| (f.id.as_str(), i))
            .collect();
        let held: HashSet<&str> = input.agents.iter().flat_map(|a| a.holds.iter().map(String::as_str)).collect();
        let mut unheld = vec![ResourceVec::ZERO; input.agents.len()];
        let mut kept = Vec::new();
        let mut open = HashSet::new();
        for o in &input.offers {
            let a = agent_ix.get(o.agent.as_str()).copied();
            let f = fw_ix.get(o.framework.as_str()).copied();
            // An offer whose hold is not (yet) in the ledger still holds its
            // resources, until it is rescinded and gone.
            if let Some(a) = a
                && !held.contains(o.id.as_str())
            {
                unheld[a] += o.resources;
            }
            let reason = match (a, f) {
                (None, _) => RescindReason::AgentGone,
                (Some(a), _) if !input.agents[a].schedulable => RescindReason::AgentGone,
                (_, None) => RescindReason::FrameworkGone,
                (_, Some(f)) if input.frameworks[f].disconnected.is_some() => RescindReason::FrameworkDisconnected,
                _ if now >= o.expires_at => RescindReason::Expired,
                (Some(a), Some(f)) => {
                    kept.push((f, o.resources));
                    open.insert((f, a));
                    continue;
                }
            };
            plan.rescinds.push((o.id.clone(), reason));
        }
        let free: Vec<ResourceVec> = input
            .agents
            .iter()
            .zip(&unheld)
            .map(
                |(a, u)| {
                    if a.schedulable { a.allocatable.saturating_sub(&(a.claimed + *u)) } else { ResourceVec::ZERO }
                },
            )
            .collect();
        let total: ResourceVec = input.agents.iter().filter(|a| a.schedulable).map(|a| a.allocatable).sum();
        let fw_all: HashMap<&str, usize> =
            input.frameworks.iter().enumerate().map(|(i, f)| (f.id.as_str(), i)).collect();
        let declined = input
            .filters
            .iter()
            .filter(|d| d.until > now)
            .filter_map(|d| Some((*fw_all.get(d.framework.as_str())?, *agent_ix.get(d.agent.as_str())?)))
            .collect();
        let barred = input
            .frameworks
            .iter()
            .enumerate()
            .filter_map(|(f, fw)| Some((f, fw.usable.as_ref()?)))
            .flat_map(|(f, usable)| {
                input.agents.iter().enumerate().filter(|(_, a)| !usable.contains(&a.name)).map(move |(a, _)| (f, a))
            })
            .collect();
        Round {
            input,
            now,
            free_total: free.iter().copied().sum(),
            free,
            declined,
            open,
            barred,
            reservation: None,
            tally: Tally::new(input, total, &kept),
        }
    }

    /// True when agent `a` may be offered to framework `f` at all this round.
    pub fn usable(&self, f: usize, a: usize) -> bool {
        self.input.frameworks[f].disconnected.is_none()
            && self.input.agents[a].schedulable
            && !self.declined.contains(&(f, a))
            && !self.open.contains(&(f, a))
            && !self.barred.contains(&(f, a))
    }

    /// True when one more task of `f` stays within its role's limit.
    pub fn within_limit(&self, f: usize) -> bool {
        let fw = &self.tally.fws[f];
        self.tally.roles[fw.role].within_limit(&fw.task)
    }

    /// True when one more task of `f` leaves the guarantees of other roles free.
    pub fn leaves_headroom(&self, f: usize) -> bool {
        let fw = &self.tally.fws[f];
        if self.tally.roles[fw.role].below_guarantee() {
            return true;
        }
        let left = self.free_total.saturating_sub(&fw.task);
        self.tally.headroom_for_others(fw.role).fits_in(&left)
    }

    /// Anti-starvation: the first framework in order whose task fits no
    /// agent's free capacity, but would fit one once released, gets that
    /// agent kept for it (no one else is offered it) — the agent nearest
    /// to fitting, so the wait is as short as releases allow.
    fn reserve(&self) -> Option<(usize, usize)> {
        let mut order: Vec<usize> = (0..self.input.frameworks.len()).filter(|&f| self.tally.fws[f].hungry()).collect();
        order.sort_by(|&a, &b| self.tally.cmp(self.input, a, b));
        for f in order {
            let task = self.tally.fws[f].task;
            if !self.within_limit(f) {
                continue;
            }
            let agents = 0..self.input.agents.len();
            if agents.clone().any(|a| self.usable(f, a) && task.fits_in(&self.free[a])) {
                continue;
            }
            let missing = |a: usize| {
                let short = task.saturating_sub(&self.free[a]);
                dominant_share(&short, &task)
            };
            let best = agents
                .filter(|&a| self.usable(f, a) && task.fits_in(&self.input.agents[a].allocatable))
                .min_by(|&a, &b| missing(a).total_cmp(&missing(b)).then_with(|| a.cmp(&b)));
            if let Some(a) = best {
                return Some((f, a));
            }
        }
        None
    }

    /// True when one more task of `f` may be offered on agent `a` now.
    fn eligible(&self, f: usize, a: usize) -> bool {
        let fw = &self.tally.fws[f];
        fw.hungry()
            && self.reservation.is_none_or(|(rf, ra)| ra != a || rf == f)
            && fw.task.fits_in(&self.free[a])
            && self.usable(f, a)
            && self.within_limit(f)
            && self.leaves_headroom(f)
    }

    /// Offers each agent's free capacity, a task at a time, to the first
    /// eligible framework in order. Returns `(framework, agent) → amount`.
    fn offer_all(&mut self) -> BTreeMap<(usize, usize), ResourceVec> {
        let mut made: BTreeMap<(usize, usize), ResourceVec> = BTreeMap::new();
        let n = self.input.frameworks.len();
        for a in 0..self.input.agents.len() {
            loop {
                let mut best: Option<usize> = None;
                for f in 0..n {
                    if self.eligible(f, a)
                        && best.is_none_or(|b| self.tally.cmp(self.input, f, b) == std::cmp::Ordering::Less)
                    {
                        best = Some(f);
                    }
                }
                let Some(f) = best else { break };
                let task = self.tally.fws[f].task;
                self.free[a] = self.free[a].saturating_sub(&task);
                self.free_total = self.free_total.saturating_sub(&task);
                self.tally.offer(f, task);
                *made.entry((f, a)).or_default() += task;
            }
        }
        made
    }
}
