//! What a service's round did that is worth an Event: a rollout began or
//! finished, an instance was restarted after a failure, one was stopped.

use berth_api::JobStatus;
use berth_api::condition::find;

use super::attempt::{Attempt, consecutive_failures};
use super::plan::GroupPlan;
use crate::events::Note;

/// One group's round: its name, attempts before the round, and its plan.
pub type Round<'a> = (&'a str, &'a [Attempt], &'a GroupPlan);

pub fn notes(old: Option<&JobStatus>, new: &JobStatus, rounds: &[Round<'_>]) -> Vec<Note> {
    let note = |type_, reason: &str, message: String| Note { type_, reason: reason.into(), message };
    let mut out = Vec::new();
    let old_revision = old.and_then(|s| s.revision);
    if let (Some(was), Some(now)) = (old_revision, new.revision)
        && was != now
    {
        out.push(note("Normal", "RolloutStarted", format!("revision {now} rolling out (was {was})")));
    }
    let done = |s: Option<&JobStatus>| {
        s.and_then(|s| find(&s.conditions, "Progressing")).is_some_and(|c| c.reason == "NewRevisionAvailable")
    };
    if done(Some(new)) && !done(old) && old.is_some_and(|s| !s.conditions.is_empty()) {
        out.push(note("Normal", "RolloutComplete", format!("revision {} is rolled out", new.revision.unwrap_or(1))));
    }
    for (group, attempts, plan) in rounds {
        for s in &plan.starts {
            let slot: Vec<&Attempt> = attempts.iter().filter(|a| a.slot == s.slot).collect();
            if let Some(latest) = slot.iter().max_by_key(|a| a.attempt).filter(|a| !a.is_live() && a.is_failure()) {
                let message = format!(
                    "instance {} of {group}: attempt {} after {} ({} failures in a row)",
                    s.slot,
                    s.attempt,
                    latest.ended(),
                    consecutive_failures(&slot)
                );
                out.push(note("Warning", "Restarting", message));
            }
        }
        for k in &plan.kills {
            out.push(note("Normal", k.reason, format!("stopping placement {}", k.name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::plan::{Start, Template};
    use berth_api::Phase;

    #[test]
    fn a_restart_after_a_failure_and_a_new_revision_are_told() {
        let failed = Attempt {
            name: "web-web-0-0".into(),
            slot: 0,
            attempt: 0,
            hash: "a".into(),
            phase: Phase::Failed,
            reason: Some("Error".into()),
            exit_code: Some(3),
            healthy: false,
            stopping: false,
            started_at: None,
            finished_at: None,
            failures_before: 0,
        };
        let plan = GroupPlan {
            starts: vec![Start { slot: 0, attempt: 1, template: Template::Current }],
            ..Default::default()
        };
        let old = JobStatus { revision: Some(1), ..Default::default() };
        let new = JobStatus { revision: Some(2), ..Default::default() };
        let attempts = [failed];
        let notes = notes(Some(&old), &new, &[("web", &attempts, &plan)]);
        let said: Vec<(&str, &str)> = notes.iter().map(|n| (n.reason.as_str(), n.message.as_str())).collect();
        assert_eq!(
            said,
            [
                ("RolloutStarted", "revision 2 rolling out (was 1)"),
                ("Restarting", "instance 0 of web: attempt 1 after exit code 3 (Error) (1 failures in a row)")
            ]
        );
    }
}
