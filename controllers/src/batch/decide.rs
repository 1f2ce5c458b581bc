//! What a batch Job needs now, decided from its spec, its placements (every
//! attempt) and the clock: which instances get which attempt, whether the
//! Job stopped (complete, failed, past its deadline, suspended) and when to
//! look again. One function for both paths: shared-state (`placing::place`)
//! and `Offers` (`offers::builtin::pending`).
//!
//! - A group starts once its dependencies are complete (`dag`).
//! - At most `parallelism` instances of a group are live at once; the rest
//!   wait and start in instance order.
//! - A failed attempt is retried while the instance has failed at most
//!   `retries.limit` times, after `RetryPolicy::backoff(failures)` counted
//!   from the attempt's `finishedAt` (else `startedAt`, else now); failure
//!   number `limit + 1` fails the Job.
//! - Past `activeDeadlineSeconds` from `status.startTime` (not counted
//!   while suspended) the Job fails with reason `DeadlineExceeded`.

use std::collections::BTreeMap;

use berth_api::condition::find;
use berth_api::placement::{REASON_DEADLINE_EXCEEDED, REASON_SUSPENDED};
use berth_api::{Job, Placement, TaskGroup};
use jiff::{SignedDuration, Timestamp};

use super::dag::{Gate, Outcome, gates};
use super::history::{History, histories, is_failure};
use crate::attempts::{Needed, is_replaced};

/// `status.reason` of a task stopped because another task failed its Job.
pub const REASON_JOB_FAILED: &str = "JobFailed";

/// Where one instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Succeeded,
    /// Its latest attempt has not ended.
    Live,
    /// It needs this attempt (gates and parallelism aside).
    Ready(u32),
    /// Its next attempt may start at `until`.
    BackingOff {
        attempt: u32,
        until: Timestamp,
    },
    /// It failed more often than its retries allow.
    Exhausted,
    /// Its latest attempt was stopped by the Job's deadline.
    Stopped,
}

#[derive(Clone, Debug)]
pub struct Instance<'a> {
    pub index: u32,
    pub history: History<'a>,
    pub state: State,
}

#[derive(Clone, Debug)]
pub struct GroupAssessment<'a> {
    pub group: &'a TaskGroup,
    pub gate: Gate,
    pub outcome: Outcome,
    pub instances: Vec<Instance<'a>>,
}

/// Why nothing more starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Complete,
    /// `reason` is `TaskFailed` or `DeadlineExceeded`.
    Failed {
        reason: String,
        message: String,
    },
    Suspended,
}

#[derive(Clone, Debug)]
pub struct Assessment<'a> {
    pub groups: Vec<GroupAssessment<'a>>,
    pub stop: Option<Stop>,
    /// The earliest moment something changes by itself (a backoff ends, the deadline).
    pub wake: Option<Timestamp>,
}

/// The instances of `job` that get a placement now (spec order), given all
/// its placements; see [`assess`].
pub fn needed<'a>(job: &'a Job, placements: &[&'a Placement], now: Timestamp) -> Vec<Needed<'a>> {
    assess(job, placements, now).needed()
}

/// Everything decided about `job` from its `placements` (of any attempt) at `now`.
pub fn assess<'a>(job: &'a Job, placements: &[&'a Placement], now: Timestamp) -> Assessment<'a> {
    let mut hist = histories(placements);
    let mut groups: Vec<GroupAssessment> = job
        .spec
        .task_groups
        .iter()
        .map(|g| {
            let instances: Vec<Instance> = (0..g.instances())
                .map(|i| {
                    let history = hist.remove(&(g.name.clone(), i)).unwrap_or_default();
                    Instance { index: i, state: state(g, &history, now), history }
                })
                .collect();
            let outcome = if instances.iter().any(|i| i.state == State::Exhausted) {
                Outcome::Failed
            } else if instances.iter().all(|i| i.state == State::Succeeded) {
                Outcome::Complete
            } else {
                Outcome::Open
            };
            GroupAssessment { group: g, gate: Gate::Open, outcome, instances }
        })
        .collect();
    let own: BTreeMap<&str, Outcome> = groups.iter().map(|g| (g.group.name.as_str(), g.outcome)).collect();
    for (g, gate) in groups.iter_mut().zip(gates(&job.spec.task_groups, &own)) {
        g.gate = gate;
    }

    let deadline = deadline(job);
    let stop = stop(job, &groups, deadline, now);
    let backoffs =
        groups.iter().filter(|g| g.gate == Gate::Open).flat_map(|g| &g.instances).filter_map(|i| match i.state {
            State::BackingOff { until, .. } => Some(until),
            _ => None,
        });
    let wake = match stop {
        Some(_) => None,
        None => backoffs.chain(deadline).min(),
    };
    Assessment { groups, stop, wake }
}

impl<'a> Assessment<'a> {
    /// The instances that get a placement now: none once the Job stopped;
    /// else the ready instances of open groups, in order, within each
    /// group's parallelism.
    pub fn needed(&self) -> Vec<Needed<'a>> {
        if self.stop.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for g in self.groups.iter().filter(|g| g.gate == Gate::Open) {
            let live = g.instances.iter().filter(|i| i.state == State::Live).count() as u32;
            let slots = g.group.parallelism().saturating_sub(live) as usize;
            let ready = g.instances.iter().filter_map(|i| match i.state {
                State::Ready(attempt) => Some((g.group, i.index, attempt)),
                _ => None,
            });
            out.extend(ready.take(slots));
        }
        out
    }

    /// The kill every live placement of the Job gets: (reason, message).
    /// A Job that failed stops the tasks it still runs.
    pub fn kill(&self) -> Option<(&'static str, String)> {
        match &self.stop {
            Some(Stop::Suspended) => Some((REASON_SUSPENDED, "the Job is suspended".into())),
            Some(Stop::Failed { reason, message }) if reason == REASON_DEADLINE_EXCEEDED => {
                Some((REASON_DEADLINE_EXCEEDED, message.clone()))
            }
            // As Kubernetes' Job past its backoffLimit: the rest is stopped, not left to run for nothing.
            Some(Stop::Failed { message, .. }) => Some((REASON_JOB_FAILED, format!("the Job failed: {message}"))),
            _ => None,
        }
    }
}

fn state(g: &TaskGroup, h: &History, now: Timestamp) -> State {
    let Some(p) = h.latest else { return State::Ready(0) };
    let Some(s) = p.status.as_ref().filter(|s| s.phase.is_terminal()) else { return State::Live };
    let next = p.spec.attempt + 1;
    if s.phase == berth_api::Phase::Succeeded {
        State::Succeeded
    } else if is_replaced(p) {
        State::Ready(next)
    } else if !is_failure(p) {
        State::Stopped
    } else if h.failures > g.retry_policy().limit() {
        State::Exhausted
    } else {
        let ended = [&s.finished_at, &s.started_at].into_iter().flatten().find_map(|t| t.parse::<Timestamp>().ok());
        let wait = SignedDuration::try_from(g.retry_policy().backoff(h.failures)).unwrap_or(SignedDuration::MAX);
        let until = plus(ended.unwrap_or(now), wait);
        if now >= until { State::Ready(next) } else { State::BackingOff { attempt: next, until } }
    }
}

/// When the Job's deadline passes, if it has one and is running (not suspended).
fn deadline(job: &Job) -> Option<Timestamp> {
    let secs = job.spec.active_deadline_seconds?;
    if job.spec.suspend {
        return None;
    }
    let start: Timestamp = job.status.as_ref()?.start_time.as_deref()?.parse().ok()?;
    Some(plus(start, SignedDuration::from_secs(secs.min(i64::MAX as u64) as i64)))
}

/// `t + d`, at most the latest time there is.
pub fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// When a finished Job is deleted: `ttlSecondsAfterFinished` after
/// `status.completionTime` (`None` without a TTL or before it finished).
pub fn ttl_expiry(job: &Job, status: &berth_api::JobStatus) -> Option<Timestamp> {
    let ttl = job.spec.ttl_seconds_after_finished?;
    let done: Timestamp = status.completion_time.as_deref()?.parse().ok()?;
    Some(plus(done, SignedDuration::from_secs(ttl.min(i64::MAX as u64) as i64)))
}

fn stop(job: &Job, groups: &[GroupAssessment], deadline: Option<Timestamp>, now: Timestamp) -> Option<Stop> {
    let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    // Finished is final: a Job does not come back from Complete or Failed.
    if let Some(f) = find(conditions, "Failed").filter(|c| c.is_true()) {
        return Some(Stop::Failed { reason: f.reason.clone(), message: f.message.clone() });
    }
    if find(conditions, "Complete").is_some_and(|c| c.is_true()) {
        return Some(Stop::Complete);
    }
    let exhausted = groups
        .iter()
        .find_map(|g| g.instances.iter().find(|i| i.state == State::Exhausted).map(|i| failure_message(g.group, i)));
    if let Some(message) = exhausted {
        return Some(Stop::Failed { reason: "TaskFailed".into(), message });
    }
    if groups.iter().all(|g| g.outcome == Outcome::Complete) {
        return Some(Stop::Complete);
    }
    if let Some(d) = deadline.filter(|d| now >= *d) {
        let secs = job.spec.active_deadline_seconds.unwrap_or_default();
        let message = format!("the Job ran longer than its activeDeadlineSeconds ({secs}s, until {d})");
        return Some(Stop::Failed { reason: REASON_DEADLINE_EXCEEDED.into(), message });
    }
    job.spec.suspend.then_some(Stop::Suspended)
}

/// Why instance `i` of `g` failed the Job: the task, its attempts, the last exit code.
fn failure_message(g: &TaskGroup, i: &Instance) -> String {
    let h = &i.history;
    let p = h.latest.expect("an exhausted instance has attempts");
    let st = p.status.clone().unwrap_or_default();
    let exit = st.exit_code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".into());
    let reason = st.reason.unwrap_or_else(|| format!("{:?}", st.phase));
    let detail = st.message.map(|m| format!(": {m}")).unwrap_or_default();
    let name = p.metadata.name.as_deref().unwrap_or("?");
    let limit = g.retry_policy().limit();
    format!(
        "task {}[{}] failed {} time(s) in {} attempt(s) (retries allowed: {limit}); last attempt {name}: {exit} ({reason}){detail}",
        g.name, i.index, h.failures, h.attempts
    )
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
