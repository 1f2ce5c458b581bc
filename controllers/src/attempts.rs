//! Attempts of task instances: each instance of a Job's task group runs as
//! placements `attempt` 0, 1, …; only the latest counts. An attempt that
//! ended through no fault of its own — its agent was lost, or it was
//! evicted by a drain — is replaced by the next attempt, without counting
//! as a failure or a retry (Mesos' `TASK_LOST`, Nomad's `lost` allocations).
//! Everything here is pure: placements in, decisions out.

use std::collections::BTreeMap;

use berth_api::placement::{REASON_EVICTED, REASON_SUSPENDED};
use berth_api::{Job, Phase, Placement, TaskGroup};

/// An instance that needs a placement: (its group, instance, the attempt to create).
pub type Needed<'a> = (&'a TaskGroup, u32, u32);

/// True when `p` ended in a way that is replaced by a new attempt: `Lost`,
/// or `Killed` because its agent was drained (`Evicted`) or its Job was
/// suspended (`Suspended`).
pub fn is_replaced(p: &Placement) -> bool {
    p.status.as_ref().is_some_and(|s| match s.phase {
        Phase::Lost => true,
        Phase::Killed => matches!(s.reason.as_deref(), Some(REASON_EVICTED | REASON_SUSPENDED)),
        _ => false,
    })
}

/// The latest attempt of each instance among `placements`, by (task group, instance).
pub fn latest<'a>(placements: impl IntoIterator<Item = &'a Placement>) -> BTreeMap<(String, u32), &'a Placement> {
    let mut out: BTreeMap<(String, u32), &Placement> = BTreeMap::new();
    for p in placements {
        let key = (p.spec.task_group.clone(), p.spec.instance);
        match out.get(&key) {
            Some(q) if q.spec.attempt >= p.spec.attempt => {}
            _ => {
                out.insert(key, p);
            }
        }
    }
    out
}

/// The instances of `job` that need a placement, in spec order: those with
/// none (attempt 0) and those whose latest attempt [`is_replaced`] (the
/// next attempt). `placements` are the Job's own, of any attempt.
pub fn needed<'a>(job: &'a Job, placements: &[&Placement]) -> Vec<Needed<'a>> {
    let latest = latest(placements.iter().copied());
    job.spec
        .task_groups
        .iter()
        .flat_map(|g| (0..g.instances()).map(move |i| (g, i)))
        .filter_map(|(g, i)| match latest.get(&(g.name.clone(), i)) {
            None => Some((g, i, 0)),
            Some(p) if is_replaced(p) => Some((g, i, p.spec.attempt + 1)),
            Some(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{JobSpec, PlacementSpec, PlacementStatus};

    fn job() -> Job {
        let g = |name: &str, n| TaskGroup { name: name.into(), instances: Some(n), ..Default::default() };
        Job::new("j", JobSpec { task_groups: vec![g("a", 3), g("b", 1)], ..Default::default() })
    }

    fn placement(group: &str, instance: u32, attempt: u32, phase: Phase, reason: Option<&str>) -> Placement {
        let spec = PlacementSpec { task_group: group.into(), instance, attempt, ..Default::default() };
        let mut p = Placement::new(&format!("j-{group}-{instance}-{attempt}"), spec);
        p.status = Some(PlacementStatus { phase, reason: reason.map(String::from), ..Default::default() });
        p
    }

    fn names(needed: &[Needed]) -> Vec<(String, u32, u32)> {
        needed.iter().map(|(g, i, a)| (g.name.clone(), *i, *a)).collect()
    }

    #[test]
    fn lost_and_evicted_instances_get_their_next_attempt_and_others_do_not() {
        let ps = [
            placement("a", 0, 0, Phase::Lost, Some("AgentLost")),
            placement("a", 1, 0, Phase::Lost, Some("AgentLost")),
            placement("a", 1, 1, Phase::Killed, Some(REASON_EVICTED)),
            placement("a", 2, 0, Phase::Failed, Some("Error")),
            placement("b", 0, 0, Phase::Killed, Some("Killed")),
        ];
        let job = job();
        let refs: Vec<&Placement> = ps.iter().collect();
        assert_eq!(names(&needed(&job, &refs)), [("a".to_string(), 0, 1), ("a".to_string(), 1, 2)]);
    }

    #[test]
    fn instances_without_placements_get_attempt_zero_and_live_ones_nothing() {
        let ps = [placement("a", 0, 0, Phase::Running, None), placement("a", 1, 3, Phase::Pending, None)];
        let job = job();
        let refs: Vec<&Placement> = ps.iter().collect();
        assert_eq!(names(&needed(&job, &refs)), [("a".to_string(), 2, 0), ("b".to_string(), 0, 0)]);
    }

    #[test]
    fn the_latest_attempt_of_each_instance_stands_for_it() {
        let ps = [
            placement("a", 0, 1, Phase::Running, None),
            placement("a", 0, 0, Phase::Lost, None),
            placement("a", 1, 0, Phase::Succeeded, None),
        ];
        let latest = latest(ps.iter());
        let attempts: Vec<u32> = latest.values().map(|p| p.spec.attempt).collect();
        assert_eq!(attempts, [1, 0]);
    }
}
