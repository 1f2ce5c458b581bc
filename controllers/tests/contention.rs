//! Both scheduling models contending for one fleet, with churn, while the
//! invariants hold at every observation and the allocation loop keeps the
//! Offers frameworks' weighted dominant shares level (DRF).
//!
//! The fleet is 16 agents in three sizes and four racks, each with its
//! own in-process node agent on its own held fake runtime (`contend::fleet`):
//! real registration, heartbeats, placement watches and phase reports, so
//! every placement goes the way it goes in production, and the test ends
//! each task by letting its container exit. Measured on the shared 2-core
//! machine, 16 node agents cost little (a filtered watch each, and a
//! heartbeat every 5 s): what costs is the placement traffic, ~10 API
//! writes per placement, each 100-300 ms when the machine is loaded. So
//! the churn is paced to a 4 s mean task lifetime and the run to ~25 s.
//!
//! Contending: two external Offers frameworks (`fa`, weight 1, cpu-heavy
//! tasks; `fb`, weight 2, memory-heavy tasks) that accept every offer with
//! all the tasks that fit and always want more, and two SharedState
//! `builtin-batch` frameworks (`ss1`, `ss2`) kept busy with Jobs of many
//! instances, `ss2`'s constrained off rack `r0`. Churn: at every look each
//! running container exits with the chance of a 4 s mean lifetime.
//!
//! Checked at every observation (`contend::observe`): no ledger over
//! allocatable; every offer open throughout the observation held by its own
//! hold, on its own agent, and no hold in two ledgers or without an open
//! offer for long; every running container covered by a claim on its agent;
//! no task instance with two live attempts.
//!
//! Fairness: see [`DRF_TOLERANCE`]. Printed, not asserted: placements per
//! second by mode, the SharedState claim path's 409 retries, and the
//! deviation as `Framework.status` reports it and from placements alone.

mod contend;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_api::framework::Mode;
use berth_api::invariants::double_attempts;
use berth_api::{Agent, Framework, ResourceVec};
use berth_controllers::allocator::dominant_share;
use contend::frameworks::{NS, Shape, offers_framework, register, shared_state_framework};
use contend::observe::{Watchkeeper, claimed_by_framework, placed_by_framework};
use contend::{conflicts, fleet};
use kube::api::{Api, ListParams};

/// The largest time-averaged deviation of the two Offers frameworks'
/// weighted dominant shares, `|x_a - x_b| / (x_a + x_b)` with `x = share /
/// weight` (the planner's `max |x - mean| / mean` for two frameworks),
/// tolerated over the measured window.
///
/// Looser than the planner's 5% (`allocator::fairness`) because here:
/// tasks are 1/4 to 1/2 of the smallest agents' cpu and 1/4 of their
/// memory, so a freed fragment often fits only one framework's shape;
/// the allocator levels shares only as capacity turns over, and churn ends
/// tasks at random, so shares wander between rounds; and the SharedState
/// frameworks claim freed capacity outside DRF, taking what the Offers
/// framework that is behind would have been offered next. Measured over 10
/// runs on the 2 shared, fully loaded cores: 0.047 to 0.156, mean 0.09
/// (Framework.status, the allocator's own view: 0.011 to 0.101). Shares are
/// read from the ledgers — placement claims and offer holds, what DRF
/// counts — so a round that is slow to settle does not read as unfair.
const DRF_TOLERANCE: f64 = 0.25;

const WARMUP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(15);
/// The pace of observations (each also churns); under load one takes longer.
const TICK: Duration = Duration::from_millis(100);
/// The mean lifetime of a task: churn ends each running container with the
/// chance that an exponentially distributed lifetime ends since the last look.
const LIFETIME: Duration = Duration::from_secs(4);

const FA: Shape = Shape { name: "fa", weight: 1.0, cpu: "500m", memory: "256Mi" };
const FB: Shape = Shape { name: "fb", weight: 2.0, cpu: "250m", memory: "1Gi" };
const SS1: Shape = Shape { name: "ss1", weight: 1.0, cpu: "500m", memory: "512Mi" };
const SS2: Shape = Shape { name: "ss2", weight: 1.0, cpu: "250m", memory: "512Mi" };

/// A small deterministic generator (xorshift64*), so runs differ only by timing.
struct Dice(u64);

impl Dice {
    fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_and_shared_state_frameworks_contend_with_invariants_held_and_drf_kept() {
    let conflicts = conflicts::count();
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    for (s, mode) in [(&FA, Mode::Offers), (&FB, Mode::Offers), (&SS1, Mode::SharedState), (&SS2, Mode::SharedState)] {
        register(&client, s, mode).await;
    }
    let members = fleet::start(&client, dir.path(), &stopped).await;
    let agents: Api<Agent> = Api::all(client.clone());
    server::eventually(&client, "every agent ready", async || {
        let list = agents.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ready = list.iter().filter(|a| a.status.as_ref().is_some_and(|s| s.is_ready())).count();
        if ready == members.len() { Ok(()) } else { Err(format!("{ready} of {} agents ready", members.len())) }
    })
    .await;
    server::controllers(&client, &stopped);
    let (offered, jobs) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for s in [FA, FB] {
        tokio::spawn(offers_framework(client.clone(), s, stopped.clone(), offered.clone()));
    }
    for (s, instances, constraints) in [(SS1, 6, vec![]), (SS2, 8, vec![vec!["rack", "UNLIKE", "r0"]])] {
        let c = constraints.into_iter().map(|c| c.into_iter().map(String::from).collect()).collect();
        tokio::spawn(shared_state_framework(client.clone(), s, instances, 2, c, stopped.clone(), jobs.clone()));
    }

    let total = fleet::total();
    let frameworks: Api<Framework> = Api::namespaced(client.clone(), NS);
    let mut keeper = Watchkeeper::default();
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    // Time-weighted sums over the measured window: deviations (from the
    // ledgers, from Framework.status, from placements alone) and shares.
    let (mut dev, mut measured) = ([0.0f64; 3], 0.0);
    let mut mean_share = [0.0f64; 2];
    let mut released = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut last = start;
    while start.elapsed() < WARMUP + MEASURE {
        tick.tick().await;
        let seen = keeper.observe(&client, &members).await;
        let twice = double_attempts(&seen.placements);
        assert!(twice.is_empty(), "at most one live attempt: {twice:?}");
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        if start.elapsed() > WARMUP {
            let weighted = |by: &BTreeMap<String, ResourceVec>| {
                [&FA, &FB].map(|s| dominant_share(&by.get(s.name).copied().unwrap_or_default(), &total) / s.weight)
            };
            let x = weighted(&claimed_by_framework(&seen));
            let status = frameworks.list(&ListParams::default()).await.unwrap().items;
            let reported = [&FA, &FB].map(|s| {
                let f = status.iter().find(|f| f.metadata.name.as_deref() == Some(s.name));
                f.and_then(|f| f.status.as_ref()).and_then(|st| st.dominant_share).unwrap_or(0.0) / s.weight
            });
            let placed = weighted(&placed_by_framework(&seen.placements));
            for (d, sample) in dev.iter_mut().zip([x, reported, placed]) {
                *d += dt * deviation(sample);
            }
            for (m, v) in mean_share.iter_mut().zip(x) {
                *m += dt * v;
            }
            measured += dt;
        }
        // Churn: each running container ends with the chance that a task of
        // exponentially distributed lifetime ends within `dt`.
        let chance = 1.0 - (-dt / LIFETIME.as_secs_f64()).exp();
        for r in seen.running.iter().filter(|_| dice.chance(chance)) {
            fleet::release(&members, r);
            released += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let seen = keeper.observe(&client, &members).await;
    drop(stop);

    let [claimed_dev, status_dev, placed_dev] = dev.map(|d| d / measured);
    // Placements that started (the agent ran them), by mode.
    let started = |p: &&berth_api::Placement| p.status.as_ref().is_some_and(|s| s.started_at.is_some());
    let by_mode =
        |offer: bool| seen.placements.iter().filter(started).filter(|p| p.spec.offer.is_some() == offer).count();
    println!(
        "contention: {} observations over {elapsed:.1} s; {released} tasks ended by churn; {} running at the end",
        keeper.observations,
        seen.running.len()
    );
    println!(
        "throughput: Offers {:.1} placements started/s ({} created by the frameworks), SharedState {:.1} \
         placements started/s ({} Jobs submitted); SharedState ledger conflicts retried: {}",
        by_mode(true) as f64 / elapsed,
        offered.load(Ordering::Relaxed),
        by_mode(false) as f64 / elapsed,
        jobs.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
    );
    println!(
        "DRF over {measured:.1} s: mean weighted shares fa {:.3} fb {:.3}; time-averaged deviation {claimed_dev:.3} \
         from the ledgers (tolerance {DRF_TOLERANCE}), {status_dev:.3} from Framework.status, {placed_dev:.3} from \
         placements alone (open offers not counted)",
        mean_share[0] / measured,
        mean_share[1] / measured,
    );
    assert!(by_mode(true) > 0 && by_mode(false) > 0, "both modes started tasks");
    assert!(
        claimed_dev <= DRF_TOLERANCE,
        "weighted dominant shares deviated by {claimed_dev:.3} on average, above {DRF_TOLERANCE}"
    );
}

/// `|a - b| / (a + b)`: `max |x - mean| / mean` for two; 0 when both are 0.
fn deviation([a, b]: [f64; 2]) -> f64 {
    if a + b == 0.0 { 0.0 } else { (a - b).abs() / (a + b) }
}
