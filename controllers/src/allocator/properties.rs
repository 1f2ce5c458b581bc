//! Properties of the allocator over random clusters: the invariants of
//! DESIGN.md (no overcommit, offer exclusivity), quota limits, declines,
//! no starvation, and weighted DRF fairness measured over simulated rounds.

use berth_api::ResourceVec;
use berth_api::cluster::AllocationPolicy;
use berth_api::framework::Mode;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::sim::{GI, times};
use super::*;

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn rv(max_cpu: u64, max_mem: u64) -> impl Strategy<Value = ResourceVec> {
    (0..=max_cpu, 0..=max_mem).prop_map(|(c, m)| ResourceVec::new(c, m))
}

/// `(framework, percent of what is left, held in the ledger, expires in seconds)`.
type OfferSeed = (usize, u64, bool, i64);

/// One agent: allocatable, placements (within it), and up to two open offers
/// carved from what is left, each `(framework, resources, held in ledger, expires in)`.
fn agent_world() -> impl Strategy<Value = (ResourceVec, ResourceVec, Vec<OfferSeed>, bool)> {
    (
        rv(16_000, 64 * GI),
        0u64..=100,
        prop::collection::vec((0usize..5, 1u64..=40, any::<bool>(), -5i64..30), 0..3),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(alloc, pct, offers, schedulable)| {
            let placed = ResourceVec::new(alloc.cpu_millis * pct / 100, alloc.memory_bytes * pct / 100);
            (alloc, placed, offers, schedulable)
        })
}

fn framework() -> impl Strategy<Value = (u8, f64, i32, bool, ResourceVec, Option<(ResourceVec, u64)>)> {
    (
        0u8..3,
        prop::sample::select(vec![0.5, 1.0, 2.0, 3.0]),
        0i32..3,
        prop::bool::weighted(0.85),
        rv(8_000, 32 * GI),
        prop::option::weighted(
            0.85,
            ((1u64..=4000, 1u64..=8 * GI).prop_map(|(c, m)| ResourceVec::new(c, m)), 1u64..20),
        ),
    )
}

fn quota() -> impl Strategy<Value = (ResourceVec, Option<ResourceVec>)> {
    (prop::option::weighted(0.4, rv(20_000, 80 * GI)), prop::option::weighted(0.5, rv(40_000, 160 * GI)))
        .prop_map(|(g, l)| (g.unwrap_or_default(), l))
}

prop_compose! {
    fn world()(
        agents in prop::collection::vec(agent_world(), 1..8),
        fws in prop::collection::vec(framework(), 1..6),
        quotas in prop::collection::vec(quota(), 3),
        strict in any::<bool>(),
        filters in prop::collection::vec((0usize..6, 0usize..8, -10i64..10), 0..6),
    ) -> Input {
        let roles = ["a", "b", "*"];
        let frameworks: Vec<FrameworkInput> = fws.iter().enumerate().map(|(i, (role, weight, priority, offers, allocated, demand))| FrameworkInput {
            id: format!("ns/f{i}"),
            role: roles[*role as usize].into(),
            weight: *weight,
            priority: *priority,
            mode: if *offers { Mode::Offers } else { Mode::SharedState },
            allocated: *allocated,
            demand: demand.map(|(task, n)| Demand { total: times(task, n), task }),
            usable: None,
            disconnected: None,
        }).collect();
        let mut inp = Input { frameworks, ..Default::default() };
        for (i, (alloc, placed, offers, schedulable)) in agents.iter().enumerate() {
            let name = format!("agent-{i}");
            let mut claimed = *placed;
            let mut left = alloc.saturating_sub(placed);
            let mut holds = vec![];
            for (k, (f, pct, held, expires)) in offers.iter().enumerate() {
                let res = ResourceVec::new(left.cpu_millis * pct / 100, left.memory_bytes * pct / 100);
                left = left.saturating_sub(&res);
                let id = format!("ns/o-{i}-{k}");
                if *held {
                    claimed += res;
                    holds.push(id.clone());
                }
                inp.offers.push(OutstandingOffer {
                    id,
                    framework: format!("ns/f{f}"),
                    agent: name.clone(),
                    resources: res,
                    expires_at: now() + SignedDuration::from_secs(*expires),
                });
            }
            inp.agents.push(AgentInput { name, allocatable: *alloc, claimed, holds, schedulable: *schedulable });
        }
        for (name, (g, l)) in roles.iter().zip(&quotas) {
            inp.policy.roles.insert(name.to_string(), RoleQuota { weight: 1.0 + g.cpu_millis as f64 / 10_000.0, guarantee: *g, limit: *l });
        }
        inp.policy.kind = if strict { AllocationPolicy::StrictPriority } else { AllocationPolicy::Drf };
        inp.filters = filters.iter().map(|(f, a, until)| DeclineFilter {
            framework: format!("ns/f{f}"),
            agent: format!("agent-{a}"),
            until: now() + SignedDuration::from_secs(*until),
        }).collect();
        inp
    }
}

fn sum_where<'a>(offers: impl Iterator<Item = &'a NewOffer>, pred: impl Fn(&NewOffer) -> bool) -> ResourceVec {
    offers.filter(|o| pred(o)).map(|o| o.resources).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Invariants 1 and 3: placements, every open offer and the new offers
    /// on an agent fit its allocatable, so no capacity is offered twice.
    #[test]
    fn offers_never_overcommit_an_agent_nor_overlap(inp in world()) {
        let plan = plan_round(&inp, now());
        for a in &inp.agents {
            let placed = a.claimed.saturating_sub(&inp.offers.iter().filter(|o| a.holds.contains(&o.id)).map(|o| o.resources).sum());
            let old: ResourceVec = inp.offers.iter().filter(|o| o.agent == a.name).map(|o| o.resources).sum();
            let new = sum_where(plan.offers.iter(), |o| o.agent == a.name);
            prop_assert!((placed + old + new).fits_in(&a.allocatable), "{}: placed {placed} + open {old} + new {new} > {}", a.name, a.allocatable);
            prop_assert!(a.schedulable || new == ResourceVec::ZERO, "unschedulable {} offered {new}", a.name);
        }
        let mut pairs = std::collections::HashSet::new();
        for o in &plan.offers {
            prop_assert!(pairs.insert((&o.framework, &o.agent)), "two offers to {} on {}", o.framework, o.agent);
            let kept_open = inp.offers.iter().any(|x| x.framework == o.framework && x.agent == o.agent && !plan.rescinds.iter().any(|(id, _)| *id == x.id));
            prop_assert!(!kept_open, "{} already has an open offer on {}", o.framework, o.agent);
        }
    }

    /// A role's placements and offers never go past its limit by this round's offers.
    #[test]
    fn role_limits_are_never_exceeded(inp in world()) {
        let plan = plan_round(&inp, now());
        let rescinded: Vec<&String> = plan.rescinds.iter().map(|(id, _)| id).collect();
        for (role, q) in &inp.policy.roles {
            let Some(limit) = q.limit else { continue };
            let members: Vec<&String> = inp.frameworks.iter().filter(|f| &f.role == role).map(|f| &f.id).collect();
            let before: ResourceVec = inp.frameworks.iter().filter(|f| &f.role == role).map(|f| f.allocated).sum::<ResourceVec>()
                + inp.offers.iter().filter(|o| members.contains(&&o.framework) && !rescinded.contains(&&o.id)).map(|o| o.resources).sum();
            let new = sum_where(plan.offers.iter(), |o| members.contains(&&o.framework));
            prop_assert!(new == ResourceVec::ZERO || (before + new).fits_in(&limit), "role {role}: {before} + {new} > limit {limit}");
        }
    }

    /// Offers go only to `Offers` frameworks, within their demand, never on
    /// a declined agent; stale offers are rescinded, live ones kept.
    #[test]
    fn offers_follow_demand_mode_declines_and_expiry(inp in world()) {
        let plan = plan_round(&inp, now());
        for f in &inp.frameworks {
            let got = sum_where(plan.offers.iter(), |o| o.framework == f.id);
            if got == ResourceVec::ZERO {
                prop_assert_eq!(f.mode == Mode::Offers, plan.idle.contains_key(&f.id));
                continue;
            }
            prop_assert_eq!(f.mode, Mode::Offers);
            let d = f.demand.expect("offered without demand");
            prop_assert!(got.fits_in(&d.total), "{} offered {got} beyond its demand {}", f.id, d.total);
        }
        for o in &plan.offers {
            prop_assert!(!inp.filters.iter().any(|d| d.framework == o.framework && d.agent == o.agent && d.until > now()), "declined agent re-offered: {o:?}");
        }
        for o in &inp.offers {
            let rescinded = plan.rescinds.iter().any(|(id, _)| *id == o.id);
            if o.expires_at <= now() {
                prop_assert!(rescinded, "expired offer {} kept", o.id);
            }
            let live = o.expires_at > now()
                && inp.agents.iter().any(|a| a.name == o.agent && a.schedulable)
                && inp.frameworks.iter().any(|f| f.id == o.framework && f.mode == Mode::Offers);
            prop_assert_eq!(rescinded, !live, "{}", o.id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A framework with a set of usable agents (its pending tasks'
    /// constraints) is offered no other agent, and the cluster's capacity
    /// still is never offered twice.
    #[test]
    fn frameworks_are_offered_only_agents_they_can_use(mut inp in world(), masks in prop::collection::vec(prop::option::of(any::<u8>()), 6)) {
        for (f, mask) in inp.frameworks.iter_mut().zip(&masks) {
            f.usable = mask.map(|m| (0..8).filter(|i| m & (1 << i) != 0).map(|i| format!("agent-{i}")).collect());
        }
        let plan = plan_round(&inp, now());
        for o in &plan.offers {
            let f = inp.frameworks.iter().find(|f| f.id == o.framework).unwrap();
            prop_assert!(f.usable.as_ref().is_none_or(|u| u.contains(&o.agent)), "{} offered barred {}", o.framework, o.agent);
        }
        for a in &inp.agents {
            let old: ResourceVec = inp.offers.iter().filter(|o| o.agent == a.name && !a.holds.contains(&o.id)).map(|o| o.resources).sum();
            let new = sum_where(plan.offers.iter(), |o| o.agent == a.name);
            prop_assert!((a.claimed + old + new).fits_in(&a.allocatable) || new == ResourceVec::ZERO, "{} overcommitted", a.name);
        }
        for (id, idle) in &plan.idle {
            let f = inp.frameworks.iter().find(|f| &f.id == id).unwrap();
            if idle.reason == IdleReason::NoUsableAgent {
                prop_assert!(f.usable.is_some(), "{id}: {idle:?}");
            }
        }
    }
}
