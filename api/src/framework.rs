//! `Framework`: a scheduler taking part in a cluster.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::resources::Resources;

/// A scheduler that receives offers or claims shared state in a cluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Framework",
    namespaced,
    status = "FrameworkStatus",
    shortname = "fw",
    category = "berth",
    printcolumn(name = "Scheduler", type_ = "string", json_path = ".spec.scheduler"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkSpec {
    /// The `Cluster` this framework runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The role whose share and quota this framework draws on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Weight among the frameworks of its role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Priority under the `StrictPriority` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// How it gets resources.
    #[serde(default)]
    pub mode: Mode,
    /// Who makes its placement decisions.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// How long its offers and tasks survive a disconnected scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout_seconds: Option<u32>,
}

/// How a framework gets resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// Optimistic claims on the shared ledger.
    #[default]
    SharedState,
    /// Resource offers from the allocator.
    Offers,
}

/// Who makes a framework's placement decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    /// Runs `Job`s to completion.
    #[default]
    BuiltinBatch,
    /// Keeps `Job`s' instances running.
    BuiltinService,
    /// A client outside Berth.
    External,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominant_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers_outstanding: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
