//! Allocator benchmark (`make bench`): the planner's time per round at
//! 1,000 agents and 20 frameworks in four roles (weights, a guarantee and a
//! limit, decline filters and open offers), in three states of the cluster:
//! empty (every agent offered), half full, and saturated (nothing fits, the
//! round only orders, explains and reserves). Prints figures; asserts nothing.

use std::time::{Duration, Instant};

use berth_api::ResourceVec;
use berth_api::framework::Mode;
use berth_controllers::allocator::{
    AgentInput, DeclineFilter, Demand, FrameworkInput, Input, OutstandingOffer, Policy, RoleQuota, plan_round,
};
use berth_controllers::offers::run::PERIOD;
use jiff::{SignedDuration, Timestamp};

const AGENTS: usize = 1000;
const FRAMEWORKS: usize = 20;
const ROUNDS: usize = 50;
const GI: u64 = 1 << 30;

/// A small deterministic generator, so every run plans the same rounds.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn input(fill_percent: u64, now: Timestamp) -> Input {
    let mut rng = Lcg(42);
    let mut policy = Policy::default();
    policy.roles.insert(
        "prod".into(),
        RoleQuota { weight: 3.0, guarantee: ResourceVec::new(2_000_000, 8000 * GI), limit: None },
    );
    policy.roles.insert(
        "batch".into(),
        RoleQuota { weight: 1.0, guarantee: ResourceVec::ZERO, limit: Some(ResourceVec::new(6_000_000, 24_000 * GI)) },
    );
    let agents: Vec<AgentInput> = (0..AGENTS)
        .map(|i| {
            let allocatable = ResourceVec::new(16_000, 64 * GI);
            let pct = (fill_percent + rng.next(11)).saturating_sub(5).min(100);
            AgentInput {
                name: format!("agent-{i:04}"),
                allocatable,
                claimed: ResourceVec::new(allocatable.cpu_millis * pct / 100, allocatable.memory_bytes * pct / 100),
                holds: vec![],
                schedulable: i % 50 != 0,
            }
        })
        .collect();
    let roles = ["prod", "batch", "dev", "*"];
    let frameworks: Vec<FrameworkInput> = (0..FRAMEWORKS)
        .map(|i| {
            let task = ResourceVec::new(250 + rng.next(1750), (1 + rng.next(8)) * GI / 2);
            FrameworkInput {
                id: format!("ns/fw-{i:02}"),
                role: roles[i % roles.len()].into(),
                weight: 1.0 + (i % 3) as f64,
                priority: (i % 4) as i32,
                mode: Mode::Offers,
                allocated: ResourceVec::new(rng.next(400_000), rng.next(1600) * GI),
                demand: Some(Demand {
                    total: ResourceVec::new(task.cpu_millis * 2000, task.memory_bytes * 2000),
                    task,
                }),
                usable: None,
                disconnected: None,
            }
        })
        .collect();
    let filters = (0..200)
        .map(|k| DeclineFilter {
            framework: format!("ns/fw-{:02}", k % FRAMEWORKS),
            agent: format!("agent-{:04}", rng.next(AGENTS as u64)),
            until: now + SignedDuration::from_secs(5),
        })
        .collect();
    let offers = (0..100)
        .map(|k| OutstandingOffer {
            id: format!("ns/offer-{k}"),
            framework: format!("ns/fw-{:02}", k % FRAMEWORKS),
            agent: format!("agent-{:04}", rng.next(AGENTS as u64)),
            resources: ResourceVec::new(500, GI),
            expires_at: now + SignedDuration::from_secs(if k % 10 == 0 { 0 } else { 30 }),
        })
        .collect();
    Input { agents, frameworks, policy, filters, offers }
}

fn main() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    println!("allocator: {AGENTS} agents, {FRAMEWORKS} frameworks, {ROUNDS} rounds per state");
    for (state, fill) in [("empty", 0), ("half full", 50), ("saturated", 100)] {
        let inp = input(fill, now);
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        let mut offers = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let plan = plan_round(&inp, now);
            times.push(t.elapsed());
            offers = plan.offers.len();
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / ROUNDS as u32;
        // Baseline, same run: copying the round's input once (what any
        // planner pays just to take a snapshot of the cluster).
        let t = Instant::now();
        for _ in 0..ROUNDS {
            std::hint::black_box(inp.clone());
        }
        let copy = t.elapsed() / ROUNDS as u32;
        println!(
            "  {state:>9}: {offers:>4} offers per round; time per round mean {:.2} ms, p50 {:.2} ms, max {:.2} ms; \
             {:.1}x copying the input ({:.3} ms), {:.1}% of the {} s round period",
            mean.as_secs_f64() * 1e3,
            times[ROUNDS / 2].as_secs_f64() * 1e3,
            times[ROUNDS - 1].as_secs_f64() * 1e3,
            mean.as_secs_f64() / copy.as_secs_f64().max(1e-9),
            copy.as_secs_f64() * 1e3,
            mean.as_secs_f64() / PERIOD.as_secs_f64() * 100.0,
            PERIOD.as_secs(),
        );
    }
}
