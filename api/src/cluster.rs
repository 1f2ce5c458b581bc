//! `Cluster`: a pool of agents and how it is shared among frameworks.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::resources::Resources;

/// How long an offer stays open when the cluster does not say.
pub const DEFAULT_OFFER_TIMEOUT_SECONDS: u32 = 30;
/// How long a declined agent is not re-offered when neither the cluster nor
/// the decline says (Mesos' default filter).
pub const DEFAULT_REFUSE_SECONDS: u32 = 5;
/// The role of a framework that names none.
pub const DEFAULT_ROLE: &str = "*";

/// A pool of agents and its allocation policy.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Cluster",
    status = "ClusterStatus",
    category = "berth",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.allocation.policy"),
    printcolumn(name = "Agents", type_ = "integer", json_path = ".status.agents"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Agents whose labels match all of these belong to the cluster; empty selects all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agent_selector: BTreeMap<String, String>,
    /// How resources are divided among frameworks.
    #[serde(default)]
    pub allocation: Allocation,
    /// Roles frameworks belong to, with weights and quotas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    /// How long an offer stays open before it is rescinded (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub offer_timeout_seconds: Option<u32>,
    /// How long a declined agent is not re-offered to the framework, unless
    /// the decline says otherwise (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 31536000))]
    pub refuse_seconds: Option<u32>,
}

impl ClusterSpec {
    /// The offer timeout, defaulted.
    pub fn offer_timeout_seconds(&self) -> u32 {
        self.offer_timeout_seconds.unwrap_or(DEFAULT_OFFER_TIMEOUT_SECONDS)
    }

    /// The refuse time of a decline that names none, defaulted.
    pub fn refuse_seconds(&self) -> u32 {
        self.refuse_seconds.unwrap_or(DEFAULT_REFUSE_SECONDS)
    }
}

/// The allocation policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Allocation {
    /// `DRF` (default) or `StrictPriority`.
    #[serde(default)]
    pub policy: AllocationPolicy,
}

/// How frameworks are ordered when they compete for resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AllocationPolicy {
    /// Weighted Dominant Resource Fairness, among roles and within each role.
    #[default]
    #[serde(rename = "DRF")]
    Drf,
    /// Higher-priority frameworks first; DRF among equal priorities.
    StrictPriority,
}

/// A role: a share of the cluster for the frameworks in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Role {
    /// The name frameworks give in `spec.role`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Its weight among roles under DRF (default 1); must be above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 1000000))]
    pub weight: Option<f64>,
    /// Resources its frameworks are offered before any fair sharing, while they have demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<Resources>,
    /// Resources its frameworks together never exceed (placements and offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Resources>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_manifest_is_a_valid_cluster() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/cluster.yaml");
        let cluster: Cluster = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let spec = cluster.spec;
        assert_eq!(spec.agent_selector.get("pool").map(String::as_str), Some("general"));
        assert_eq!(spec.allocation.policy, AllocationPolicy::Drf);
        let analytics = &spec.roles[0];
        assert_eq!(analytics.weight, Some(2.0));
        let guarantee = analytics.guarantee.as_ref().unwrap().to_vec().unwrap();
        let limit = analytics.limit.as_ref().unwrap().to_vec().unwrap();
        assert!(guarantee.fits_in(&limit), "guarantee {guarantee:?} above limit {limit:?}");
    }

    #[test]
    fn an_old_manifest_without_policy_fields_still_reads() {
        let spec: ClusterSpec = serde_json::from_str(r#"{"agentSelector": {"pool": "a"}}"#).unwrap();
        assert_eq!(spec.allocation.policy, AllocationPolicy::Drf);
        assert_eq!(spec.offer_timeout_seconds(), DEFAULT_OFFER_TIMEOUT_SECONDS);
        assert_eq!(spec.refuse_seconds(), DEFAULT_REFUSE_SECONDS);
    }

    #[test]
    fn policy_and_roles_read_as_written() {
        let spec: ClusterSpec = serde_json::from_str(
            r#"{"allocation": {"policy": "StrictPriority"}, "offerTimeoutSeconds": 10,
                "roles": [{"name": "prod", "weight": 3, "guarantee": {"cpu": "4"}, "limit": {"memory": "64Gi"}}]}"#,
        )
        .unwrap();
        assert_eq!(spec.allocation.policy, AllocationPolicy::StrictPriority);
        assert_eq!(spec.offer_timeout_seconds(), 10);
        assert_eq!(spec.roles[0].weight, Some(3.0));
        assert_eq!(spec.roles[0].limit.as_ref().and_then(|l| l.memory.clone()), Some("64Gi".into()));
    }
}
