//! A service Job's status from its groups' attempts: per group the phase
//! (`Running`, `Updating`, `Paused`, `Degraded`), counts and instances; the
//! Job's `available`, revision and conditions — `Available` and
//! `Progressing` as a Deployment's, `Ready`/`Reconciling`/`Stalled` as
//! kstatus reads them. Pure: attempts and the time in, status out.

use berth_api::condition::{Condition, set_condition};
use berth_api::job::{GroupStatus, InstanceStatus, MAX_LISTED_INSTANCES, TaskCounts};
use berth_api::rollout::Revision;
use berth_api::{Job, JobStatus, Phase, TaskGroup};
use jiff::Timestamp;

use super::attempt::{Attempt, consecutive_failures};
use super::plan::Backoff;

/// One group as the status sees it.
pub struct GroupView<'a> {
    pub group: &'a TaskGroup,
    pub hash: &'a str,
    pub max_unavailable: u32,
    pub attempts: &'a [Attempt],
    pub backoffs: &'a [Backoff],
}

/// Why nothing can be done, if so: the condition reason and message.
pub type Blocked<'a> = Option<(&'a str, &'a str)>;

struct Summary {
    status: GroupStatus,
    /// All instances serve the current template, nothing else runs.
    done: bool,
    /// At least `instances - maxUnavailable` serve.
    enough: bool,
}

fn group(v: &GroupView<'_>, paused: bool, now: Timestamp) -> Summary {
    let n = v.group.instances();
    let kept: Vec<&Attempt> = v.attempts.iter().filter(|a| a.is_kept()).collect();
    let serving = |s: u32| kept.iter().any(|a| a.slot == s && a.is_available());
    let available = (0..n).filter(|s| serving(*s)).count() as u32;
    let ready = kept.iter().filter(|a| a.healthy).count() as u32;
    let updated = kept.iter().filter(|a| a.slot < n && a.hash == v.hash).count() as u32;
    let old = kept.iter().any(|a| a.hash != v.hash);
    let extra = kept.iter().any(|a| a.slot >= n);
    let running = kept.iter().filter(|a| a.slot < n && a.phase == Phase::Running).count() as u32;
    let tasks = TaskCounts {
        running,
        pending: n.saturating_sub(running.min(n)).saturating_sub(v.backoffs.len() as u32),
        succeeded: 0,
        failed: v.backoffs.len() as u32,
    };
    let done = !old && !extra && updated == n && available == n;
    let phase = if paused {
        "Paused"
    } else if old || updated < n {
        if old { "Updating" } else { "Degraded" }
    } else if available < n {
        "Degraded"
    } else {
        "Running"
    };
    let message = match v.backoffs.first() {
        Some(b) => format!(
            "instance {} backing off {}s after {} ({} failures in a row)",
            b.slot,
            (b.until.as_second() - now.as_second()).max(0),
            b.why,
            b.failures
        ),
        None => format!("{updated}/{n} updated, {ready} ready, {available} available"),
    };
    let instances = (0..n)
        .take(MAX_LISTED_INSTANCES)
        .map(|slot| {
            let of_slot: Vec<&Attempt> = v.attempts.iter().filter(|a| a.slot == slot).collect();
            let latest = of_slot.iter().max_by_key(|a| a.attempt);
            let last_ended = of_slot.iter().filter(|a| !a.is_live() && a.exit_code.is_some()).max_by_key(|a| a.attempt);
            InstanceStatus {
                instance: slot,
                phase: latest.map(|a| a.phase).unwrap_or_default(),
                attempts: latest.map(|a| a.attempt + 1).unwrap_or(0),
                failures: consecutive_failures(&of_slot),
                last_exit_code: last_ended.and_then(|a| a.exit_code),
                placement: latest.map(|a| a.name.clone()),
                next_attempt_after: v.backoffs.iter().find(|b| b.slot == slot).map(|b| berth_api::format_time(b.until)),
            }
        })
        .collect();
    Summary {
        status: GroupStatus {
            name: v.group.name.clone(),
            phase: Some(phase.into()),
            message: Some(message),
            tasks,
            ready: Some(ready),
            updated: Some(updated),
            available: Some(available),
            instances,
        },
        done,
        enough: available >= n.saturating_sub(v.max_unavailable),
    }
}

/// The service Job's new status.
pub fn compute(
    job: &Job,
    groups: &[GroupView<'_>],
    unschedulable: Option<&str>,
    blocked: Blocked<'_>,
    (revision, revisions): (u32, Vec<Revision>),
    now: Timestamp,
) -> JobStatus {
    let old = job.status.clone().unwrap_or_default();
    let now_s = berth_api::format_time(now);
    let generation = job.metadata.generation;
    let mut conditions = old.conditions.clone();
    let mut set =
        |c: Condition| set_condition(&mut conditions, Condition { observed_generation: generation, ..c }, &now_s);

    if let Some((reason, why)) = blocked {
        set(Condition::new("Scheduled", false, reason, why));
        set(Condition::new("Stalled", true, reason, why));
        set(Condition::new("Ready", false, reason, why));
        set(Condition::new("Reconciling", false, reason, ""));
        set(Condition::new("Available", false, reason, why));
        return JobStatus {
            phase: Some("Pending".into()),
            observed_generation: generation,
            conditions,
            revision: Some(revision),
            revisions,
            ..old
        };
    }

    let paused = job.spec.paused;
    let summaries: Vec<Summary> = groups.iter().map(|g| group(g, paused, now)).collect();
    let mut tasks = TaskCounts::default();
    for s in &summaries {
        tasks.running += s.status.tasks.running;
        tasks.pending += s.status.tasks.pending;
        tasks.failed += s.status.tasks.failed;
    }
    let available: u32 = summaries.iter().map(|s| s.status.available.unwrap_or(0)).sum();
    let desired: u32 = groups.iter().map(|g| g.group.instances()).sum();
    let done = summaries.iter().all(|s| s.done);
    let enough = summaries.iter().all(|s| s.enough);
    let phase_of = |p: &str| summaries.iter().any(|s| s.status.phase.as_deref() == Some(p));
    let phase = if paused {
        "Paused"
    } else if phase_of("Updating") {
        "Updating"
    } else if phase_of("Degraded") {
        "Degraded"
    } else {
        "Running"
    };
    let detail = summaries
        .iter()
        .map(|s| format!("{}: {}", s.status.name, s.status.message.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");

    let placed = groups.iter().all(|g| (0..g.group.instances()).all(|s| g.attempts.iter().any(|a| a.slot == s)));
    match unschedulable {
        Some(why) => set(Condition::new("Scheduled", false, "Unschedulable", why)),
        None if placed => set(Condition::new("Scheduled", true, "Placed", format!("{desired} instances placed"))),
        None => set(Condition::new("Scheduled", false, "Placing", detail.clone())),
    }
    let avail_msg = format!("{available}/{desired} instances available");
    match enough {
        true => set(Condition::new("Available", true, "MinimumInstancesAvailable", avail_msg.clone())),
        false => set(Condition::new("Available", false, "MinimumInstancesUnavailable", avail_msg.clone())),
    }
    set(Condition::new("Stalled", false, "Progressing", ""));
    if paused {
        let msg = format!("the rollout is paused (spec.paused); {detail}");
        set(Condition { status: "Unknown".into(), ..Condition::new("Progressing", false, "Paused", msg.clone()) });
        set(Condition::new("Ready", done, if done { "Available" } else { "Paused" }, msg));
        set(Condition::new("Reconciling", false, "Paused", ""));
    } else if done {
        let msg = format!("revision {revision} is rolled out: {avail_msg}");
        set(Condition::new("Progressing", true, "NewRevisionAvailable", msg.clone()));
        set(Condition::new("Ready", true, "Available", msg));
        set(Condition::new("Reconciling", false, "Available", ""));
    } else {
        let reason = if phase == "Degraded" { "Degraded" } else { "Updating" };
        set(Condition::new("Progressing", true, reason, detail.clone()));
        set(Condition::new("Ready", false, reason, detail.clone()));
        set(Condition::new("Reconciling", true, reason, detail));
    }

    JobStatus {
        phase: Some(phase.into()),
        tasks,
        start_time: old.start_time.or_else(|| Some(now_s.clone())),
        completion_time: None,
        observed_generation: generation,
        conditions,
        groups: summaries.into_iter().map(|s| s.status).collect(),
        available: Some(available),
        revision: Some(revision),
        revisions,
    }
}
