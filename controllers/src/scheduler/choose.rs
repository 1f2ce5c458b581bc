//! Which agent a strategy prefers for the next instance. `binpack` and
//! `spread` rank agents by a key that only the chosen agent's placement
//! changes, so for a run of alike demands (same resources and port count) of
//! a group without constraints a heap of the agents that fit picks each in
//! O(log agents) instead of a scan of every agent ([`Ranked`]); the scan
//! ([`choose`]) serves constraints, `random` and the first of a run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use berth_api::ResourceVec;
use berth_api::constraint::Strategy;
use berth_api::ports::{self, PortRange};

use super::plan::{AgentView, Demand};

/// An agent's rank under a strategy: the least is preferred. Ties go to the
/// lowest name, so a plan does not depend on the agents' order.
type Key<'a> = (u64, u64, u64, &'a str);

fn key<'a>(strategy: Strategy, agent: &'a AgentView, free: &ResourceVec, tasks: u32) -> Key<'a> {
    match strategy {
        // The fullest agent that fits (least memory free, then least CPU).
        Strategy::Binpack | Strategy::Random => (free.memory_bytes, free.cpu_millis, 0, &agent.name),
        // The agent with fewest of this Job's tasks, then the emptiest.
        Strategy::Spread => (u64::from(tasks), u64::MAX - free.memory_bytes, u64::MAX - free.cpu_millis, &agent.name),
    }
}

/// Whether `d` fits on an agent with `free` and `free_ports` left.
pub fn fits(d: &Demand, free: &ResourceVec, free_ports: &[PortRange]) -> bool {
    d.resources.fits_in(free) && (d.ports == 0 || ports::count(free_ports) >= d.ports)
}

/// The agent of `fits` (indices into `agents`) that `strategy` prefers.
pub fn choose(
    strategy: Strategy,
    fits: &[usize],
    agents: &[AgentView],
    free: &[ResourceVec],
    tasks: &[u32],
    rng: &mut SplitMix64,
) -> Option<usize> {
    match strategy {
        Strategy::Random if fits.is_empty() => None,
        Strategy::Random => Some(fits[(rng.next_u64() % fits.len() as u64) as usize]),
        _ => fits.iter().copied().min_by_key(|i| key(strategy, &agents[*i], &free[*i], tasks[*i])),
    }
}

/// The agents that fit a run of alike demands, ranked by `binpack` or
/// `spread`. Only the chosen agent's key changes between picks (its room
/// shrinks, its task count grows), so re-ranking it alone keeps the heap
/// exact: every pick is the one [`choose`] would make.
pub struct Ranked<'a> {
    strategy: Strategy,
    /// The demand's resources and port count this ranking holds for.
    pub like: (ResourceVec, u32),
    heap: BinaryHeap<Reverse<(Key<'a>, usize)>>,
}

impl<'a> Ranked<'a> {
    /// Ranks the agents `usable` (schedulable, not ruled out) on which `d` fits.
    pub fn new(
        strategy: Strategy,
        d: &Demand,
        agents: &'a [AgentView],
        usable: impl Iterator<Item = usize>,
        state: (&[ResourceVec], &[Vec<PortRange>], &[u32]),
    ) -> Ranked<'a> {
        let (free, free_ports, tasks) = state;
        let heap = usable
            .filter(|i| fits(d, &free[*i], &free_ports[*i]))
            .map(|i| Reverse((key(strategy, &agents[i], &free[i], tasks[i]), i)))
            .collect();
        Ranked { strategy, like: (d.resources, d.ports), heap }
    }

    /// The preferred agent for the next demand of the run, if any fits.
    pub fn best(&self) -> Option<usize> {
        self.heap.peek().map(|Reverse((_, i))| *i)
    }

    /// Re-ranks `i` after a placement there; it leaves the ranking when the
    /// next alike demand no longer fits.
    pub fn placed(
        &mut self,
        i: usize,
        d: &Demand,
        agents: &'a [AgentView],
        state: (&[ResourceVec], &[Vec<PortRange>], &[u32]),
    ) {
        let (free, free_ports, tasks) = state;
        if self.heap.peek().is_some_and(|Reverse((_, top))| *top == i) {
            self.heap.pop();
        } else {
            self.heap.retain(|Reverse((_, j))| *j != i);
        }
        if fits(d, &free[i], &free_ports[i]) {
            self.heap.push(Reverse((key(self.strategy, &agents[i], &free[i], tasks[i]), i)));
        }
    }
}

/// A small, seedable generator (SplitMix64): `random` must be reproducible
/// from its seed, and needs no more than this.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents of uneven room, some with equal keys (ties go by name).
    fn agents(n: usize, rng: &mut SplitMix64) -> Vec<AgentView> {
        (0..n)
            .map(|i| AgentView {
                name: format!("a{:03}", (i * 7) % n),
                free: ResourceVec::new(rng.next_u64() % 8 * 250, (rng.next_u64() % 4 + 1) << 30),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn the_ranking_picks_what_a_scan_of_every_agent_picks() {
        let mut rng = SplitMix64(7);
        for strategy in [Strategy::Binpack, Strategy::Spread] {
            let agents = agents(60, &mut rng);
            let mut free: Vec<ResourceVec> = agents.iter().map(|a| a.free).collect();
            let free_ports = vec![Vec::new(); agents.len()];
            let mut tasks: Vec<u32> = (0..agents.len()).map(|i| (i % 3) as u32).collect();
            let d = Demand::new("p", ResourceVec::new(250, 256 << 20), 0);
            let mut ranked = Ranked::new(strategy, &d, &agents, 0..agents.len(), (&free, &free_ports, &tasks));
            let mut picks = 0;
            loop {
                let fit: Vec<usize> = (0..agents.len()).filter(|i| fits(&d, &free[*i], &free_ports[*i])).collect();
                let scanned = choose(strategy, &fit, &agents, &free, &tasks, &mut rng);
                assert_eq!(ranked.best(), scanned, "{strategy:?}, pick {picks}");
                let Some(i) = scanned else { break };
                free[i] = free[i].saturating_sub(&d.resources);
                tasks[i] += 1;
                ranked.placed(i, &d, &agents, (&free, &free_ports, &tasks));
                picks += 1;
            }
            assert!(picks > 60, "{strategy:?} placed {picks}");
        }
    }
}
