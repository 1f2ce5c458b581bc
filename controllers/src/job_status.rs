//! A Job's status computed from its placements: a pure function (the
//! batch [`Assessment`] of its placements and the clock in, status out), so
//! the rules (when a Job is Complete, Failed, Suspended, Scheduled) are
//! tested directly.

use berth_api::condition::{Condition, set_condition};
use berth_api::{Job, JobStatus};
use jiff::Timestamp;

use crate::batch::{Assessment, Stop, groups};

/// What the reconciler learned this round that placements do not show.
#[derive(Debug, Default)]
pub struct Observed<'a> {
    /// Why some instances have no placement, if they have none.
    pub unschedulable: Option<&'a str>,
    /// What in the spec cannot be acted on (a bad constraint), naming the field.
    pub invalid: Option<&'a str>,
}

/// The Job's new status from `a` (`batch::assess` of all its placements at
/// `now`). An instance whose latest attempt was lost, evicted or suspended
/// is pending its next attempt, never a failure.
pub fn compute(job: &Job, a: &Assessment, observed: Observed<'_>, now: Timestamp) -> JobStatus {
    let now_s = berth_api::format_time(now);
    let now = now_s.as_str();
    let old = job.status.clone().unwrap_or_default();
    let total: u32 = job.spec.task_groups.iter().map(|g| g.instances()).sum();
    let instances = a.groups.iter().flat_map(|g| &g.instances);
    let counts = groups::count(instances.clone());
    let placed =
        instances.filter(|i| i.history.latest.is_some_and(|p| !crate::attempts::is_replaced(p))).count() as u32;

    let generation = job.metadata.generation;
    let mut conditions = old.conditions.clone();
    let mut set =
        |c: Condition| set_condition(&mut conditions, Condition { observed_generation: generation, ..c }, now);

    if let Some(why) = observed.invalid {
        set(Condition::new("Scheduled", false, "InvalidSpec", why));
        set(Condition::new("Stalled", true, "InvalidSpec", why));
        set(Condition::new("Ready", false, "InvalidSpec", why));
        set(Condition::new("Reconciling", false, "InvalidSpec", ""));
        set(Condition::new("Progressing", false, "InvalidSpec", why));
        return JobStatus {
            phase: Some("Pending".into()),
            tasks: counts,
            start_time: old.start_time.clone(),
            completion_time: None,
            observed_generation: generation,
            conditions,
            groups: groups::statuses(a),
            ..old
        };
    }
    match observed.unschedulable {
        Some(why) if placed < total => set(Condition::new("Scheduled", false, "Unschedulable", why)),
        _ if placed >= total => {
            set(Condition::new("Scheduled", true, "Placed", format!("{total}/{total} tasks placed")))
        }
        _ => set(Condition::new("Scheduled", false, "Placing", format!("{placed}/{total} tasks placed"))),
    }
    if old.conditions.iter().any(|c| c.type_ == "Suspended") || job.spec.suspend {
        match job.spec.suspend && !matches!(a.stop, Some(Stop::Complete | Stop::Failed { .. })) {
            true => set(Condition::new("Suspended", true, "JobSuspended", "Job suspended")),
            false => set(Condition::new("Suspended", false, "JobResumed", "Job resumed")),
        }
    }

    let phase = match &a.stop {
        Some(Stop::Failed { reason, message }) => {
            set(Condition::new("Failed", true, reason, message.clone()));
            set(Condition::new("Complete", false, reason, message.clone()));
            set(Condition::new("Stalled", true, reason, message.clone()));
            set(Condition::new("Ready", false, reason, message.clone()));
            set(Condition::new("Reconciling", false, "Failed", ""));
            set(Condition::new("Progressing", false, "Failed", message.clone()));
            "Failed"
        }
        Some(Stop::Complete) => {
            let msg = format!("{total}/{total} tasks succeeded");
            set(Condition::new("Complete", true, "AllTasksSucceeded", msg.clone()));
            set(Condition::new("Ready", true, "AllTasksSucceeded", msg.clone()));
            set(Condition::new("Reconciling", false, "Complete", ""));
            set(Condition::new("Progressing", false, "Complete", msg));
            "Complete"
        }
        Some(Stop::Suspended) => {
            let msg = "the Job is suspended: its tasks are stopped and none starts";
            set(Condition::new("Ready", false, "Suspended", msg));
            set(Condition::new("Reconciling", false, "Suspended", ""));
            set(Condition::new("Progressing", false, "Suspended", msg));
            "Suspended"
        }
        None => {
            let msg = format!("{}/{total} tasks succeeded, {} running", counts.succeeded, counts.running);
            set(Condition::new("Reconciling", true, "Progressing", msg.clone()));
            set(Condition::new("Ready", false, "Progressing", msg.clone()));
            set(Condition::new("Progressing", true, "Progressing", msg));
            if counts.running + counts.succeeded > 0 { "Running" } else { "Pending" }
        }
    };
    let finished = matches!(a.stop, Some(Stop::Complete | Stop::Failed { .. }));
    // Kubernetes' Job: startTime is cleared while suspended, set again on resume.
    let start_time = match (finished, a.stop == Some(Stop::Suspended)) {
        (true, _) => old.start_time.clone(),
        (false, true) => None,
        (false, false) => old.start_time.clone().or_else(|| Some(now.to_string())),
    };

    JobStatus {
        phase: Some(phase.to_string()),
        tasks: counts,
        start_time,
        completion_time: if finished { old.completion_time.clone().or_else(|| Some(now.to_string())) } else { None },
        observed_generation: generation,
        conditions,
        groups: groups::statuses(a),
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
    use berth_api::{JobSpec, Phase, Placement, PlacementSpec, PlacementStatus, TaskGroup};

    /// The status of `job` with these placements, at a fixed time.
    fn compute_at(job: &Job, placements: &[&Placement], observed: Observed<'_>) -> JobStatus {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        compute(job, &crate::batch::assess(job, placements, now), observed, now)
    }

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
        let s = compute_at(&job(2), &[&a, &b], Observed::default());
        assert!(cond(&s, "Complete").is_true());
        assert_eq!(cond(&s, "Complete").observed_generation, Some(3));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.phase.as_deref(), Some("Complete"));
        assert_eq!(s.tasks.succeeded, 2);
    }

    #[test]
    fn a_failed_task_fails_the_job_with_its_exit_code() {
        let a = placement(0, Phase::Failed, Some(3), Some("Error"));
        let s = compute_at(&job(1), &[&a], Observed::default());
        let failed = cond(&s, "Failed");
        assert!(failed.is_true());
        assert!(failed.message.contains("exit code 3 (Error)"), "{}", failed.message);
    }

    #[test]
    fn unplaced_instances_are_pending_with_the_reason() {
        let a = placement(0, Phase::Running, None, None);
        let s = compute_at(&job(3), &[&a], Observed { unschedulable: Some("0/1 agents fit"), ..Default::default() });
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
        let s = compute_at(&job(2), &[&a, &b], Observed::default());
        assert_eq!((s.tasks.pending, s.tasks.failed), (2, 0));
        assert!(berth_api::condition::find(&s.conditions, "Failed").is_none());
        assert!(!cond(&s, "Scheduled").is_true());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn an_invalid_constraint_stalls_the_job_naming_the_field() {
        let why = "spec.taskGroups[0].constraints[0]: unsupported operator \"NEAR\"";
        let s = compute_at(&job(1), &[], Observed { invalid: Some(why), ..Default::default() });
        assert_eq!(
            (cond(&s, "Scheduled").reason.as_str(), cond(&s, "Scheduled").message.as_str()),
            ("InvalidSpec", why)
        );
        assert!(cond(&s, "Stalled").is_true());
        assert_eq!(s.tasks.pending, 1);
    }

    #[test]
    fn a_suspended_job_says_so_and_forgets_its_start_time() {
        let mut j = job(2);
        j.spec.suspend = true;
        j.status = Some(JobStatus { start_time: Some("2026-01-02T03:00:00Z".into()), ..Default::default() });
        let a = placement(0, Phase::Killed, Some(137), Some(berth_api::placement::REASON_SUSPENDED));
        let s = compute_at(&j, &[&a], Observed::default());
        assert_eq!((s.phase.as_deref(), s.start_time.as_deref()), (Some("Suspended"), None));
        assert!(cond(&s, "Suspended").is_true());
        assert_eq!(
            (cond(&s, "Progressing").status.as_str(), cond(&s, "Progressing").reason.as_str()),
            ("False", "Suspended")
        );
        assert_eq!((s.tasks.pending, s.tasks.failed), (2, 0));
        assert_eq!(s.groups[0].phase.as_deref(), Some("Suspended"));

        j.spec.suspend = false;
        j.status = Some(s);
        let s = compute_at(&j, &[&a], Observed::default());
        assert_eq!(s.start_time.as_deref(), Some("2026-01-02T03:04:05Z"), "resuming starts the clock again");
        assert!(!cond(&s, "Suspended").is_true());
        assert!(cond(&s, "Progressing").is_true());
    }

    #[test]
    fn past_its_deadline_the_job_is_failed_with_reason_deadline_exceeded() {
        let mut j = job(1);
        j.spec.active_deadline_seconds = Some(60);
        j.status = Some(JobStatus { start_time: Some("2026-01-02T03:00:00Z".into()), ..Default::default() });
        let a = placement(0, Phase::Running, None, None);
        let s = compute_at(&j, &[&a], Observed::default());
        let failed = cond(&s, "Failed");
        assert_eq!((failed.is_true(), failed.reason.as_str()), (true, "DeadlineExceeded"));
        assert_eq!(s.completion_time.as_deref(), Some("2026-01-02T03:04:05Z"));
        assert!(!cond(&s, "Progressing").is_true());
    }

    #[test]
    fn each_group_says_what_it_waits_for_and_each_instance_its_attempts() {
        let mut j = job(1);
        let mut second = j.spec.task_groups[0].clone();
        second.name = "after".into();
        second.depends_on = vec!["main".into()];
        j.spec.task_groups.push(second);
        j.spec.task_groups[0].retries = Some(berth_api::retry::RetryPolicy { limit: Some(3), ..Default::default() });
        let mut a = placement(0, Phase::Failed, Some(2), Some("Error"));
        a.status.as_mut().unwrap().finished_at = Some("2026-01-02T03:04:00Z".into());
        let s = compute_at(&j, &[&a], Observed::default());
        let (main, after) = (&s.groups[0], &s.groups[1]);
        assert_eq!(main.phase.as_deref(), Some("Running"));
        assert_eq!(
            main.message.as_deref(),
            Some("instance 0 backing off until 2026-01-02T03:04:10Z after exit code 2")
        );
        let i = &main.instances[0];
        assert_eq!((i.attempts, i.failures, i.last_exit_code), (1, 1, Some(2)));
        assert_eq!(i.next_attempt_after.as_deref(), Some("2026-01-02T03:04:10Z"));
        assert_eq!((after.phase.as_deref(), after.message.as_deref()), (Some("Waiting"), Some("waiting for main")));
        assert!(berth_api::condition::find(&s.conditions, "Failed").is_none());
    }
}
