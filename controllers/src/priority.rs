//! Priority in shared-state mode: a higher-priority Job waiting for
//! capacity goes first. Before a Job plans its claims, the instances that
//! Jobs of strictly higher `spec.priority` wait to place (and that would
//! fit) are planned first over the same agent views, and the capacity they
//! would take is held back from it: a lower-priority Job reconciled first
//! does not take the room a higher one is about to claim, and a higher Job
//! whose instances fit nowhere holds nothing back. The Jobs counted are
//! those placed the same way as this one: without a framework, or under
//! the same framework. Pure: Jobs, placements, views and the clock in.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use berth_api::{Job, Placement};
use jiff::Timestamp;
use kube::ResourceExt;

use crate::offers::builtin::{PendingJob, pending_job, plan_jobs};
use crate::scheduler::plan::AgentView;

/// Reduces `views`' free capacity by what the waiting instances of Jobs
/// with a higher priority than `job` would take, highest first; returns
/// the names of those Jobs that would take some.
pub fn hold_for_higher(
    job: &Job,
    jobs: &[Arc<Job>],
    placements: &[Arc<Placement>],
    views: &mut [AgentView],
    now: Timestamp,
) -> Vec<String> {
    let priority = job.spec.priority.unwrap_or(0);
    let mut higher: Vec<&Job> = jobs
        .iter()
        .map(|j| &**j)
        .filter(|j| j.spec.priority.unwrap_or(0) > priority && j.spec.framework == job.spec.framework)
        .filter(|j| j.uid() != job.uid())
        .collect();
    if higher.is_empty() {
        return Vec::new();
    }
    higher.sort_by_key(|j| {
        (std::cmp::Reverse(j.spec.priority.unwrap_or(0)), j.creation_timestamp().map(|t| t.0), j.name_any())
    });
    let mut by_job: BTreeMap<(Option<String>, &str), Vec<&Placement>> = BTreeMap::new();
    for p in placements {
        by_job.entry((p.namespace(), p.spec.job.as_str())).or_default().push(p);
    }
    let waiting: Vec<PendingJob> = higher
        .into_iter()
        .filter_map(|j| {
            let named = by_job.get(&(j.namespace(), j.metadata.name.as_deref().unwrap_or_default()));
            pending_job(j, named.map(Vec::as_slice).unwrap_or_default(), &HashSet::new(), now)
        })
        .filter(|p| !p.missing.is_empty())
        .collect();
    let planning = plan_jobs(&waiting, views, 0);
    let mut served: Vec<String> = planning.placed.iter().map(|p| waiting[p.job].job.name_any()).collect();
    served.dedup();
    served
}

#[cfg(test)]
mod tests {
    use berth_api::{Container, JobSpec, ResourceVec, Resources, TaskGroup};

    use super::*;

    fn job(name: &str, priority: i32, cpu: &str) -> Arc<Job> {
        let g = TaskGroup {
            name: "main".into(),
            container: Container {
                resources: Resources { cpu: Some(cpu.into()), memory: Some("1Gi".into()) },
                ..Default::default()
            },
            ..Default::default()
        };
        let mut j = Job::new(name, JobSpec { task_groups: vec![g], priority: Some(priority), ..Default::default() });
        j.metadata.namespace = Some("ns".into());
        j.metadata.uid = Some(format!("uid-{name}"));
        Arc::new(j)
    }

    fn views(cpu_millis: u64) -> Vec<AgentView> {
        let attributes = BTreeMap::from([("hostname".to_string(), "a".to_string())]);
        vec![AgentView {
            name: "a".into(),
            free: ResourceVec::new(cpu_millis, 8 << 30),
            attributes,
            ..Default::default()
        }]
    }

    #[test]
    fn a_waiting_higher_priority_job_holds_back_the_room_it_would_take() {
        let (low, high, other) = (job("low", 0, "2"), job("high", 10, "3"), job("same", 0, "1"));
        let jobs = vec![low.clone(), high, other];
        let mut v = views(4000);
        let served = hold_for_higher(&low, &jobs, &[], &mut v, Timestamp::now());
        assert_eq!(served, ["high"]);
        assert_eq!(v[0].free.cpu_millis, 1000, "only what the higher Job leaves; equal priority takes nothing");
    }

    #[test]
    fn a_higher_job_that_fits_nowhere_holds_nothing() {
        let (low, huge) = (job("low", 0, "1"), job("huge", 10, "64"));
        let mut v = views(4000);
        assert!(hold_for_higher(&low, &[low.clone(), huge], &[], &mut v, Timestamp::now()).is_empty());
        assert_eq!(v[0].free.cpu_millis, 4000);
    }
}
