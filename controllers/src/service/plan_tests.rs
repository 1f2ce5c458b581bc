//! The service planner, driven directly: restarts with backoff, surge and
//! unavailability bounds, pause, scaling, pruning, and a simulation of
//! whole rollouts under random readiness and failures.

use berth_api::Phase;
use berth_api::retry::RetryPolicy;
use berth_api::rollout::{REASON_SCALED_DOWN, REASON_SUPERSEDED};
use jiff::{SignedDuration, Timestamp};

use super::attempt::{ANNOTATION_FAILURES_BEFORE, Attempt, consecutive_failures};
use super::plan::{GroupInput, GroupPlan, Kill, Start, Template, plan};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn att(slot: u32, attempt: u32, hash: &str, phase: Phase) -> Attempt {
    Attempt {
        name: format!("web-web-{slot}-{attempt}"),
        slot,
        attempt,
        hash: hash.into(),
        phase,
        reason: None,
        exit_code: None,
        healthy: phase == Phase::Running,
        stopping: false,
        started_at: None,
        finished_at: None,
        failures_before: 0,
    }
}

fn failed(slot: u32, attempt: u32, at: i64) -> Attempt {
    Attempt {
        exit_code: Some(1),
        reason: Some("Error".into()),
        finished_at: Some(t(at)),
        ..att(slot, attempt, "v1", Phase::Failed)
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy { limit: None, backoff_seconds: Some(10), max_backoff_seconds: Some(60) }
}

fn run(n: u32, hash: &str, surge: u32, unavailable: u32, paused: bool, attempts: &[Attempt], now: i64) -> GroupPlan {
    let retry = retry();
    let input = GroupInput {
        instances: n,
        hash,
        max_surge: surge,
        max_unavailable: unavailable,
        retry: &retry,
        paused,
        attempts,
    };
    plan(&input, t(now))
}

fn start(slot: u32, attempt: u32) -> Start {
    Start { slot, attempt, template: Template::Current }
}

fn superseded(name: &str) -> Kill {
    Kill { name: name.into(), reason: REASON_SUPERSEDED }
}

#[test]
fn a_new_service_starts_every_instance() {
    let p = run(3, "v1", 1, 0, false, &[], 0);
    assert_eq!(p.starts, [start(0, 0), start(1, 0), start(2, 0)]);
    assert!(p.kills.is_empty());
}

#[test]
fn a_failed_instance_restarts_after_a_backoff_that_doubles_with_each_failure_in_a_row() {
    let running = att(1, 0, "v1", Phase::Running);
    let once = [failed(0, 0, 100), running.clone()];
    let p = run(2, "v1", 1, 0, false, &once, 105);
    assert!(p.starts.is_empty(), "still backing off: {p:?}");
    assert_eq!((p.backoffs[0].until, p.backoffs[0].failures), (t(110), 1));
    assert_eq!(run(2, "v1", 1, 0, false, &once, 110).starts, [start(0, 1)]);

    let thrice = [failed(0, 0, 100), failed(0, 1, 120), failed(0, 2, 150), running];
    let p = run(2, "v1", 1, 0, false, &thrice, 160);
    assert_eq!((p.backoffs[0].until, p.backoffs[0].failures), (t(190), 3), "10s, 20s, then 40s");
    assert_eq!(run(2, "v1", 1, 0, false, &thrice, 190).starts, [start(0, 3)]);
}

#[test]
fn lost_superseded_and_scaled_down_attempts_are_replaced_at_once_and_are_not_failures() {
    for (phase, reason) in
        [(Phase::Lost, "AgentLost"), (Phase::Killed, REASON_SUPERSEDED), (Phase::Killed, REASON_SCALED_DOWN)]
    {
        let a = Attempt { reason: Some(reason.into()), finished_at: Some(t(0)), ..att(0, 0, "v1", phase) };
        assert!(!a.is_failure(), "{phase:?} {reason}");
        assert_eq!(run(1, "v1", 1, 0, false, &[a], 1).starts, [start(0, 1)], "{phase:?} {reason}");
    }
    let killed = Attempt { reason: Some("Killed".into()), ..att(0, 0, "v1", Phase::Killed) };
    assert!(killed.is_failure(), "killed by hand counts");
}

#[test]
fn an_instance_that_exits_zero_backs_off_like_one_that_fails() {
    let exited =
        Attempt { reason: Some("Completed".into()), finished_at: Some(t(0)), ..att(0, 0, "v1", Phase::Succeeded) };
    assert!(exited.is_failure(), "a service is not meant to exit");
    let p = run(1, "v1", 1, 0, false, std::slice::from_ref(&exited), 1);
    assert!(p.starts.is_empty(), "no restart within its backoff: {:?}", p.starts);
    assert_eq!(run(1, "v1", 1, 0, false, &[exited], 10).starts, [start(0, 1)]);
}

#[test]
fn a_long_run_resets_the_backoff_and_pruning_keeps_the_count() {
    let mut long = failed(0, 3, 2000);
    long.started_at = Some(t(0));
    let atts = [failed(0, 1, 10), failed(0, 2, 20), long.clone()];
    let refs: Vec<&Attempt> = atts.iter().collect();
    assert_eq!(consecutive_failures(&refs), 1);

    let atts: Vec<Attempt> = (0..6).map(|i| failed(0, i, i64::from(i) * 10)).collect();
    let p = run(1, "v1", 1, 0, false, &atts, 50);
    assert_eq!(p.prune, ["web-web-0-2", "web-web-0-1", "web-web-0-0"]);
    assert_eq!(p.annotate, [("web-web-0-3".to_string(), 3)]);
    // After pruning, the annotation carries the three older failures.
    let mut kept: Vec<Attempt> = atts[3..].to_vec();
    kept[0].failures_before = 3;
    let refs: Vec<&Attempt> = kept.iter().collect();
    assert_eq!(consecutive_failures(&refs), 6);
    assert!(ANNOTATION_FAILURES_BEFORE.starts_with("berth.dev/"));
}

fn old_running(n: u32) -> Vec<Attempt> {
    (0..n).map(|s| att(s, 0, "v1", Phase::Running)).collect()
}

#[test]
fn a_rollout_surges_one_and_stops_the_old_once_the_new_is_ready() {
    let mut atts = old_running(4);
    let p = run(4, "v2", 1, 0, false, &atts, 0);
    assert_eq!(p.starts, [start(0, 1)], "one above instances");
    assert!(p.kills.is_empty(), "maxUnavailable 0 stops nothing first");

    atts.push(att(0, 1, "v2", Phase::Starting));
    let p = run(4, "v2", 1, 0, false, &atts, 1);
    assert!(p.starts.is_empty() && p.kills.is_empty(), "waits for the new one: {p:?}");

    atts.last_mut().unwrap().phase = Phase::Running;
    atts.last_mut().unwrap().healthy = true;
    let p = run(4, "v2", 1, 0, false, &atts, 2);
    assert_eq!(p.kills, [superseded("web-web-0-0")]);
    assert!(p.starts.is_empty(), "the old one still runs until it has stopped");
}

#[test]
fn an_unhealthy_new_instance_holds_the_rollout() {
    let mut atts = old_running(2);
    atts.push(Attempt { healthy: false, ..att(0, 1, "v2", Phase::Running) });
    let p = run(2, "v2", 1, 0, false, &atts, 0);
    assert!(p.kills.is_empty() && p.starts.is_empty(), "{p:?}");
}

#[test]
fn without_surge_an_old_instance_is_stopped_first_within_max_unavailable() {
    let atts = old_running(4);
    let p = run(4, "v2", 0, 1, false, &atts, 0);
    assert!(p.starts.is_empty());
    assert_eq!(p.kills, [superseded("web-web-3-0")], "one, from the highest slot");

    let mut atts = atts;
    atts[3].stopping = true;
    let p = run(4, "v2", 0, 1, false, &atts, 1);
    assert!(p.starts.is_empty() && p.kills.is_empty(), "waits for it to stop: {p:?}");
    atts[3].phase = Phase::Killed;
    atts[3].stopping = false;
    atts[3].reason = Some(REASON_SUPERSEDED.into());
    let p = run(4, "v2", 0, 1, false, &atts, 2);
    assert_eq!(p.starts, [start(3, 1)]);
}

#[test]
fn paused_holds_the_rollout_but_replaces_a_failed_instance_with_its_own_template() {
    let mut atts = old_running(3);
    atts.push(att(0, 1, "v2", Phase::Running));
    atts[1] = failed(1, 0, 0);
    let p = run(3, "v2", 1, 1, true, &atts, 100);
    assert_eq!(p.starts, [Start { slot: 1, attempt: 1, template: Template::Of("web-web-1-0".into()) }]);
    assert!(p.kills.is_empty(), "no supersede while paused: {p:?}");
    let resumed = run(3, "v2", 1, 1, false, &atts, 100);
    assert!(resumed.kills.contains(&superseded("web-web-0-0")), "{resumed:?}");
}

#[test]
fn scaling_down_stops_the_highest_slots_and_up_adds_slots() {
    let atts = old_running(4);
    let p = run(2, "v1", 1, 0, false, &atts, 0);
    let names: Vec<(&str, &str)> = p.kills.iter().map(|k| (k.name.as_str(), k.reason)).collect();
    assert_eq!(names, [("web-web-2-0", REASON_SCALED_DOWN), ("web-web-3-0", REASON_SCALED_DOWN)]);
    let p = run(6, "v1", 1, 0, false, &atts, 0);
    assert_eq!(p.starts, [start(4, 0), start(5, 0)]);
}

/// A small deterministic generator (xorshift), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, percent: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100 < percent
    }
}

fn serving(atts: &[Attempt], n: u32) -> u32 {
    (0..n).filter(|s| atts.iter().any(|a| a.slot == *s && a.is_kept() && a.is_available())).count() as u32
}

/// Rolls `n` instances from v1 to v2, one planner round per simulated
/// second, with random readiness and (during the first `fail_until`
/// rounds) random failures; checks the bounds after every round and that
/// the rollout completes.
fn simulate(seed: u64, n: u32, surge: u32, unavailable: u32, fail_until: u32) -> Result<(), String> {
    let retry = RetryPolicy { limit: None, backoff_seconds: Some(1), max_backoff_seconds: Some(4) };
    let mut rng = Rng(seed | 1);
    let mut atts = old_running(n);
    let mut timeline = Vec::new();
    for step in 0..2000u32 {
        let now = t(i64::from(step));
        let before = serving(&atts, n);
        let input = GroupInput {
            instances: n,
            hash: "v2",
            max_surge: surge,
            max_unavailable: unavailable,
            retry: &retry,
            paused: false,
            attempts: &atts,
        };
        let p = plan(&input, now);
        for k in &p.kills {
            let a = atts.iter_mut().find(|a| a.name == k.name).ok_or("kill of an unknown attempt")?;
            a.stopping = true;
            a.reason = Some(k.reason.into());
        }
        atts.retain(|a| !p.prune.contains(&a.name));
        for s in &p.starts {
            let hash = match &s.template {
                Template::Current => "v2".to_string(),
                Template::Of(x) => atts.iter().find(|a| &a.name == x).unwrap().hash.clone(),
            };
            atts.push(Attempt { healthy: false, ..att(s.slot, s.attempt, &hash, Phase::Pending) });
        }
        let live = atts.iter().filter(|a| a.is_live()).count() as u32;
        let after = serving(&atts, n);
        timeline.push(format!("{step}: live {live} serving {after} starts {:?} kills {:?}", p.starts, p.kills));
        let floor = n.saturating_sub(unavailable).min(before);
        if live > n + surge || after < floor {
            return Err(format!(
                "bounds broken (live {live} > {} or serving {after} < {floor}):\n{}",
                n + surge,
                timeline.join("\n")
            ));
        }
        if atts.iter().all(|a| !a.is_live() || (a.hash == "v2" && a.is_available()))
            && serving(&atts, n) == n
            && step > fail_until
        {
            return Ok(());
        }
        // The world moves: containers start, become healthy, stop, fail.
        for a in atts.iter_mut().filter(|a| a.is_live()) {
            if a.stopping {
                if rng.chance(50) {
                    a.phase = Phase::Killed;
                    a.stopping = false;
                    a.finished_at = Some(now);
                }
            } else if a.phase == Phase::Pending {
                if rng.chance(40) {
                    a.phase = Phase::Running;
                }
            } else if !a.healthy {
                a.healthy = rng.chance(40);
            } else if step < fail_until && rng.chance(3) {
                a.phase = Phase::Failed;
                a.healthy = false;
                a.reason = Some("Error".into());
                a.finished_at = Some(now);
            }
        }
    }
    Err(format!("no convergence:\n{}", timeline.join("\n")))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    #[test]
    fn rollouts_stay_within_surge_and_unavailability_and_complete(
        seed in proptest::prelude::any::<u64>(),
        n in 1u32..8,
        surge in 0u32..3,
        unavailable in 0u32..3,
        fail_until in 0u32..60,
    ) {
        let (surge, unavailable) = if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) };
        if let Err(e) = simulate(seed, n, surge, unavailable, fail_until) {
            proptest::prop_assert!(false, "n {} surge {} unavailable {}: {}", n, surge, unavailable, e);
        }
    }
}

#[test]
fn backoff_is_shown_until_its_time() {
    let p = run(1, "v1", 1, 0, false, &[failed(0, 0, 0)], 3);
    assert_eq!(t(0).duration_until(p.backoffs[0].until), SignedDuration::from_secs(10));
}

#[test]
fn an_old_instance_whose_surge_finds_no_room_is_still_stopped_within_max_unavailable() {
    // Slot 1 is done; slot 0's surge start may never be placed (a UNIQUE
    // constraint on two agents), so the old one must go within the budget.
    let mut atts = old_running(2);
    atts[1] = Attempt { reason: Some(REASON_SUPERSEDED.into()), ..att(1, 0, "v1", Phase::Killed) };
    atts.push(att(1, 1, "v2", Phase::Running));
    let p = run(2, "v2", 1, 1, false, &atts, 0);
    assert_eq!(p.starts, [start(0, 1)]);
    assert_eq!(p.kills, [superseded("web-web-0-0")]);
}
