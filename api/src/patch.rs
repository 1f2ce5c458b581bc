//! JSON merge patches (RFC 7386) that carry removals: a merge patch that
//! leaves a field out keeps it, so a field the new value no longer has
//! (an `Option` now `None`, skipped when serialized) is sent as `null`, in
//! nested objects too. Arrays are replaced whole, as a merge patch does.

use serde::Serialize;
use serde_json::Value;

/// `next` as a merge patch over `current` (none: `next` as it is).
pub fn merge_patch<T: Serialize>(current: Option<&T>, next: &T) -> Value {
    let mut patch = serde_json::to_value(next).unwrap_or_default();
    if let Some(old) = current.and_then(|c| serde_json::to_value(c).ok()) {
        null_dropped(&old, &mut patch);
    }
    patch
}

/// Nulls in `new` every key of `old` it lacks, recursing into objects both have.
fn null_dropped(old: &Value, new: &mut Value) {
    let (Value::Object(old), Value::Object(new)) = (old, new) else { return };
    for (key, was) in old {
        match new.get_mut(key) {
            Some(now) => null_dropped(was, now),
            None => {
                new.insert(key.clone(), Value::Null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PlacementStatus;
    use crate::health::HealthStatus;

    #[test]
    fn a_field_dropped_from_a_nested_object_is_nulled() {
        let failing = HealthStatus { healthy: false, message: Some("status 500".into()), ..Default::default() };
        let current = PlacementStatus { health: Some(failing), message: Some("x".into()), ..Default::default() };
        let next = PlacementStatus {
            health: Some(HealthStatus { healthy: true, ..Default::default() }),
            ..Default::default()
        };
        let patch = merge_patch(Some(&current), &next);
        assert_eq!(patch["health"]["message"], Value::Null, "{patch}");
        assert_eq!(patch["health"]["healthy"], serde_json::json!(true));
        assert_eq!(patch["message"], Value::Null);
    }

    #[test]
    fn a_job_status_that_drops_its_start_time_clears_it() {
        let old =
            crate::JobStatus { start_time: Some("t".into()), phase: Some("Running".into()), ..Default::default() };
        let next = crate::JobStatus { phase: Some("Suspended".into()), ..Default::default() };
        let patch = merge_patch(Some(&old), &next);
        assert_eq!((patch["startTime"].clone(), patch["phase"].clone()), (Value::Null, serde_json::json!("Suspended")));
        assert!(merge_patch(None, &next).get("startTime").is_none(), "nothing to clear without a current value");
    }
}
