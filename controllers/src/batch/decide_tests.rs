use berth_api::condition::Condition;
use berth_api::placement::{REASON_AGENT_LOST, REASON_EVICTED};
use berth_api::retry::RetryPolicy;
use berth_api::{JobSpec, JobStatus, Phase, PlacementSpec, PlacementStatus};

use super::*;

const T0: &str = "2026-01-02T03:00:00Z";

fn at(secs: i64) -> Timestamp {
    plus(T0.parse().unwrap(), SignedDuration::from_secs(secs))
}

fn group(name: &str, n: u32, deps: &[&str]) -> TaskGroup {
    let depends_on = deps.iter().map(|d| d.to_string()).collect();
    TaskGroup { name: name.into(), instances: Some(n), depends_on, ..Default::default() }
}

fn job(groups: Vec<TaskGroup>) -> Job {
    Job::new("j", JobSpec { task_groups: groups, ..Default::default() })
}

/// Attempt `a` of instance `i` of group `g`, in `phase`, finished at `T0 + ended` seconds.
fn p(g: &str, i: u32, a: u32, phase: Phase, reason: Option<&str>, ended: i64) -> Placement {
    let spec = PlacementSpec { task_group: g.into(), instance: i, attempt: a, ..Default::default() };
    let mut p = Placement::new(&format!("j-{g}-{i}-{a}"), spec);
    let finished_at = phase.is_terminal().then(|| berth_api::format_time(at(ended)));
    let exit_code = match phase {
        Phase::Succeeded => Some(0),
        Phase::Failed => Some(1),
        _ => None,
    };
    p.status =
        Some(PlacementStatus { phase, reason: reason.map(String::from), exit_code, finished_at, ..Default::default() });
    p
}

fn wanted(job: &Job, ps: &[Placement], now: Timestamp) -> Vec<(String, u32, u32)> {
    let refs: Vec<&Placement> = ps.iter().collect();
    needed(job, &refs, now).into_iter().map(|(g, i, a)| (g.name.clone(), i, a)).collect()
}

fn w(g: &str, i: u32, a: u32) -> (String, u32, u32) {
    (g.to_string(), i, a)
}

#[test]
fn stages_start_in_dependency_order() {
    let j = job(vec![group("load", 1, &["transform"]), group("extract", 2, &[]), group("transform", 1, &["extract"])]);
    assert_eq!(wanted(&j, &[], at(0)), [w("extract", 0, 0), w("extract", 1, 0)]);
    let one = [p("extract", 0, 0, Phase::Succeeded, None, 0), p("extract", 1, 0, Phase::Running, None, 0)];
    assert_eq!(wanted(&j, &one, at(0)), []);
    let both = [p("extract", 0, 0, Phase::Succeeded, None, 0), p("extract", 1, 0, Phase::Succeeded, None, 0)];
    assert_eq!(wanted(&j, &both, at(0)), [w("transform", 0, 0)]);
}

#[test]
fn a_failed_stage_skips_those_after_it_and_fails_the_job() {
    let j = job(vec![group("a", 1, &[]), group("b", 1, &["a"]), group("c", 1, &["b"])]);
    let refs = [p("a", 0, 0, Phase::Failed, Some("Error"), 0)];
    let all: Vec<&Placement> = refs.iter().collect();
    let a = assess(&j, &all, at(100));
    assert_eq!(
        (a.groups[1].gate.clone(), a.groups[2].gate.clone()),
        (Gate::Skipped("a".into()), Gate::Skipped("b".into()))
    );
    let Some(Stop::Failed { reason, message }) = &a.stop else { panic!("{:?}", a.stop) };
    assert_eq!(reason, "TaskFailed");
    assert!(
        message.contains("task a[0] failed 1 time(s) in 1 attempt(s)") && message.contains("exit code 1"),
        "{message}"
    );
    assert!(a.needed().is_empty());
}

#[test]
fn parallelism_keeps_a_window_of_live_instances_started_in_order() {
    let mut g = group("g", 5, &[]);
    g.parallelism = Some(2);
    let j = job(vec![g]);
    assert_eq!(wanted(&j, &[], at(0)), [w("g", 0, 0), w("g", 1, 0)]);
    let ps = [p("g", 0, 0, Phase::Succeeded, None, 0), p("g", 1, 0, Phase::Running, None, 0)];
    assert_eq!(wanted(&j, &ps, at(0)), [w("g", 2, 0)]);
    let ps = [p("g", 0, 0, Phase::Running, None, 0), p("g", 1, 0, Phase::Pending, None, 0)];
    assert_eq!(wanted(&j, &ps, at(0)), []);
}

fn retried(limit: u32) -> Job {
    let mut g = group("g", 1, &[]);
    g.retries = Some(RetryPolicy { limit: Some(limit), backoff_seconds: Some(10), max_backoff_seconds: Some(300) });
    job(vec![g])
}

#[test]
fn a_failure_is_retried_after_its_backoff() {
    let j = retried(2);
    let ps = [p("g", 0, 0, Phase::Failed, Some("Error"), 0)];
    assert_eq!(wanted(&j, &ps, at(9)), []);
    let refs: Vec<&Placement> = ps.iter().collect();
    let a = assess(&j, &refs, at(9));
    assert_eq!(a.groups[0].instances[0].state, State::BackingOff { attempt: 1, until: at(10) });
    assert_eq!((a.wake, a.stop.clone()), (Some(at(10)), None));
    assert_eq!(wanted(&j, &ps, at(10)), [w("g", 0, 1)]);
    // The second failure waits twice as long.
    let ps = [p("g", 0, 0, Phase::Failed, Some("Error"), 0), p("g", 0, 1, Phase::Failed, Some("Error"), 30)];
    assert_eq!(wanted(&j, &ps, at(49)), []);
    assert_eq!(wanted(&j, &ps, at(50)), [w("g", 0, 2)]);
}

#[test]
fn failure_number_limit_plus_one_fails_the_job() {
    let j = retried(1);
    let ps = [p("g", 0, 0, Phase::Failed, Some("Error"), 0), p("g", 0, 1, Phase::Failed, Some("Error"), 20)];
    let refs: Vec<&Placement> = ps.iter().collect();
    let a = assess(&j, &refs, at(1000));
    assert_eq!(a.groups[0].instances[0].state, State::Exhausted);
    let Some(Stop::Failed { message, .. }) = &a.stop else { panic!("{:?}", a.stop) };
    assert!(message.contains("failed 2 time(s) in 2 attempt(s) (retries allowed: 1)"), "{message}");
    assert!(a.needed().is_empty());
    let (reason, why) = a.kill().expect("the tasks still running are stopped");
    assert_eq!(reason, REASON_JOB_FAILED);
    assert!(why.starts_with("the Job failed: task g[0] failed 2 time(s)"), "{why}");
}

#[test]
fn a_complete_job_stops_nothing() {
    let j = job(vec![group("g", 1, &[])]);
    let ps = [p("g", 0, 0, Phase::Succeeded, None, 0)];
    let refs: Vec<&Placement> = ps.iter().collect();
    assert_eq!(assess(&j, &refs, at(1)).kill(), None);
}

#[test]
fn lost_evicted_and_suspended_attempts_are_replaced_at_once_without_counting() {
    let j = retried(0);
    let ps = [
        p("g", 0, 0, Phase::Lost, Some(REASON_AGENT_LOST), 0),
        p("g", 0, 1, Phase::Killed, Some(REASON_EVICTED), 0),
        p("g", 0, 2, Phase::Killed, Some(REASON_SUSPENDED), 0),
    ];
    assert_eq!(wanted(&j, &ps, at(0)), [w("g", 0, 3)]);
    let refs: Vec<&Placement> = ps.iter().collect();
    assert_eq!(assess(&j, &refs, at(0)).groups[0].instances[0].history.failures, 0);
}

fn started(mut j: Job, deadline: u64) -> Job {
    j.spec.active_deadline_seconds = Some(deadline);
    j.status = Some(JobStatus { start_time: Some(T0.into()), ..Default::default() });
    j
}

#[test]
fn past_its_deadline_the_job_fails_and_its_tasks_are_killed() {
    let j = started(job(vec![group("g", 2, &[])]), 60);
    let ps = [p("g", 0, 0, Phase::Running, None, 0)];
    let refs: Vec<&Placement> = ps.iter().collect();
    let before = assess(&j, &refs, at(59));
    assert_eq!((before.stop.clone(), before.wake), (None, Some(at(60))));
    assert_eq!(before.needed().len(), 1);
    let after = assess(&j, &refs, at(60));
    assert!(matches!(&after.stop, Some(Stop::Failed { reason, .. }) if reason == REASON_DEADLINE_EXCEEDED));
    assert!(after.needed().is_empty());
    assert_eq!(after.kill().map(|k| k.0), Some(REASON_DEADLINE_EXCEEDED));
}

#[test]
fn the_deadline_does_not_run_while_suspended() {
    let mut j = started(job(vec![group("g", 1, &[])]), 60);
    j.spec.suspend = true;
    let a = assess(&j, &[], at(600));
    assert_eq!(a.stop, Some(Stop::Suspended));
    assert_eq!(a.kill().map(|k| k.0), Some(REASON_SUSPENDED));
    assert!(a.needed().is_empty());
}

#[test]
fn resuming_gives_unfinished_instances_their_next_attempt() {
    let j = job(vec![group("g", 2, &[])]);
    let ps = [p("g", 0, 0, Phase::Succeeded, None, 0), p("g", 1, 0, Phase::Killed, Some(REASON_SUSPENDED), 0)];
    assert_eq!(wanted(&j, &ps, at(0)), [w("g", 1, 1)]);
}

#[test]
fn a_finished_job_stays_finished_and_expires_after_its_ttl() {
    let mut j = job(vec![group("g", 1, &[])]);
    j.spec.ttl_seconds_after_finished = Some(30);
    let mut status = JobStatus { completion_time: Some(T0.into()), ..Default::default() };
    assert_eq!(ttl_expiry(&j, &status), Some(at(30)));
    status.conditions.push(Condition::new("Complete", true, "AllTasksSucceeded", ""));
    j.status = Some(status);
    assert_eq!(assess(&j, &[], at(0)).stop, Some(Stop::Complete));
    j.spec.ttl_seconds_after_finished = None;
    assert_eq!(ttl_expiry(&j, j.status.as_ref().unwrap()), None);
}
