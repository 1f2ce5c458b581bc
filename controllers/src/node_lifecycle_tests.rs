use std::sync::Arc;

use berth_api::{AgentSpec, AgentStatus, PlacementSpec, PlacementStatus};

use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const TTL: Duration = Duration::from_secs(10);

fn agent(ready: Option<Condition>) -> Agent {
    let mut a = Agent::new("a1", AgentSpec::default());
    a.status = Some(AgentStatus { conditions: ready.into_iter().collect(), ..Default::default() });
    a
}

fn placement(name: &str, agent: &str, phase: Option<Phase>) -> Arc<Placement> {
    let mut p = Placement::new(name, PlacementSpec { agent: agent.into(), ..Default::default() });
    p.status = phase.map(|phase| PlacementStatus { phase, ..Default::default() });
    Arc::new(p)
}

#[test]
fn the_ttl_runs_from_when_the_controller_saw_the_lease_move_not_from_renew_time() {
    let mut seen = None;
    // The agent's clock is an hour behind: its renewTime alone would say lost.
    observe(&mut seen, Some("2026-01-01T00:00:00Z".into()), at("2026-01-01T01:00:00Z"));
    assert_eq!(decide(seen.as_ref(), TTL, at("2026-01-01T01:00:09Z")), Liveness::Unconfirmed);
    // The same renewTime again does not restart the clock.
    observe(&mut seen, Some("2026-01-01T00:00:00Z".into()), at("2026-01-01T01:00:08Z"));
    assert_eq!(
        decide(seen.as_ref(), TTL, at("2026-01-01T01:00:10Z")),
        Liveness::Lost { since: at("2026-01-01T01:00:00Z") }
    );
    // A renewal does.
    observe(&mut seen, Some("2026-01-01T00:00:11Z".into()), at("2026-01-01T01:00:11Z"));
    assert_eq!(decide(seen.as_ref(), TTL, at("2026-01-01T01:00:12Z")), Liveness::Alive);
}

#[test]
fn an_agent_without_a_lease_is_not_judged() {
    assert_eq!(decide(None, TTL, at("2026-01-01T00:00:00Z")), Liveness::Unleased);
    assert_eq!(ready_change(&agent(None), &Liveness::Unleased, TTL), None);
}

#[test]
fn a_lost_agent_becomes_not_ready_once_and_ready_again_when_it_renews() {
    let lost = Liveness::Lost { since: at("2026-01-01T00:00:00Z") };
    let ready = Condition::new("Ready", true, "AgentReady", "running");
    let marked = ready_change(&agent(Some(ready.clone())), &lost, TTL).expect("marked NotReady");
    assert_eq!((marked.status.as_str(), marked.reason.as_str()), ("False", REASON_NOT_RENEWING));
    assert!(marked.message.contains("2026-01-01T00:00:00Z") && marked.message.contains("10s"), "{}", marked.message);
    // Already marked: nothing more to write.
    assert_eq!(ready_change(&agent(Some(marked.clone())), &lost, TTL), None);
    let back = ready_change(&agent(Some(marked)), &Liveness::Alive, TTL).expect("Ready again");
    assert_eq!(back.status, "True");
    // A Ready agent that stays alive needs nothing.
    assert_eq!(ready_change(&agent(Some(ready)), &Liveness::Alive, TTL), None);
}

#[test]
fn only_the_lost_agents_unfinished_placements_are_lost() {
    let ps = [
        placement("pending", "a1", None),
        placement("running", "a1", Some(Phase::Running)),
        placement("done", "a1", Some(Phase::Succeeded)),
        placement("elsewhere", "a2", Some(Phase::Running)),
    ];
    let names: Vec<String> = to_lose("a1", &ps).iter().map(|p| p.name_any()).collect();
    assert_eq!(names, ["pending", "running"]);
}

#[test]
fn a_lost_agent_is_not_ready_again_until_its_lease_moves_after_a_controller_restart() {
    let lost = Condition::new("Ready", false, REASON_NOT_RENEWING, "lost");
    let mut seen = None;
    // A fresh controller sees the dead agent's old Lease for the first time.
    observe(&mut seen, Some("2026-01-01T00:00:00Z".into()), at("2026-01-01T00:10:00Z"));
    let first = decide(seen.as_ref(), TTL, at("2026-01-01T00:10:01Z"));
    assert_eq!(first, Liveness::Unconfirmed);
    assert_eq!(ready_change(&agent(Some(lost.clone())), &first, TTL), None);
    // It renews: Ready again.
    observe(&mut seen, Some("2026-01-01T00:10:02Z".into()), at("2026-01-01T00:10:02Z"));
    let renewed = decide(seen.as_ref(), TTL, at("2026-01-01T00:10:03Z"));
    assert_eq!(renewed, Liveness::Alive);
    assert!(ready_change(&agent(Some(lost)), &renewed, TTL).is_some_and(|c| c.status == "True"));
}
