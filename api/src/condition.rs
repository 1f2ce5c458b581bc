//! The standard Kubernetes condition shape, and how a controller sets one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation about an object, as `kubectl wait --for=condition=…` reads it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect observed: `Scheduled`, `Complete`, `Failed`, `Ready`, …
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase word for programs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: None,
            observed_generation: None,
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Sets `cond` in `conditions`, keeping `lastTransitionTime` when the
/// status did not change, so the time says when it last changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut cond: Condition, now: &str) {
    match conditions.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(old) => {
            cond.last_transition_time =
                if old.status == cond.status { old.last_transition_time.clone() } else { Some(now.to_string()) };
            *old = cond;
        }
        None => {
            cond.last_transition_time = Some(now.to_string());
            conditions.push(cond);
        }
    }
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut cs = Vec::new();
        set_condition(&mut cs, Condition::new("Scheduled", false, "Waiting", "a"), "t1");
        set_condition(&mut cs, Condition::new("Scheduled", false, "Waiting", "b"), "t2");
        assert_eq!(cs[0].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(cs[0].message, "b");
        set_condition(&mut cs, Condition::new("Scheduled", true, "Placed", "c"), "t3");
        assert_eq!(cs[0].last_transition_time.as_deref(), Some("t3"));
        assert_eq!(cs.len(), 1);
    }
}
