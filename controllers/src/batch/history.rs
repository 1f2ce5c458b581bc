//! One task instance over its attempts. Failures are counted from the
//! instance's placements, which are kept until the Job is deleted, so a
//! controller restart or an agent loss changes nothing: a lost, evicted or
//! suspended attempt is replaced without counting (`attempts::is_replaced`),
//! and one stopped by the Job's deadline is not the task's failure.

use std::collections::BTreeMap;

use berth_api::placement::REASON_DEADLINE_EXCEEDED;
use berth_api::{Phase, Placement};

use crate::attempts::is_replaced;

/// What the placements of one instance tell.
#[derive(Clone, Debug, Default)]
pub struct History<'a> {
    /// Its latest attempt.
    pub latest: Option<&'a Placement>,
    /// Placements made for it.
    pub attempts: u32,
    /// Attempts that failed (what `retries.limit` counts).
    pub failures: u32,
    /// The exit code of its latest attempt that exited.
    pub last_exit_code: Option<i32>,
}

/// True when `p` ended as the task's own failure: `Failed`, or `Killed`
/// for a reason other than a drain, a suspension or the Job's deadline.
pub fn is_failure(p: &Placement) -> bool {
    let Some(s) = &p.status else { return false };
    match s.phase {
        Phase::Failed => true,
        Phase::Killed => !is_replaced(p) && s.reason.as_deref() != Some(REASON_DEADLINE_EXCEEDED),
        _ => false,
    }
}

/// The history of every instance with placements, by (task group, instance).
pub fn histories<'a>(placements: &[&'a Placement]) -> BTreeMap<(String, u32), History<'a>> {
    let mut out: BTreeMap<(String, u32), History<'a>> = BTreeMap::new();
    let mut exited: BTreeMap<(String, u32), u32> = BTreeMap::new();
    for &p in placements {
        let key = (p.spec.task_group.clone(), p.spec.instance);
        let h = out.entry(key.clone()).or_default();
        h.attempts += 1;
        h.failures += u32::from(is_failure(p));
        if h.latest.is_none_or(|l| l.spec.attempt < p.spec.attempt) {
            h.latest = Some(p);
        }
        if let Some(code) = p.status.as_ref().and_then(|s| s.exit_code) {
            let seen = exited.entry(key).or_insert(p.spec.attempt);
            if *seen <= p.spec.attempt {
                *seen = p.spec.attempt;
                h.last_exit_code = Some(code);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::placement::{REASON_AGENT_LOST, REASON_EVICTED, REASON_SUSPENDED};
    use berth_api::{PlacementSpec, PlacementStatus};

    pub(crate) fn attempt(i: u32, a: u32, phase: Phase, reason: Option<&str>, exit: Option<i32>) -> Placement {
        let spec = PlacementSpec { task_group: "g".into(), instance: i, attempt: a, ..Default::default() };
        let mut p = Placement::new(&format!("j-g-{i}-{a}"), spec);
        p.status =
            Some(PlacementStatus { phase, reason: reason.map(String::from), exit_code: exit, ..Default::default() });
        p
    }

    #[test]
    fn lost_evicted_suspended_and_deadline_kills_are_not_failures() {
        let ps = [
            attempt(0, 0, Phase::Failed, Some("Error"), Some(2)),
            attempt(0, 1, Phase::Lost, Some(REASON_AGENT_LOST), None),
            attempt(0, 2, Phase::Killed, Some(REASON_EVICTED), None),
            attempt(0, 3, Phase::Killed, Some(REASON_SUSPENDED), Some(137)),
            attempt(0, 4, Phase::Failed, Some("Error"), Some(3)),
            attempt(0, 5, Phase::Killed, Some(REASON_DEADLINE_EXCEEDED), None),
        ];
        let refs: Vec<&Placement> = ps.iter().collect();
        let h = &histories(&refs)[&("g".to_string(), 0)];
        assert_eq!((h.attempts, h.failures, h.last_exit_code), (6, 2, Some(3)));
        assert_eq!(h.latest.map(|p| p.spec.attempt), Some(5));
    }

    #[test]
    fn a_kill_by_hand_is_a_failure() {
        let p = attempt(0, 0, Phase::Killed, Some("Killed"), None);
        assert!(is_failure(&p));
        assert!(!is_failure(&attempt(0, 0, Phase::Succeeded, None, Some(0))));
    }
}
