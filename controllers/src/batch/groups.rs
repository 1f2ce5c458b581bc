//! Per task group and per instance status (`JobStatus.groups`): what a
//! user reads to see which stage runs, which waits and why, and which
//! instance backs off until when.

use berth_api::job::{GroupStatus, InstanceStatus, MAX_LISTED_INSTANCES, TaskCounts};
use berth_api::{Phase, format_time};

use super::dag::{Gate, Outcome};
use super::decide::{Assessment, GroupAssessment, Instance, State, Stop};
use crate::attempts::is_replaced;

/// One `GroupStatus` per task group, in spec order.
pub fn statuses(a: &Assessment) -> Vec<GroupStatus> {
    a.groups.iter().map(|g| status(g, a.stop.as_ref())).collect()
}

/// The phase of instance `i`'s latest attempt as counted: a replaced one
/// (lost, evicted, suspended) is pending its next attempt.
pub fn phase_of(i: &Instance) -> Phase {
    match i.history.latest {
        Some(p) if !is_replaced(p) => p.status.as_ref().map(|s| s.phase).unwrap_or_default(),
        _ => Phase::Pending,
    }
}

/// `TaskCounts` over `instances` by the phase of their latest attempt.
pub fn count<'a>(instances: impl IntoIterator<Item = &'a Instance<'a>>) -> TaskCounts {
    let mut c = TaskCounts::default();
    for i in instances {
        match phase_of(i) {
            Phase::Running => c.running += 1,
            Phase::Succeeded => c.succeeded += 1,
            Phase::Failed | Phase::Killed | Phase::Lost => c.failed += 1,
            Phase::Pending | Phase::Staging | Phase::Starting => c.pending += 1,
        }
    }
    c
}

fn status(g: &GroupAssessment, stop: Option<&Stop>) -> GroupStatus {
    let tasks = count(&g.instances);
    let backing_off = g.instances.iter().find_map(|i| match i.state {
        State::BackingOff { until, .. } => Some((i, until)),
        _ => None,
    });
    let exhausted = g.instances.iter().find(|i| i.state == State::Exhausted);
    let live = g.instances.iter().filter(|i| i.state == State::Live).count() as u32;
    let (phase, message) = match (&g.gate, g.outcome) {
        (Gate::Skipped(dep), _) => ("Skipped", Some(format!("not started: {dep} did not complete"))),
        (_, Outcome::Failed) => {
            let i = exhausted.expect("a failed group has an exhausted instance");
            ("Failed", Some(format!("instance {} failed {} time(s)", i.index, i.history.failures)))
        }
        (_, Outcome::Complete) => ("Complete", None),
        (_, _) if matches!(stop, Some(Stop::Suspended)) => ("Suspended", Some("the Job is suspended".into())),
        (_, _) if matches!(stop, Some(Stop::Failed { .. })) => ("Failed", Some("the Job failed".into())),
        (Gate::Waiting(deps), _) => ("Waiting", Some(format!("waiting for {}", deps.join(", ")))),
        (Gate::Open, _) => {
            let message = if let Some((i, until)) = backing_off {
                let exit = i.history.last_exit_code.map(|c| format!(" after exit code {c}")).unwrap_or_default();
                Some(format!("instance {} backing off until {}{exit}", i.index, format_time(until)))
            } else {
                let waiting = tasks.pending.saturating_sub(live);
                let limit = g.group.parallelism();
                (waiting > 0 && live >= limit).then(|| format!("{waiting} instance(s) wait: parallelism {limit}"))
            };
            let started = tasks.running + tasks.succeeded + tasks.failed > 0;
            (if started { "Running" } else { "Pending" }, message)
        }
    };
    let instances = g.instances.iter().take(MAX_LISTED_INSTANCES).map(instance).collect();
    GroupStatus {
        name: g.group.name.clone(),
        phase: Some(phase.into()),
        message,
        tasks,
        instances,
        ..Default::default()
    }
}

fn instance(i: &Instance) -> InstanceStatus {
    InstanceStatus {
        instance: i.index,
        phase: phase_of(i),
        attempts: i.history.attempts,
        failures: i.history.failures,
        last_exit_code: i.history.last_exit_code,
        placement: i.history.latest.and_then(|p| p.metadata.name.clone()),
        next_attempt_after: match i.state {
            State::BackingOff { until, .. } => Some(format_time(until)),
            _ => None,
        },
    }
}
