//! A Job's status computed from its placements: a pure function, so the
//! rules (when a Job is Complete, Failed, Scheduled) are tested directly.

use berth_api::condition::{Condition, set_condition};
use berth_api::job::TaskCounts;
use berth_api::{Job, JobStatus, Phase, Placement};

/// What the reconciler learned this round that placements do not show.
#[derive(Debug, Default)]
pub struct Observed<'a> {
    /// Why some instances have no placement, if they have none.
    pub unschedulable: Option<&'a str>,
    /// What in the spec cannot be acted on (a bad constraint), naming the field.
    pub invalid: Option<&'a str>,
}

/// The Job's new status. `placements` are the latest attempt of each
/// instance; one lost or evicted (`attempts::is_replaced`) is pending its
/// next attempt, never a failure.
pub fn compute(job: &Job, placements: &[&Placement], observed: Observed<'_>, now: &str) -> JobStatus {
    let old = job.status.clone().unwrap_or_default();
    let total: u32 = job.spec.task_groups.iter().map(|g| g.instances()).sum();
    let mut counts = TaskCounts::default();
    let mut first_failure: Option<&Placement> = None;
    let mut replaced = 0;
    for p in placements {
        let phase = p.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if crate::attempts::is_replaced(p) {
            // Lost or evicted: its next attempt is on the way, neither failed nor retried.
            counts.pending += 1;
            replaced += 1;
            continue;
        }
        match phase {
            Phase::Running => counts.running += 1,
            Phase::Succeeded => counts.succeeded += 1,
            Phase::Failed | Phase::Killed | Phase::Lost => {
                counts.failed += 1;
                first_failure = first_failure.or(Some(p));
            }
            Phase::Pending | Phase::Staging | Phase::Starting => counts.pending += 1,
        }
    }
    counts.pending += total.saturating_sub(placements.len() as u32);

    let generation = job.metadata.generation;
    let mut conditions = old.conditions.clone();
    let mut set =
        |c: Condition| set_condition(&mut conditions, Condition { observed_generation: generation, ..c }, now);

    let placed = placements.len() as u32 - replaced >= total;
    if let Some(why) = observed.invalid {
        set(Condition::new("Scheduled", false, "InvalidSpec", why));
        set(Condition::new("Stalled", true, "InvalidSpec", why));
        set(Condition::new("Ready", false, "InvalidSpec", why));
        set(Condition::new("Reconciling", false, "InvalidSpec", ""));
        return JobStatus {
            phase: Some("Pending".into()),
            tasks: counts,
            start_time: old.start_time,
            completion_time: None,
            observed_generation: generation,
            conditions,
            ..old
        };
    }
    match observed.unschedulable {
        Some(why) if !placed => set(Condition::new("Scheduled", false, "Unschedulable", why)),
        _ if placed => set(Condition::new("Scheduled", true, "Placed", format!("{total}/{total} tasks placed"))),
        _ => set(Condition::new(
            "Scheduled",
            false,
            "Placing",
            format!("{}/{total} tasks placed", placements.len() as u32 - replaced),
        )),
    }

    let (phase, finished) = if let Some(p) = first_failure {
        let st = p.status.clone().unwrap_or_default();
        let exit = st.exit_code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".into());
        let reason = st.reason.unwrap_or_else(|| format!("{:?}", st.phase));
        let detail = st.message.map(|m| format!(": {m}")).unwrap_or_default();
        let msg = format!(
            "task {}[{}] (placement {}) failed: {exit} ({reason}){detail}",
            p.spec.task_group,
            p.spec.instance,
            p.metadata.name.as_deref().unwrap_or("?")
        );
        set(Condition::new("Failed", true, "TaskFailed", msg.clone()));
        set(Condition::new("Complete", false, "TaskFailed", msg.clone()));
        set(Condition::new("Stalled", true, "TaskFailed", msg.clone()));
        set(Condition::new("Ready", false, "TaskFailed", msg));
        set(Condition::new("Reconciling", false, "Failed", ""));
        ("Failed", true)
    } else if counts.succeeded == total {
        let msg = format!("{total}/{total} tasks succeeded");
        set(Condition::new("Complete", true, "AllTasksSucceeded", msg.clone()));
        set(Condition::new("Ready", true, "AllTasksSucceeded", msg));
        set(Condition::new("Reconciling", false, "Complete", ""));
        ("Complete", true)
    } else {
        let msg = format!("{}/{total} tasks succeeded, {} running", counts.succeeded, counts.running);
        set(Condition::new("Reconciling", true, "Progressing", msg.clone()));
        set(Condition::new("Ready", false, "Progressing", msg));
        (if counts.running + counts.succeeded > 0 { "Running" } else { "Pending" }, false)
    };

    JobStatus {
        phase: Some(phase.to_string()),
        tasks: counts,
        start_time: old.start_time.or_else(|| (!placements.is_empty()).then(|| now.to_string())),
        completion_time: if finished { old.completion_time.or_else(|| Some(now.to_string())) } else { None },
        observed_generation: generation,
        conditions,
        ..old
    }
}

/// True once the Job reached `Complete` or `Failed`: nothing more is placed.
pub fn is_finished(job: &Job) -> bool {
    let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    ["Complete", "Failed"].iter().any(|t| berth_api::condition::find(conditions, t).is_some_and(Condition::is_true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{JobSpec, PlacementSpec, PlacementStatus, TaskGroup};

    fn job(instances: u32) -> Job {
        let mut j = Job::new(
            "j",
            JobSpec {
                task_groups: vec![TaskGroup { name: "main".into(), instances: Some(instances), ..Default::default() }],
                ..Default::default()
            },
        );
        j.metadata.generation = Some(3);
        j
    }

    fn placement(i: u32, phase: Phase, exit: Option<i32>, reason: Option<&str>) -> Placement {
        let mut p = Placement::new(
            &format!("j-main-{i}-0"),
            PlacementSpec { task_group: "main".into(), instance: i, ..Default::default() },
        );
        p.status =
            Some(PlacementStatus { phase, exit_code: exit, reason: reason.map(String::from), ..Default::default() });
        p
    }

    fn cond<'a>(s: &'a JobStatus, t: &str) -> &'a Condition {
        berth_api::condition::find(&s.conditions, t).unwrap()
    }

    #[test]
    fn all_succeeded_is_complete_at_this_generation() {
        let (a, b) = (placement(0, Phase::Succeeded, Some(0), None), placement(1, Phase::Succeeded, Some(0), None));
        let s = compute(&job(2), &[&a, &b], Observed::default(), "t");
        assert!(cond(&s, "Complete").is_true());
        assert_eq!(cond(&s, "Complete").observed_generation, Some(3));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.phase.as_deref(), Some("Complete"));
        assert_eq!(s.tasks.succeeded, 2);
    }

    #[test]
    fn a_failed_task_fails_the_job_with_its_exit_code() {
        let a = placement(0, Phase::Failed, Some(3), Some("Error"));
        let s = compute(&job(1), &[&a], Observed::default(), "t");
        let failed = cond(&s, "Failed");
        assert!(failed.is_true());
        assert!(failed.message.contains("exit code 3 (Error)"), "{}", failed.message);
    }

    #[test]
    fn unplaced_instances_are_pending_with_the_reason() {
        let a = placement(0, Phase::Running, None, None);
        let s = compute(&job(3), &[&a], Observed { unschedulable: Some("0/1 agents fit"), ..Default::default() }, "t");
        assert_eq!((s.tasks.pending, s.tasks.running), (2, 1));
        let sched = cond(&s, "Scheduled");
        assert!(!sched.is_true());
        assert_eq!((sched.reason.as_str(), sched.message.as_str()), ("Unschedulable", "0/1 agents fit"));
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn a_lost_or_evicted_task_is_pending_its_next_attempt_not_failed() {
        let a = placement(0, Phase::Lost, None, Some(berth_api::placement::REASON_AGENT_LOST));
        let b = placement(1, Phase::Killed, None, Some(berth_api::placement::REASON_EVICTED));
        let s = compute(&job(2), &[&a, &b], Observed::default(), "t");
        assert_eq!((s.tasks.pending, s.tasks.failed), (2, 0));
        assert!(berth_api::condition::find(&s.conditions, "Failed").is_none());
        assert!(!cond(&s, "Scheduled").is_true());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn an_invalid_constraint_stalls_the_job_naming_the_field() {
        let why = "spec.taskGroups[0].constraints[0]: unsupported operator \"NEAR\"";
        let s = compute(&job(1), &[], Observed { invalid: Some(why), ..Default::default() }, "t");
        assert_eq!(
            (cond(&s, "Scheduled").reason.as_str(), cond(&s, "Scheduled").message.as_str()),
            ("InvalidSpec", why)
        );
        assert!(cond(&s, "Stalled").is_true());
        assert_eq!(s.tasks.pending, 1);
    }
}
