//! One test per rule of the allocator's round.

use berth_api::ResourceVec;
use berth_api::cluster::{AllocationPolicy, ClusterSpec, Role};
use berth_api::framework::Mode;
use jiff::{SignedDuration, Timestamp};

use super::sim::{GI, times};
use super::*;

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn r(cpu_millis: u64, mem_gi: u64) -> ResourceVec {
    ResourceVec::new(cpu_millis, mem_gi * GI)
}

fn agent(name: &str, alloc: ResourceVec, claimed: ResourceVec) -> AgentInput {
    AgentInput { name: name.into(), allocatable: alloc, claimed, holds: vec![], schedulable: true }
}

/// A framework in role `role` with `pending` tasks of `task`, holding `allocated`.
fn fw(id: &str, role: &str, task: ResourceVec, pending: u64, allocated: ResourceVec) -> FrameworkInput {
    FrameworkInput {
        id: id.into(),
        role: role.into(),
        weight: 1.0,
        priority: 0,
        mode: Mode::Offers,
        allocated,
        demand: (pending > 0).then(|| Demand { total: times(task, pending), task }),
        usable: None,
        disconnected: None,
    }
}

fn input(agents: Vec<AgentInput>, frameworks: Vec<FrameworkInput>) -> Input {
    Input { agents, frameworks, ..Default::default() }
}

/// The frameworks offered anything, in plan order.
fn offered(plan: &RoundPlan) -> Vec<&str> {
    plan.offers.iter().map(|o| o.framework.as_str()).collect()
}

/// A cluster whose `busy` agent holds what the frameworks hold, and whose
/// `spare` agent has room for exactly one 1-cpu/1Gi task.
fn contended(frameworks: Vec<FrameworkInput>) -> Input {
    let held: ResourceVec = frameworks.iter().map(|f| f.allocated).sum();
    input(vec![agent("busy", held, held), agent("spare", r(1000, 1), ResourceVec::ZERO)], frameworks)
}

#[test]
fn free_capacity_goes_to_the_lowest_dominant_share() {
    let t = r(1000, 1);
    let plan = plan_round(
        &contended(vec![fw("ns/cpu-heavy", "*", t, 5, r(4000, 1)), fw("ns/mem-heavy", "*", t, 5, r(1000, 3))]),
        now(),
    );
    // Total: 6 cpu, 5Gi. cpu-heavy holds 4/6 cpu; mem-heavy holds 3/5 memory.
    assert_eq!(offered(&plan), ["ns/mem-heavy"]);
    assert_eq!(plan.idle["ns/cpu-heavy"].reason, IdleReason::NoCapacity, "{:?}", plan.idle);
}

#[test]
fn a_heavier_weight_earns_a_larger_share() {
    let t = r(1000, 1);
    let mut heavy = fw("ns/heavy", "*", t, 5, r(3000, 0));
    heavy.weight = 2.0;
    let light = fw("ns/light", "*", t, 5, r(2000, 0));
    // Shares 3/6 and 2/6; weighted 0.25 and 0.33.
    assert_eq!(offered(&plan_round(&contended(vec![light, heavy]), now())), ["ns/heavy"]);
}

#[test]
fn roles_are_ordered_by_their_share_before_their_frameworks() {
    let t = r(1000, 1);
    let frameworks = vec![
        fw("ns/a1", "a", t, 5, r(1000, 0)),
        fw("ns/a2", "a", t, 5, r(1000, 0)),
        fw("ns/b1", "b", t, 5, r(1500, 0)),
    ];
    // Role a holds 2 cpu, role b 1.5: b's framework goes first though it holds the most.
    assert_eq!(offered(&plan_round(&contended(frameworks), now())), ["ns/b1"]);
}

#[test]
fn strict_priority_serves_the_higher_priority_first() {
    let t = r(1000, 1);
    let mut high = fw("ns/high", "*", t, 5, r(3000, 0));
    high.priority = 10;
    let mut inp = contended(vec![fw("ns/low", "*", t, 5, ResourceVec::ZERO), high]);
    inp.policy.kind = AllocationPolicy::StrictPriority;
    assert_eq!(offered(&plan_round(&inp, now())), ["ns/high"]);
}

#[test]
fn a_role_below_its_guarantee_is_served_first_and_its_share_is_kept_free() {
    let t = r(1000, 1);
    let frameworks = vec![fw("ns/fair", "fair", t, 10, ResourceVec::ZERO), fw("ns/prod", "prod", t, 10, r(2000, 0))];
    let mut inp =
        input(vec![agent("busy", r(2000, 8), r(2000, 0)), agent("a", r(4000, 8), ResourceVec::ZERO)], frameworks);
    inp.policy.roles.insert("prod".into(), RoleQuota { guarantee: r(5000, 0), ..Default::default() });
    let plan = plan_round(&inp, now());
    // prod holds 2 of its 5 guaranteed cores: 3 of the 4 free cores go to it
    // though it holds the larger share; the 4th is shared fairly.
    let to = |f: &str| plan.offers.iter().filter(|o| o.framework == f).map(|o| o.resources).sum::<ResourceVec>();
    assert_eq!((to("ns/prod"), to("ns/fair")), (r(3000, 3), r(1000, 1)), "{plan:?}");

    // With prod's demand down to one task, nothing is kept beyond what it waits for.
    inp.frameworks[1].demand = Some(Demand { total: t, task: t });
    let plan = plan_round(&inp, now());
    let fair: ResourceVec = plan.offers.iter().filter(|o| o.framework == "ns/fair").map(|o| o.resources).sum();
    assert_eq!(fair, r(3000, 3), "{plan:?}");
}

#[test]
fn fair_sharing_leaves_room_for_a_guarantee_it_cannot_use_yet() {
    let t = r(1000, 1);
    let mut inp = input(
        vec![agent("a", r(2000, 8), ResourceVec::ZERO)],
        vec![fw("ns/fair", "fair", t, 10, ResourceVec::ZERO), fw("ns/prod", "prod", r(1000, 1), 1, ResourceVec::ZERO)],
    );
    inp.policy.roles.insert("prod".into(), RoleQuota { guarantee: r(1000, 1), ..Default::default() });
    // prod is declined on the only agent, so this round it cannot take its guarantee; fair must leave it.
    inp.filters.push(DeclineFilter {
        framework: "ns/prod".into(),
        agent: "a".into(),
        until: now() + SignedDuration::from_secs(5),
    });
    let plan = plan_round(&inp, now());
    assert_eq!(plan.offers.iter().map(|o| o.resources).sum::<ResourceVec>(), r(1000, 1), "{plan:?}");
    assert_eq!(plan.idle["ns/prod"].reason, IdleReason::Declined);
}

#[test]
fn a_role_limit_is_never_exceeded() {
    let t = r(1000, 1);
    let mut inp = input(vec![agent("a", r(8000, 8), ResourceVec::ZERO)], vec![fw("ns/f", "capped", t, 10, r(1000, 1))]);
    inp.policy.roles.insert("capped".into(), RoleQuota { limit: Some(r(3000, 64)), ..Default::default() });
    let plan = plan_round(&inp, now());
    assert_eq!(plan.offers[0].resources, r(2000, 2), "holds 1 of 3 cores: two more tasks fit the limit");
    inp.frameworks[0].allocated = r(3000, 3);
    let plan = plan_round(&inp, now());
    assert!(plan.offers.is_empty());
    assert_eq!(plan.idle["ns/f"].reason, IdleReason::QuotaLimit);
    assert!(plan.idle["ns/f"].message.contains("limit"), "{}", plan.idle["ns/f"].message);
}

#[test]
fn a_declined_agent_is_not_reoffered_until_the_filter_ends() {
    let t = r(1000, 1);
    let mut inp =
        input(vec![agent("a", r(1000, 1), ResourceVec::ZERO)], vec![fw("ns/f", "*", t, 1, ResourceVec::ZERO)]);
    let until = now() + SignedDuration::from_secs(10);
    inp.filters.push(DeclineFilter { framework: "ns/f".into(), agent: "a".into(), until });
    let plan = plan_round(&inp, now());
    assert!(plan.offers.is_empty());
    assert_eq!(plan.idle["ns/f"].reason, IdleReason::Declined);
    assert!(plan.idle["ns/f"].message.contains("2026-01-01T00:00:10Z"), "{}", plan.idle["ns/f"].message);
    assert!(plan_round(&inp, until - SignedDuration::from_secs(1)).offers.is_empty());
    assert_eq!(offered(&plan_round(&inp, until)), ["ns/f"]);
}

#[test]
fn frameworks_without_demand_or_not_in_offers_mode_get_nothing() {
    let t = r(1000, 1);
    let mut shared = fw("ns/shared", "*", t, 3, ResourceVec::ZERO);
    shared.mode = Mode::SharedState;
    let idle = fw("ns/idle", "*", t, 0, ResourceVec::ZERO);
    let plan = plan_round(&input(vec![agent("a", r(8000, 8), ResourceVec::ZERO)], vec![shared, idle]), now());
    assert!(plan.offers.is_empty());
    assert_eq!(plan.idle["ns/idle"].reason, IdleReason::Suppressed);
    assert!(!plan.idle.contains_key("ns/shared"), "shared-state frameworks are not the allocator's");
}

#[test]
fn capacity_held_by_an_open_offer_is_not_offered_again() {
    let t = r(1000, 1);
    let open = |id: &str, agent: &str| OutstandingOffer {
        id: id.into(),
        framework: "ns/first".into(),
        agent: agent.into(),
        resources: r(2000, 2),
        expires_at: now() + SignedDuration::from_secs(30),
    };
    // Agent a's ledger has the hold; agent b's hold is not written yet: both count.
    let mut a = agent("a", r(2000, 2), r(2000, 2));
    a.holds.push("ns/o1".into());
    let mut inp = input(
        vec![a, agent("b", r(2000, 2), ResourceVec::ZERO)],
        vec![fw("ns/first", "*", t, 4, ResourceVec::ZERO), fw("ns/second", "*", t, 4, ResourceVec::ZERO)],
    );
    inp.offers = vec![open("ns/o1", "a"), open("ns/o2", "b")];
    let plan = plan_round(&inp, now());
    assert!(plan.offers.is_empty(), "{plan:?}");
    assert_eq!(plan.idle["ns/first"].reason, IdleReason::OffersOutstanding);
    // All capacity is held, so an agent is kept for the second framework.
    assert_eq!(plan.idle["ns/second"].reason, IdleReason::Reserved);
}

#[test]
fn stale_offers_are_rescinded_and_not_reoffered_in_the_same_round() {
    let t = r(1000, 1);
    let offer = |id: &str, fw: &str, agent: &str, expires: i64| OutstandingOffer {
        id: id.into(),
        framework: fw.into(),
        agent: agent.into(),
        resources: r(1000, 1),
        expires_at: now() + SignedDuration::from_secs(expires),
    };
    let mut drained = agent("drained", r(1000, 1), r(1000, 1));
    drained.schedulable = false;
    let mut inp =
        input(vec![agent("a", r(1000, 1), r(1000, 1)), drained], vec![fw("ns/f", "*", t, 2, ResourceVec::ZERO)]);
    inp.offers = vec![
        offer("ns/expired", "ns/f", "a", 0),
        offer("ns/drained", "ns/f", "drained", 30),
        offer("ns/orphan", "ns/gone", "a", 30),
        offer("ns/lost", "ns/f", "vanished", 30),
    ];
    let plan = plan_round(&inp, now());
    assert_eq!(
        plan.rescinds,
        [
            ("ns/expired".to_string(), RescindReason::Expired),
            ("ns/drained".to_string(), RescindReason::AgentGone),
            ("ns/orphan".to_string(), RescindReason::FrameworkGone),
            ("ns/lost".to_string(), RescindReason::AgentGone),
        ]
    );
    assert!(plan.offers.is_empty(), "a rescinded hold is free only once released: {plan:?}");
}

#[test]
fn one_offer_per_framework_and_agent_expiring_after_the_timeout() {
    let t = r(500, 1);
    let mut inp =
        input(vec![agent("a", r(4000, 16), ResourceVec::ZERO)], vec![fw("ns/f", "*", t, 3, ResourceVec::ZERO)]);
    inp.policy.offer_timeout = SignedDuration::from_secs(7);
    let plan = plan_round(&inp, now());
    assert_eq!(plan.offers.len(), 1);
    assert_eq!(plan.offers[0].resources, r(1500, 3), "its whole demand, no more");
    assert_eq!(plan.offers[0].expires_at, now() + SignedDuration::from_secs(7));
    assert!((plan.shares["ns/f"] - 1500.0 / 4000.0).abs() < 1e-9);
}

#[test]
fn a_large_task_gets_an_agent_kept_for_it_while_small_ones_wait() {
    let big = fw("ns/big", "*", r(4000, 4), 1, ResourceVec::ZERO);
    let small = fw("ns/small", "*", r(500, 1), 20, r(3000, 3));
    let inp = input(vec![agent("a", r(4000, 8), r(3000, 3)), agent("b", r(4000, 8), r(3500, 3))], vec![big, small]);
    let plan = plan_round(&inp, now());
    assert_eq!(plan.reservation, Some(("ns/big".to_string(), "a".to_string())));
    assert_eq!(plan.idle["ns/big"].reason, IdleReason::Reserved);
    assert!(plan.offers.iter().all(|o| o.agent != "a"), "{plan:?}");
    assert_eq!(offered(&plan), ["ns/small"]);
}

#[test]
fn a_framework_is_offered_only_agents_its_pending_tasks_can_use() {
    let mut f = fw("ns/f", "*", r(1000, 1), 4, ResourceVec::ZERO);
    f.usable = Some(["b".to_string()].into());
    let other = fw("ns/g", "*", r(1000, 1), 1, ResourceVec::ZERO);
    let agents = vec![agent("a", r(4000, 8), ResourceVec::ZERO), agent("b", r(4000, 8), ResourceVec::ZERO)];
    let plan = plan_round(&input(agents.clone(), vec![f.clone(), other]), now());
    let to_f: Vec<&str> = plan.offers.iter().filter(|o| o.framework == "ns/f").map(|o| o.agent.as_str()).collect();
    assert_eq!(to_f, ["b"], "{plan:?}");
    assert!(plan.offers.iter().any(|o| o.framework == "ns/g" && o.agent == "a"), "others still get a: {plan:?}");

    // A big task that fits only on a barred agent gets no agent kept for it there.
    let mut big = fw("ns/big", "*", r(4000, 4), 1, ResourceVec::ZERO);
    big.usable = Some(["b".to_string()].into());
    let inp = input(vec![agent("a", r(4000, 8), ResourceVec::ZERO), agent("b", r(4000, 8), r(1000, 1))], vec![big]);
    let plan = plan_round(&inp, now());
    assert_eq!(plan.reservation, Some(("ns/big".to_string(), "b".to_string())), "{plan:?}");
    assert!(plan.offers.is_empty(), "{plan:?}");
}

#[test]
fn a_framework_whose_constraints_rule_out_every_agent_is_told_so() {
    // b is full and too small to ever take the task, so nothing is kept for it there.
    let agents = vec![agent("a", r(4000, 8), ResourceVec::ZERO), agent("b", r(500, 1), r(500, 1))];
    let mut f = fw("ns/f", "*", r(1000, 1), 1, ResourceVec::ZERO);
    f.usable = Some(Default::default());
    let plan = plan_round(&input(agents.clone(), vec![f.clone()]), now());
    assert!(plan.offers.is_empty(), "{plan:?}");
    let idle = &plan.idle["ns/f"];
    assert_eq!(idle.reason, IdleReason::NoUsableAgent);
    assert!(idle.message.contains("rule out all 2 schedulable agent(s)"), "{idle:?}");
    // It may use only the full agent: the one with room is ruled out, not missing.
    f.usable = Some(["b".to_string()].into());
    let idle = plan_round(&input(agents, vec![f]), now()).idle["ns/f"].clone();
    assert_eq!(idle.reason, IdleReason::NoUsableAgent, "{idle:?}");
    assert!(idle.message.contains("all 1 agent(s) with room"), "{idle:?}");
}

#[test]
fn the_policy_is_read_from_the_cluster_and_a_bad_quota_names_its_field() {
    let mut spec = ClusterSpec {
        roles: vec![Role { name: "prod".into(), weight: Some(2.0), ..Default::default() }],
        offer_timeout_seconds: Some(9),
        ..Default::default()
    };
    let policy = Policy::from_spec(&spec).unwrap();
    assert_eq!(policy.role("prod").weight, 2.0);
    assert_eq!(policy.role("other"), RoleQuota::default());
    assert_eq!(policy.offer_timeout, SignedDuration::from_secs(9));
    spec.roles[0].limit = Some(berth_api::Resources { cpu: Some("lots".into()), memory: None });
    let err = Policy::from_spec(&spec).unwrap_err().to_string();
    assert!(err.starts_with("spec.roles[0].limit.cpu: \"lots\" is not a quantity"), "{err}");
}

#[test]
fn a_disconnected_framework_is_offered_nothing_and_its_offers_are_rescinded() {
    let mut gone = fw("ns/gone", "*", r(1000, 1), 4, ResourceVec::ZERO);
    gone.disconnected = Some("its lease framework-gone expired at 2026-01-01T00:00:00Z".into());
    let other = fw("ns/other", "*", r(1000, 1), 1, ResourceVec::ZERO);
    let mut inp = input(vec![agent("a", r(4000, 8), r(1000, 1))], vec![gone, other]);
    inp.agents[0].holds = vec!["ns/o".into()];
    inp.offers = vec![OutstandingOffer {
        id: "ns/o".into(),
        framework: "ns/gone".into(),
        agent: "a".into(),
        resources: r(1000, 1),
        expires_at: now() + SignedDuration::from_secs(30),
    }];
    let plan = plan_round(&inp, now());
    assert_eq!(plan.rescinds, [("ns/o".to_string(), RescindReason::FrameworkDisconnected)]);
    assert_eq!(offered(&plan), ["ns/other"], "{plan:?}");
    assert_eq!(plan.idle["ns/gone"].reason, IdleReason::Disconnected);
    assert!(plan.idle["ns/gone"].message.contains("lease framework-gone expired"), "{:?}", plan.idle);
    assert_eq!(plan.reservation, None, "nothing is kept for a disconnected framework");
}
