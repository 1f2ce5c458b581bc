//! `Cluster`: a pool of agents and how it is shared among frameworks.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::resources::Resources;

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
    /// How long an offer stays open before it is rescinded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_timeout_seconds: Option<u32>,
    /// How long a declined agent is not re-offered to the framework, unless it says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<u32>,
}

/// The allocation policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Allocation {
    #[serde(default)]
    pub policy: AllocationPolicy,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AllocationPolicy {
    /// Weighted Dominant Resource Fairness.
    #[default]
    #[serde(rename = "DRF")]
    Drf,
    /// Higher-priority frameworks first.
    StrictPriority,
}

/// A role: a share of the cluster for the frameworks in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Role {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<Resources>,
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
