//! Events: the decisions a user asks "why?" about, as `kubectl describe`
//! shows them under `Events:`. What is worth an Event is a pure function of
//! the old and new status ([`job_notes`]); [`record`] writes core/v1 Events.
//! Recording is best effort: a failed write is logged, never retried, and
//! never fails the reconcile that made the decision.

use berth_api::JobStatus;
use berth_api::condition::find;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

/// The component named as every Event's source.
pub const COMPONENT: &str = "berth-controllers";

/// One thing worth telling, about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

impl Note {
    fn normal(reason: &str, message: &str) -> Note {
        Note { type_: "Normal", reason: reason.into(), message: message.into() }
    }

    fn warning(reason: &str, message: &str) -> Note {
        Note { type_: "Warning", reason: reason.into(), message: message.into() }
    }
}

/// What changed between a Job's `old` and `new` status that a user would
/// want in its Events: it could not be placed (and why, each time the reason
/// changes), its spec cannot be acted on, it was placed, it was suspended or
/// resumed, it completed, it failed (`DeadlineExceeded` when past its deadline).
pub fn job_notes(old: Option<&JobStatus>, new: &JobStatus) -> Vec<Note> {
    let was = |type_: &str| old.and_then(|o| find(&o.conditions, type_));
    let is = |type_: &str| find(&new.conditions, type_);
    let became_true =
        |type_: &str| is(type_).filter(|c| c.status == "True" && was(type_).is_none_or(|w| w.status != "True"));
    let mut notes = Vec::new();
    if let Some(s) = is("Scheduled") {
        let before = was("Scheduled");
        let changed = before.is_none_or(|b| b.reason != s.reason || b.message != s.message);
        match s.reason.as_str() {
            "Unschedulable" if changed => notes.push(Note::warning("FailedScheduling", &s.message)),
            "InvalidSpec" if changed => notes.push(Note::warning("InvalidSpec", &s.message)),
            _ => {}
        }
    }
    if let Some(s) = became_true("Scheduled") {
        notes.push(Note::normal("Scheduled", &s.message));
    }
    if let Some(c) = became_true("Complete") {
        notes.push(Note::normal("Completed", &c.message));
    }
    if let Some(s) = became_true("Suspended") {
        notes.push(Note::normal("Suspended", &s.message));
    }
    if let Some(s) = is("Suspended").filter(|s| s.status != "True" && was("Suspended").is_some_and(|w| w.is_true())) {
        notes.push(Note::normal("Resumed", &s.message));
    }
    if let Some(f) = became_true("Failed") {
        let reason =
            if f.reason == berth_api::placement::REASON_DEADLINE_EXCEEDED { "DeadlineExceeded" } else { "Failed" };
        notes.push(Note::warning(reason, &f.message));
    }
    notes
}

/// Writes `note` as a core/v1 Event about `obj`, in its namespace, in the
/// form client-go's event recorder writes (first/last timestamp and count).
pub async fn record<K>(client: &Client, obj: &K, note: &Note)
where
    K: Resource<DynamicType = ()>,
{
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let now = jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", obj.name_any(), now.as_nanosecond())),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(obj.name_any()),
            namespace: obj.namespace(),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            field_path: None,
        },
        type_: Some(note.type_.into()),
        reason: Some(note.reason.clone()),
        message: Some(note.message.clone()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        source: Some(EventSource { component: Some(COMPONENT.into()), host: None }),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    if let Err(error) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(object = %obj.name_any(), reason = %note.reason, %error, "could not record an event");
    }
}

#[cfg(test)]
mod tests {
    use berth_api::condition::Condition;

    use super::*;

    fn status(conditions: Vec<Condition>) -> JobStatus {
        JobStatus { conditions, ..Default::default() }
    }

    fn unschedulable(why: &str) -> Condition {
        Condition::new("Scheduled", false, "Unschedulable", why)
    }

    #[test]
    fn an_unschedulable_job_is_told_once_per_reason() {
        let first = status(vec![unschedulable("0/1 agents fit: agent-1 lacks memory")]);
        assert_eq!(
            job_notes(None, &first),
            [Note::warning("FailedScheduling", "0/1 agents fit: agent-1 lacks memory")]
        );
        assert_eq!(job_notes(Some(&first), &first), [], "the same reason again is not news");
        let other = status(vec![unschedulable("0/2 agents fit: both lack cpu")]);
        assert_eq!(job_notes(Some(&first), &other).len(), 1, "a new reason is");
    }

    #[test]
    fn an_invalid_spec_is_a_warning_once() {
        let why = "spec.taskGroups[0].constraints[0]: unsupported operator \"NEAR\"";
        let invalid = status(vec![Condition::new("Scheduled", false, "InvalidSpec", why)]);
        assert_eq!(job_notes(None, &invalid), [Note::warning("InvalidSpec", why)]);
        assert_eq!(job_notes(Some(&invalid), &invalid), []);
    }

    #[test]
    fn placed_then_complete_then_nothing_more() {
        let pending = status(vec![unschedulable("0/1 agents fit")]);
        let placed = status(vec![Condition::new("Scheduled", true, "Placed", "2/2 tasks placed")]);
        assert_eq!(job_notes(Some(&pending), &placed), [Note::normal("Scheduled", "2/2 tasks placed")]);
        let mut done = placed.clone();
        done.conditions.push(Condition::new("Complete", true, "AllTasksSucceeded", "2/2 tasks succeeded"));
        assert_eq!(job_notes(Some(&placed), &done), [Note::normal("Completed", "2/2 tasks succeeded")]);
        assert_eq!(job_notes(Some(&done), &done), []);
    }

    #[test]
    fn a_failure_is_a_warning_with_the_task_and_exit_code() {
        let placed = status(vec![Condition::new("Scheduled", true, "Placed", "1/1 tasks placed")]);
        let mut failed = placed.clone();
        failed.conditions.push(Condition::new("Failed", true, "TaskFailed", "task main[0] failed: exit code 3"));
        failed.conditions.push(Condition::new("Complete", false, "TaskFailed", "task main[0] failed: exit code 3"));
        assert_eq!(job_notes(Some(&placed), &failed), [Note::warning("Failed", "task main[0] failed: exit code 3")]);
    }

    #[test]
    fn suspending_resuming_and_the_deadline_are_told() {
        let running = status(vec![]);
        let suspended = status(vec![Condition::new("Suspended", true, "JobSuspended", "Job suspended")]);
        assert_eq!(job_notes(Some(&running), &suspended), [Note::normal("Suspended", "Job suspended")]);
        let resumed = status(vec![Condition::new("Suspended", false, "JobResumed", "Job resumed")]);
        assert_eq!(job_notes(Some(&suspended), &resumed), [Note::normal("Resumed", "Job resumed")]);
        assert_eq!(job_notes(Some(&resumed), &resumed), []);
        let late = status(vec![Condition::new("Failed", true, "DeadlineExceeded", "past 60s")]);
        assert_eq!(job_notes(Some(&running), &late), [Note::warning("DeadlineExceeded", "past 60s")]);
    }
}
