//! Unit tests of the pure parts: demand, which placements an offer takes,
//! the ledger after an accept, and a framework's status.

use std::sync::Arc;

use berth_api::framework::{CONDITION_OFFERED, FrameworkSpec, Mode, Scheduler};
use berth_api::{
    Agent, AgentSpec, AgentStatus, Claim, ClaimKind, Container, Framework, Offer, OfferSpec, Placement, PlacementSpec,
    ResourceVec, Resources,
};
use jiff::Timestamp;

use super::answers::{FRAMEWORK_LABEL, converted, split_accept};
use super::inputs::{DEFAULT_OFFER_UNIT, demand};
use crate::allocator::apply::Applied;
use crate::allocator::{Idle, IdleReason, Input, RoundPlan};

fn res(cpu: &str, mem: &str) -> Resources {
    Resources { cpu: Some(cpu.into()), memory: Some(mem.into()) }
}

fn offer() -> Offer {
    let spec = OfferSpec {
        framework: "fa".into(),
        agent: "a1".into(),
        resources: res("2", "2Gi"),
        ports: Vec::new(),
        expires_at: Some("2026-01-01T00:00:30Z".into()),
        decline: None,
    };
    let mut o = Offer::new("o", spec);
    o.metadata.namespace = Some("ns".into());
    o
}

fn placement(name: &str, agent: &str, cpu: &str, label: Option<&str>) -> Arc<Placement> {
    let container = Container { resources: res(cpu, "1Gi"), ..Default::default() };
    let spec = PlacementSpec { agent: agent.into(), offer: Some("o".into()), container, ..Default::default() };
    let mut p = Placement::new(name, spec);
    p.metadata.namespace = Some("ns".into());
    p.metadata.labels = label.map(|f| [(FRAMEWORK_LABEL.to_string(), f.to_string())].into());
    Arc::new(p)
}

fn at(t: &str) -> Timestamp {
    t.parse().unwrap()
}

#[test]
fn an_external_offers_framework_wants_offers_until_suppressed() {
    let mut fw = Framework::new(
        "fa",
        FrameworkSpec { mode: Mode::Offers, scheduler: Scheduler::External, ..Default::default() },
    );
    let total = ResourceVec::new(8000, 16 << 30);
    let d = demand(&fw, total).unwrap();
    assert_eq!((d.total, d.task), (total, DEFAULT_OFFER_UNIT));
    fw.spec.suppressed = Some(true);
    assert_eq!(demand(&fw, total), None);
    fw.spec.suppressed = Some(false);
    fw.spec.scheduler = Scheduler::BuiltinBatch;
    assert_eq!(
        demand(&fw, total),
        None,
        "a built-in scheduler's demand is its waiting tasks (offers::builtin), not an offer unit"
    );
}

#[test]
fn an_offer_takes_what_fits_oldest_first_and_refuses_the_rest_naming_why() {
    let ps = vec![
        placement("p1", "a1", "1", Some("fa")),
        placement("p2", "a1", "2", None),
        placement("p3", "a2", "1", None),
        placement("p4", "a1", "1", Some("fb")),
        placement("p5", "a1", "1", None),
    ];
    let (take, refused) = split_accept(&offer(), &ps, Some(at("2026-01-01T00:00:10Z")));
    let names: Vec<_> = take.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["p1", "p5"]);
    let why: Vec<_> = refused.iter().map(|(p, w)| (p.metadata.name.clone().unwrap(), w.clone())).collect();
    assert!(why[0].1.contains("exceed what is left of offer ns/o"), "{why:?}");
    assert!(why[1].1.contains("spec.agent a2 is not offer ns/o's agent a1"), "{why:?}");
    assert!(why[2].1.contains("made to framework fa, not fb"), "{why:?}");
    let (take, refused) = split_accept(&offer(), &ps[..1], Some(at("2026-01-01T00:00:30Z")));
    assert!(take.is_empty() && refused[0].1.contains("expired"), "{refused:?}");
}

#[test]
fn accepting_turns_the_hold_into_placement_claims_and_frees_the_rest() {
    let mut a = Agent::new("a1", AgentSpec::default());
    let hold = Claim {
        kind: ClaimKind::Hold,
        owner: "ns/o".into(),
        uid: String::new(),
        resources: res("2", "2Gi"),
        ports: Vec::new(),
        created_at: None,
    };
    a.status = Some(AgentStatus { allocatable: res("4", "8Gi"), claims: vec![hold], ..Default::default() });
    let p = placement("p1", "a1", "1", None);
    let next = converted(&a, "ns/o", &[&*p], "t").unwrap();
    let st = next.status.unwrap();
    assert_eq!(st.claims.len(), 1);
    assert_eq!((st.claims[0].kind, st.claims[0].owner.as_str()), (ClaimKind::Placement, "ns/p1"));
    assert_eq!(st.claimed().unwrap(), ResourceVec::new(1000, 1 << 30));
    let st = st.clone();
    let again = Agent { status: Some(st), ..a.clone() };
    assert!(converted(&again, "ns/o", &[&*p], "t").is_none(), "a hold is turned once");
}

fn wanting_ports(name: &str, n: usize) -> Arc<Placement> {
    let mut p = (*placement(name, "a1", "100m", None)).clone();
    p.spec.container.ports = vec![Default::default(); n];
    Arc::new(p)
}

#[test]
fn an_offer_gives_each_accepting_placement_its_ports_from_the_hold_and_refuses_one_short() {
    let mut o = offer();
    o.spec.ports = berth_api::ports::parse("100-102").unwrap();
    let ps = vec![wanting_ports("p1", 2), wanting_ports("p2", 2), wanting_ports("p3", 1)];
    let (take, refused) = split_accept(&o, &ps, Some(at("2026-01-01T00:00:10Z")));
    let names: Vec<_> = take.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["p1", "p3"]);
    assert_eq!(refused[0].1, "spec.ports: needs 2 ports, offer ns/o has 1 left of 3");

    let mut a = Agent::new("a1", AgentSpec::default());
    let hold = Claim {
        kind: ClaimKind::Hold,
        owner: "ns/o".into(),
        uid: String::new(),
        resources: res("2", "2Gi"),
        ports: vec![100, 101, 102],
        created_at: None,
    };
    a.status = Some(AgentStatus {
        allocatable: res("4", "8Gi"),
        ports: o.spec.ports.clone(),
        claims: vec![hold],
        ..Default::default()
    });
    let next = converted(&a, "ns/o", &take, "t").unwrap();
    let st = next.status.unwrap();
    let held: Vec<(&str, &[u16])> = st.claims.iter().map(|c| (c.owner.as_str(), c.ports.as_slice())).collect();
    assert_eq!(held, [("ns/p1", &[100, 101][..]), ("ns/p3", &[102][..])]);
    assert!(berth_api::invariants::overcommits(&[Agent { status: Some(st), ..a }]).is_empty());
}

#[test]
fn a_framework_status_says_why_it_got_nothing_and_is_stable() {
    let mut fw = Framework::new("fa", FrameworkSpec { mode: Mode::Offers, ..Default::default() });
    fw.metadata.namespace = Some("ns".into());
    let mut plan = RoundPlan::default();
    plan.shares.insert("ns/fa".into(), 0.25);
    let msg = "it declined all 1 agent(s) with room".to_string();
    plan.idle.insert("ns/fa".into(), Idle { reason: IdleReason::Declined, message: msg });
    let st = super::status::desired(&fw, &Input::default(), &plan, &Applied::default(), None, "t1");
    let c = berth_api::condition::find(&st.conditions, CONDITION_OFFERED).unwrap();
    assert_eq!((c.is_true(), c.reason.as_str()), (false, "Declined"));
    assert_eq!((st.dominant_share, st.offers_outstanding), (Some(0.25), Some(0)));
    fw.status = Some(st.clone());
    let again = super::status::desired(&fw, &Input::default(), &plan, &Applied::default(), None, "t2");
    assert_eq!(again, st, "nothing changed, nothing to write");
}
