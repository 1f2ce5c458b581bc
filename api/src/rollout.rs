//! Rolling updates of services (Kubernetes' Deployment strategy, Marathon's
//! `upgradeStrategy`): when a task group's container changes, its instances
//! are replaced by ones of the new template a few at a time, never more
//! than `maxSurge` above `instances` and never more than `maxUnavailable`
//! below it. Each template is known by its hash, which every placement
//! carries in the label [`LABEL_TEMPLATE_HASH`]; past templates are kept in
//! the Job's status as numbered revisions, so a rollout can be undone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::Container;

/// Label on every placement: the hash of the task group container it runs.
pub const LABEL_TEMPLATE_HASH: &str = "berth.dev/template-hash";

/// `status.reason` of a placement stopped because a newer template replaced it.
pub const REASON_SUPERSEDED: &str = "Superseded";
/// `status.reason` of a placement stopped because its group was scaled down.
pub const REASON_SCALED_DOWN: &str = "ScaledDown";

/// Default `maxSurge` and `maxUnavailable`, as Kubernetes'.
pub const DEFAULT_SURGE_AND_UNAVAILABLE: &str = "25%";

/// A count of instances, or a percentage of `instances`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    Int(u32),
    Percent(String),
}

impl JsonSchema for IntOrPercent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrPercent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+%$" }
            ]
        })
    }
}

impl IntOrPercent {
    /// The count for `instances`: a percentage rounded up or down.
    pub fn resolve(&self, instances: u32, round_up: bool) -> Result<u32, String> {
        match self {
            IntOrPercent::Int(n) => Ok(*n),
            IntOrPercent::Percent(s) => {
                let pct: u64 = s
                    .strip_suffix('%')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("{s:?} is neither a number nor a percentage like \"25%\""))?;
                let scaled = u64::from(instances) * pct;
                let n = if round_up { scaled.div_ceil(100) } else { scaled / 100 };
                Ok(n.min(u64::from(u32::MAX)) as u32)
            }
        }
    }
}

/// How a service's task group is replaced when its container changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// How many instances may run above `instances` during an update
    /// (count or percentage, rounded up; default 25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrPercent>,
    /// How many instances may be unavailable (not running and healthy)
    /// during an update (count or percentage, rounded down; default 25%).
    /// With both zero, one may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
}

impl UpdateStrategy {
    /// `(max surge, max unavailable)` for `instances`, as Kubernetes
    /// resolves them: both zero becomes one unavailable.
    pub fn resolve(&self, instances: u32) -> Result<(u32, u32), String> {
        let default = IntOrPercent::Percent(DEFAULT_SURGE_AND_UNAVAILABLE.into());
        let surge = self.max_surge.as_ref().unwrap_or(&default).resolve(instances, true)?;
        let unavailable = self.max_unavailable.as_ref().unwrap_or(&default).resolve(instances, false)?;
        Ok(if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) })
    }
}

/// One task group's template in a revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupTemplate {
    /// The task group.
    pub name: String,
    /// Its container then.
    #[serde(flatten)]
    pub container: Container,
}

/// A past or present set of a service's templates, numbered from 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: u32,
    /// When it was first rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    pub templates: Vec<GroupTemplate>,
}

/// The hash of a container template: 16 hex digits of FNV-1a over its JSON.
pub fn template_hash(container: &Container) -> String {
    let bytes = serde_json::to_vec(container).unwrap_or_default();
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_kubernetes_does() {
        let s = UpdateStrategy::default();
        assert_eq!(s.resolve(10).unwrap(), (3, 2));
        assert_eq!(s.resolve(1).unwrap(), (1, 0));
        let zero =
            UpdateStrategy { max_surge: Some(IntOrPercent::Int(0)), max_unavailable: Some(IntOrPercent::Int(0)) };
        assert_eq!(zero.resolve(4).unwrap(), (0, 1), "both zero would never progress");
        let bad = UpdateStrategy { max_surge: Some(IntOrPercent::Percent("x%".into())), ..Default::default() };
        assert!(bad.resolve(3).is_err());
    }

    #[test]
    fn a_changed_container_changes_the_hash() {
        let a = Container { image: "a:1".into(), ..Default::default() };
        let b = Container { image: "a:2".into(), ..Default::default() };
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 16);
    }

    #[test]
    fn int_or_percent_reads_both_forms() {
        let s: UpdateStrategy = serde_json::from_str(r#"{"maxSurge": 1, "maxUnavailable": "50%"}"#).unwrap();
        assert_eq!(s.resolve(4).unwrap(), (1, 2));
    }
}
