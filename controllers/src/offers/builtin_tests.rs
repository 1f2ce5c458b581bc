//! The built-in batch scheduler in `Offers` mode, its pure part: what waits,
//! what it asks for, and how offers are used.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use berth_api::framework::{FrameworkSpec, Mode};
use berth_api::{
    Container, Framework, Job, JobSpec, Phase, Placement, PlacementSpec, PlacementStatus, ResourceVec, Resources,
    TaskGroup,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::*;

const GI: u64 = 1 << 30;

fn group(name: &str, instances: u32, cpu: &str, constraints: &[&[&str]], gang: bool) -> TaskGroup {
    TaskGroup {
        name: name.into(),
        instances: Some(instances),
        constraints: constraints.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect(),
        gang,
        container: Container {
            resources: Resources { cpu: Some(cpu.into()), memory: Some("1Gi".into()) },
            ..Default::default()
        },
        ..Default::default()
    }
}

fn job(name: &str, priority: i32, groups: Vec<TaskGroup>) -> Arc<Job> {
    let spec =
        JobSpec { framework: Some("fw".into()), task_groups: groups, priority: Some(priority), ..Default::default() };
    let mut j = Job::new(name, spec);
    j.metadata.namespace = Some("ns".into());
    j.metadata.uid = Some(format!("uid-{name}"));
    Arc::new(j)
}

fn placed(job: &Job, group: &str, instance: u32, agent: &str, phase: Phase) -> Arc<Placement> {
    let name = placement_name(&job.name_any(), group, instance, 0);
    let spec = PlacementSpec {
        agent: agent.into(),
        job: job.name_any(),
        task_group: group.into(),
        instance,
        ..Default::default()
    };
    let mut p = Placement::new(&name, spec);
    p.metadata.namespace = Some("ns".into());
    p.metadata.owner_references = Some(vec![OwnerReference { uid: job.uid().unwrap(), ..Default::default() }]);
    p.status = Some(PlacementStatus { phase, ..Default::default() });
    Arc::new(p)
}

fn framework() -> Framework {
    let mut f = Framework::new("fw", FrameworkSpec { mode: Mode::Offers, ..Default::default() });
    f.metadata.namespace = Some("ns".into());
    f
}

fn view(name: &str, cpu_millis: u64) -> AgentView {
    let attributes = BTreeMap::from([("hostname".to_string(), name.to_string())]);
    AgentView { name: name.into(), free: ResourceVec::new(cpu_millis, 8 * GI), attributes, ..Default::default() }
}

fn names(pending: &[PendingJob]) -> Vec<(String, usize)> {
    pending.iter().map(|p| (p.job.name_any(), p.missing.len())).collect()
}

#[test]
fn waiting_instances_are_those_without_a_placement_higher_priority_first() {
    let low = job("low", 0, vec![group("main", 3, "1", &[], false)]);
    let high = job("high", 5, vec![group("main", 1, "1", &[], false)]);
    let mut other = (*job("other", 9, vec![group("main", 1, "1", &[], false)])).clone();
    other.spec.framework = Some("another".into());
    let jobs = vec![low.clone(), high.clone(), Arc::new(other)];
    let placements = vec![placed(&low, "main", 0, "a", Phase::Running)];
    let created: HashSet<String> = ["ns/low-main-1-0".to_string()].into();
    let pending = pending(&framework(), &jobs, &placements, &created, jiff::Timestamp::now());
    assert_eq!(names(&pending), [("high".to_string(), 1), ("low".to_string(), 1)]);
    assert_eq!(pending[1].missing[0].1, 2);
    assert_eq!(pending[1].live.len(), 1);
}

#[test]
fn demand_is_the_waiting_instances_offered_only_where_one_may_go() {
    let j = job("j", 0, vec![group("u", 3, "1", &[&["hostname", "UNIQUE"]], false), group("s", 1, "500m", &[], false)]);
    let jobs = vec![j.clone()];
    let placements = vec![placed(&j, "u", 0, "a", Phase::Running), placed(&j, "s", 0, "a", Phase::Running)];
    let agents = vec![view("a", 4000), view("b", 4000)];
    let waiting = pending(&framework(), &jobs, &placements, &HashSet::new(), jiff::Timestamp::now());
    let (demand, usable) = wants(&waiting, &agents);
    let d = demand.unwrap();
    assert_eq!((d.total, d.task), (ResourceVec::new(2000, 2 * GI), ResourceVec::new(1000, GI)));
    assert_eq!(usable.unwrap(), ["b".to_string()].into(), "UNIQUE hostname rules out a, where one runs");

    // Both agents taken: nowhere to go, and the allocator is told so.
    let placements = vec![
        placed(&j, "u", 0, "a", Phase::Running),
        placed(&j, "u", 1, "b", Phase::Running),
        placed(&j, "s", 0, "a", Phase::Succeeded),
    ];
    let (demand, usable) =
        wants(&pending(&framework(), &jobs, &placements, &HashSet::new(), jiff::Timestamp::now()), &agents);
    assert_eq!(demand.unwrap().total, ResourceVec::new(1000, GI));
    assert_eq!(usable.unwrap(), Default::default());

    let none = wants(&[], &agents);
    assert_eq!(none, (None, None), "nothing waits: suppressed");
}

#[test]
fn offers_are_used_in_job_order_and_a_gang_that_does_not_fit_them_takes_none() {
    let gang = job("gang", 9, vec![group("g", 3, "2", &[], true)]);
    let small = job("small", 0, vec![group("main", 2, "1", &[], false)]);
    let jobs = vec![gang, small];
    let waiting = pending(&framework(), &jobs, &[], &HashSet::new(), jiff::Timestamp::now());
    // Offered: 3 CPU on a, 2 CPU on b; the gang needs 3 × 2 CPU.
    let mut agents = vec![view("a", 3000), view("b", 2000), view("c", 0)];
    let planning = plan_jobs(&waiting, &mut agents, 1);
    assert!(planning.placed.iter().all(|p| p.job == 1), "{planning:?}");
    assert_eq!(planning.placed.len(), 2);
    let why = &planning.unplaced[&0];
    assert!(why.starts_with("gang of 3: only"), "{why}");
    let used: ResourceVec = agents.iter().map(|a| a.free).sum();
    assert_eq!(used.cpu_millis, 3000, "the small Job's two tasks took 2 of the 5 CPUs offered");
}

#[test]
fn a_lost_instance_waits_for_its_next_attempt_and_is_planned_under_that_name() {
    let j = job("j", 0, vec![group("main", 2, "1", &[], false)]);
    let mut lost = (*placed(&j, "main", 0, "a", Phase::Lost)).clone();
    lost.status.as_mut().unwrap().reason = Some(berth_api::placement::REASON_AGENT_LOST.into());
    let placements = vec![Arc::new(lost), placed(&j, "main", 1, "a", Phase::Succeeded)];
    let jobs = vec![j.clone()];
    let waiting = pending(&framework(), &jobs, &placements, &HashSet::new(), jiff::Timestamp::now());
    let missing: Vec<(u32, u32)> = waiting[0].missing.iter().map(|(_, i, a)| (*i, *a)).collect();
    assert_eq!(missing, [(0, 1)], "the lost instance gets attempt 1; the succeeded one nothing");
    assert!(waiting[0].live.is_empty(), "a Lost placement counts for no constraint");

    let mut agents = vec![view("b", 4000)];
    let planning = plan_jobs(&waiting, &mut agents, 0);
    assert_eq!(planning.placed.len(), 1);
    let p = &planning.placed[0];
    assert_eq!((p.placement.as_str(), p.instance, p.attempt, p.agent.as_str()), ("j-main-0-1", 0, 1, "b"));
}
