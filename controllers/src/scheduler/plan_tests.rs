//! The planner's unit tests and properties: strategies, gangs, constraints,
//! explanations; a plan never overcommits, never breaks a constraint, and
//! places a gang whole or not at all.

use super::*;
use berth_api::constraint::{Operator, Strategy};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;

const GI: u64 = 1 << 30;

fn agent(name: &str, cpu: u64, mem: u64) -> AgentView {
    let attributes = BTreeMap::from([("hostname".to_string(), name.to_string())]);
    AgentView { name: name.into(), free: ResourceVec::new(cpu, mem), attributes, ..Default::default() }
}

fn demand(n: usize, cpu: u64, mem: u64) -> Demand {
    Demand::new(format!("p{n}"), ResourceVec::new(cpu, mem), 0)
}

fn constraint(raw: &[&str]) -> Constraint {
    Constraint::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn one_group(strategy: Strategy, group: Group) -> Request {
    Request { strategy, groups: vec![group], ..Default::default() }
}

fn plan_binpack(agents: &[AgentView], demands: &[Demand]) -> Plan {
    plan(agents, &one_group(Strategy::Binpack, Group { demands: demands.to_vec(), ..Default::default() }))
}

/// Agent name of each placement, in placement order.
fn where_(plan: &Plan) -> BTreeMap<String, String> {
    plan.assignments.iter().flat_map(|(a, ds)| ds.iter().map(move |d| (d.placement.clone(), a.clone()))).collect()
}

#[test]
fn packs_onto_the_fullest_agent_that_fits() {
    let agents = [agent("big", 4000, 8 * GI), agent("small", 1000, GI)];
    let plan = plan_binpack(&agents, &[demand(0, 500, GI / 2)]);
    assert_eq!(plan.assignments.keys().collect::<Vec<_>>(), ["small"]);
}

#[test]
fn spread_puts_each_task_where_the_job_has_fewest_then_most_free() {
    let agents = [agent("a", 4000, 8 * GI), agent("b", 4000, 4 * GI), agent("c", 4000, 2 * GI)];
    let demands: Vec<Demand> = (0..4).map(|i| demand(i, 100, GI / 4)).collect();
    let req = Request {
        strategy: Strategy::Spread,
        job_tasks: BTreeMap::from([("c".to_string(), 1)]),
        groups: vec![Group { demands, ..Default::default() }],
        ..Default::default()
    };
    let w = where_(&plan(&agents, &req));
    // a and b have none of the job's tasks: a (most free) then b; then a, b, c all have one: a again.
    assert_eq!([&w["p0"], &w["p1"], &w["p2"], &w["p3"]], ["a", "b", "a", "b"]);
}

#[test]
fn random_is_reproducible_from_its_seed_and_uses_every_agent() {
    let agents: Vec<AgentView> = (0..4).map(|i| agent(&format!("a{i}"), 64_000, 64 * GI)).collect();
    let demands: Vec<Demand> = (0..40).map(|i| demand(i, 10, 1)).collect();
    let req = |seed| Request {
        strategy: Strategy::Random,
        seed,
        groups: vec![Group { demands: demands.clone(), ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(plan(&agents, &req(7)), plan(&agents, &req(7)));
    assert_ne!(plan(&agents, &req(7)), plan(&agents, &req(8)));
    assert_eq!(plan(&agents, &req(7)).assignments.len(), 4, "40 tasks at random over 4 agents reach all");
}

#[test]
fn unique_hostname_puts_one_instance_per_agent_and_says_why_the_rest_wait() {
    let agents = [agent("a", 4000, 8 * GI), agent("b", 4000, 8 * GI), agent("c", 4000, 8 * GI)];
    let group = Group {
        constraints: vec![constraint(&["hostname", "UNIQUE"])],
        demands: (0..4).map(|i| demand(i, 100, GI)).collect(),
        ..Default::default()
    };
    let plan = plan(&agents, &one_group(Strategy::Binpack, group));
    assert_eq!(plan.assignments.values().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    assert_eq!(plan.unplaced.len(), 1);
    assert_eq!(plan.unplaced[0].1, "0/3 agents fit: 3 excluded by UNIQUE hostname");
}

#[test]
fn explains_in_numbers_why_nothing_fits() {
    let mut down = agent("c", 4000, 8 * GI);
    down.excluded = Some("not ready");
    let agents = [agent("a", 4000, GI), agent("b", 4000, GI / 2), down];
    let plan = plan_binpack(&agents, &[demand(0, 100, 2 * GI)]);
    assert_eq!(plan.unplaced[0].1, "0/3 agents fit: 2 insufficient memory (need 2Gi, most free 1Gi), 1 not ready");
}

#[test]
fn explanations_mix_constraints_and_resources() {
    let agents: Vec<AgentView> = ["a", "b", "c", "d", "e"].iter().map(|n| agent(n, 4000, GI)).collect();
    let group = Group {
        constraints: vec![constraint(&["hostname", "UNIQUE"])],
        placed: vec!["a".into(), "b".into()],
        demands: vec![demand(0, 100, 2 * GI)],
        ..Default::default()
    };
    let plan = plan(&agents, &one_group(Strategy::Binpack, group));
    assert_eq!(
        plan.unplaced[0].1,
        "0/5 agents fit: 2 excluded by UNIQUE hostname, 3 insufficient memory (need 2Gi, most free 1Gi)"
    );
}

#[test]
fn says_when_there_are_no_agents() {
    let plan = plan_binpack(&[], &[demand(0, 100, GI)]);
    assert_eq!(plan.unplaced[0].1, "0/0 agents fit: no agents are registered");
}

#[test]
fn a_gang_that_does_not_fit_whole_takes_nothing_and_says_how_many_fit() {
    let agents = [agent("a", 1000, GI), agent("b", 1000, GI), agent("c", 1000, GI)];
    let gang = Group { gang: true, demands: (0..4).map(|i| demand(i, 800, GI / 2)).collect(), ..Default::default() };
    let after = Group { demands: vec![demand(9, 1000, GI)], ..Default::default() };
    let req = Request { groups: vec![gang, after], ..Default::default() };
    let plan = plan(&agents, &req);
    assert_eq!(where_(&plan).keys().collect::<Vec<_>>(), ["p9"], "the gang holds nothing; the next group fits");
    assert_eq!(plan.unplaced.len(), 4);
    assert!(
        plan.unplaced[0]
            .1
            .starts_with("gang of 4: only 3 fit: 0/3 agents fit: 3 insufficient cpu (need 800m, most free 200m)"),
        "{}",
        plan.unplaced[0].1
    );
}

#[test]
fn a_gang_that_fits_is_placed_whole() {
    let agents = [agent("a", 1000, GI), agent("b", 1000, GI)];
    let gang = Group { gang: true, demands: (0..2).map(|i| demand(i, 800, GI / 2)).collect(), ..Default::default() };
    let plan = plan(&agents, &one_group(Strategy::Binpack, gang));
    assert_eq!(where_(&plan).len(), 2);
    assert!(plan.unplaced.is_empty());
}

/// An arbitrary constraint over `rack` or `hostname`.
fn any_constraint() -> impl proptest::strategy::Strategy<Value = Constraint> {
    let raw = prop_oneof![
        Just(vec!["hostname", "UNIQUE"]),
        Just(vec!["rack", "UNIQUE"]),
        Just(vec!["rack", "CLUSTER"]),
        Just(vec!["rack", "CLUSTER", "r1"]),
        Just(vec!["rack", "GROUP_BY"]),
        Just(vec!["rack", "LIKE", "r[01]"]),
        Just(vec!["rack", "UNLIKE", "r0"]),
        Just(vec!["rack", "MAX_PER", "2"]),
    ];
    raw.prop_map(|r| constraint(&r))
}

fn any_strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
    prop_oneof![Just(Strategy::Binpack), Just(Strategy::Spread), Just(Strategy::Random)]
}

/// True when the agents of `on` (one per instance) satisfy `c` as a whole.
fn satisfied(c: &Constraint, on: &[&AgentView], schedulable_values: &[String]) -> bool {
    let values: Vec<Option<&String>> = on.iter().map(|a| a.attributes.get(&c.attribute)).collect();
    let count = |v: &String| values.iter().filter(|x| **x == Some(v)).count();
    match c.operator {
        _ if c.operator != Operator::Unlike && values.iter().any(Option::is_none) => false,
        Operator::Unique => values.iter().flatten().all(|v| count(v) == 1),
        Operator::Cluster => {
            let want = c.value.as_ref().or(values.first().copied().flatten());
            values.iter().all(|v| *v == want)
        }
        Operator::GroupBy => {
            let counts: Vec<usize> = schedulable_values.iter().map(count).collect();
            counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1
        }
        Operator::Like => values.iter().flatten().all(|v| c.regex.as_ref().unwrap().is_match(v)),
        Operator::Unlike => values.iter().flatten().all(|v| !c.regex.as_ref().unwrap().is_match(v)),
        Operator::MaxPer => values.iter().flatten().all(|v| count(v) <= 2),
    }
}

proptest! {
    #[test]
    fn a_plan_never_overcommits_never_breaks_a_constraint_and_places_gangs_whole(
        frees in prop::collection::vec((0u64..8000, 0u64..16 * GI, 0usize..3), 1..7),
        groups in prop::collection::vec(
            (prop::collection::vec((1u64..3000, 1u64..6 * GI), 0..8), prop::option::of(any_constraint()), any::<bool>()),
            1..4,
        ),
        strategy in any_strategy(),
        seed in any::<u64>(),
    ) {
        let agents: Vec<AgentView> = frees
            .iter()
            .enumerate()
            .map(|(i, (c, m, rack))| {
                let mut a = agent(&format!("a{i}"), *c, *m);
                a.attributes.insert("rack".into(), format!("r{rack}"));
                a
            })
            .collect();
        let req = Request {
            strategy,
            seed,
            groups: groups
                .iter()
                .enumerate()
                .map(|(g, (needs, c, gang))| Group {
                    constraints: c.iter().cloned().collect(),
                    gang: *gang,
                    demands: needs.iter().enumerate().map(|(i, (c, m))| {
                        Demand::new(format!("g{g}-{i}"), ResourceVec::new(*c, *m), 0)
                    }).collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let plan = plan(&agents, &req);
        for a in &agents {
            let used: ResourceVec = plan.assignments.get(&a.name).into_iter().flatten().map(|d| d.resources).sum();
            prop_assert!(used.fits_in(&a.free), "{} overcommitted: {used} > {}", a.name, a.free);
        }
        let placed: usize = plan.assignments.values().map(Vec::len).sum();
        prop_assert_eq!(placed + plan.unplaced.len(), req.groups.iter().map(|g| g.demands.len()).sum::<usize>());
        let w = where_(&plan);
        let racks: Vec<String> = {
            let mut r: Vec<String> = agents.iter().map(|a| a.attributes["rack"].clone()).collect();
            r.sort();
            r.dedup();
            r
        };
        for (g, group) in req.groups.iter().enumerate() {
            let on: Vec<&AgentView> = group
                .demands
                .iter()
                .filter_map(|d| w.get(&d.placement))
                .map(|name| agents.iter().find(|a| &a.name == name).unwrap())
                .collect();
            // A plain task left unplaced had no room anywhere, even at the end.
            if !group.gang && group.constraints.is_empty() {
                for (d, _) in plan.unplaced.iter().filter(|(d, _)| group.demands.contains(d)) {
                    for a in &agents {
                        let used: ResourceVec =
                            plan.assignments.get(&a.name).into_iter().flatten().map(|d| d.resources).sum();
                        prop_assert!(!d.resources.fits_in(&a.free.saturating_sub(&used)), "{} fits on {}", d.placement, a.name);
                    }
                }
            }
            if group.gang {
                prop_assert!(on.is_empty() || on.len() == group.demands.len(), "gang {g} half placed: {}/{}", on.len(), group.demands.len());
            }
            for c in &group.constraints {
                prop_assert!(satisfied(c, &on, &racks), "group {g} breaks {c}: {:?}", on.iter().map(|a| &a.name).collect::<Vec<_>>());
            }
        }
    }
}

fn with_ports(mut a: AgentView, ranges: &str) -> AgentView {
    a.free_ports = berth_api::ports::parse(ranges).unwrap();
    a
}

#[test]
fn tasks_get_distinct_ports_lowest_first_and_one_that_fits_none_says_ports() {
    let agents = [with_ports(agent("a1", 4000, 8 * GI), "100-103,200")];
    let want = |n| Demand::new(format!("p{n}"), ResourceVec::new(100, GI / 8), 2);
    let p = plan_binpack(&agents, &[want(0), want(1), want(2)]);
    let got: Vec<&Vec<u16>> = p.assignments["a1"].iter().map(|d| &d.host_ports).collect();
    assert_eq!(got, [&vec![100, 101], &vec![102, 103]]);
    assert_eq!(p.unplaced.len(), 1);
    assert_eq!(p.unplaced[0].1, "0/1 agents fit: 1 insufficient ports (need 2, most free 1)");
}

#[test]
fn a_task_without_ports_ignores_them_and_a_task_with_ports_skips_agents_without() {
    let agents = [agent("bare", 4000, GI), with_ports(agent("ported", 4000, 8 * GI), "100")];
    let p = plan_binpack(&agents, &[Demand::new("p0", ResourceVec::new(100, 1), 1), demand(1, 100, 1)]);
    assert_eq!(where_(&p)["p0"], "ported", "binpack prefers bare, but it has no ports");
    assert_eq!(p.assignments["ported"][0].host_ports, vec![100]);
    assert_eq!(where_(&p)["p1"], "bare");
}

#[test]
fn a_gang_that_does_not_fit_gives_its_ports_back() {
    let agents = [with_ports(agent("a1", 4000, 8 * GI), "100-102")];
    let gang = Group {
        gang: true,
        demands: (0..2).map(|i| Demand::new(format!("g{i}"), ResourceVec::new(1, 1), 2)).collect(),
        ..Default::default()
    };
    let single = Group { demands: vec![Demand::new("s", ResourceVec::new(1, 1), 3)], ..Default::default() };
    let req = Request { groups: vec![gang, single], ..Default::default() };
    let p = plan(&agents, &req);
    assert_eq!(p.unplaced.len(), 2, "{p:?}");
    assert_eq!(p.assignments["a1"][0].host_ports, vec![100, 101, 102]);
}

proptest! {
    #[test]
    fn a_plan_gives_each_task_its_own_ports_from_its_agents_free_ones(
        agents in prop::collection::vec((0u16..6, prop::collection::vec(100u16..110, 0..4)), 1..4),
        groups in prop::collection::vec((prop::collection::vec(0u32..4, 0..6), any::<bool>()), 1..3),
        strategy in any_strategy(),
    ) {
        let agents: Vec<AgentView> = agents
            .iter()
            .enumerate()
            .map(|(i, (len, taken))| {
                let ranges = [berth_api::ports::PortRange { begin: 100, end: 100 + len }];
                let free_ports = berth_api::ports::minus(&ranges, taken.iter().copied());
                AgentView { free_ports, ..agent(&format!("a{i}"), 64_000, 64 * GI) }
            })
            .collect();
        let req = Request {
            strategy,
            groups: groups
                .iter()
                .enumerate()
                .map(|(g, (wants, gang))| Group {
                    gang: *gang,
                    demands: wants
                        .iter()
                        .enumerate()
                        .map(|(i, n)| Demand::new(format!("g{g}-{i}"), ResourceVec::new(1, 1), *n))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let plan = plan(&agents, &req);
        for a in &agents {
            let mut given: Vec<u16> = Vec::new();
            for d in plan.assignments.get(&a.name).into_iter().flatten() {
                prop_assert_eq!(d.host_ports.len(), d.ports as usize, "{} got {:?}", d.placement, d.host_ports);
                given.extend(&d.host_ports);
            }
            let inside = given.iter().all(|p| berth_api::ports::contains(&a.free_ports, *p));
            prop_assert!(inside, "{} gave {given:?} of {:?}", a.name, a.free_ports);
            let n = given.len();
            given.sort_unstable();
            given.dedup();
            prop_assert_eq!(given.len(), n, "a port given twice on {}", &a.name);
            // A plain task left unplaced found too few ports on every agent, even at the end.
            let left = berth_api::ports::count(&a.free_ports) as usize - n;
            let in_gang = |d: &Demand| req.groups.iter().any(|g| g.gang && g.demands.contains(d));
            for (d, why) in plan.unplaced.iter().filter(|(d, _)| !in_gang(d)) {
                prop_assert!((d.ports as usize) > left, "{} fits {} ({why})", d.placement, a.name);
                prop_assert!(why.contains("insufficient ports"), "{why}");
            }
        }
    }
}
