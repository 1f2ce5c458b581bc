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
    printcolumn(name = "Share", type_ = "number", json_path = ".status.dominantShare"),
    printcolumn(name = "Offers", type_ = "integer", json_path = ".status.offersOutstanding"),
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
    /// Weight among the frameworks of its role (default 1); must be above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 1000000))]
    pub weight: Option<f64>,
    /// Priority under the `StrictPriority` policy: higher goes first (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// How it gets resources.
    #[serde(default)]
    pub mode: Mode,
    /// Who makes its placement decisions.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// For an `external` framework that renews its Lease `framework-<name>`:
    /// how long its tasks keep running after the Lease expired (its offers
    /// stop at once); then they are killed. Unset: never killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 31536000))]
    pub failover_timeout_seconds: Option<u32>,
    /// For an `external` framework in `Offers` mode: true stops its offers
    /// (Mesos' suppress), false or absent brings them back (revive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<bool>,
    /// For an `external` framework: its smallest task; offers are made in
    /// multiples of it (default 100m CPU, 64Mi memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_unit: Option<Resources>,
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

/// The condition type saying whether a framework is being offered resources,
/// and when not, why (`Suppressed`, `QuotaLimit`, `Declined`, `NoCapacity`, …).
pub const CONDITION_OFFERED: &str = "Offered";

/// The condition type saying whether an `external` framework's scheduler
/// renews its Lease `framework-<name>` (`LeaseHeld`), and when not, since
/// when (`LeaseExpired`) and whether its failover timeout passed (`FailedOver`).
/// Absent for a framework that has no Lease.
pub const CONDITION_CONNECTED: &str = "Connected";

impl FrameworkSpec {
    /// The role, defaulted to `*`.
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or(crate::cluster::DEFAULT_ROLE)
    }

    /// The weight, defaulted to 1.
    pub fn weight(&self) -> f64 {
        self.weight.unwrap_or(1.0)
    }
}

/// What a framework holds and is offered, as the allocator last saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkStatus {
    /// The resources its placements hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated: Option<Resources>,
    /// Its largest share of any resource of the cluster (0 to 1), placements and offers counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominant_share: Option<f64>,
    /// How many of its offers are open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers_outstanding: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Offered`: True while it is offered resources; False with the reason it is not.
    /// `Connected` (only with a Lease): True while its scheduler renews it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_manifest_reads_with_defaults() {
        let spec: FrameworkSpec = serde_json::from_str(r#"{"scheduler": "external"}"#).unwrap();
        assert_eq!((spec.role(), spec.weight(), spec.mode), ("*", 1.0, Mode::SharedState));
        let spec: FrameworkSpec = serde_json::from_str(r#"{"role": "batch", "weight": 2, "mode": "Offers"}"#).unwrap();
        assert_eq!((spec.role(), spec.weight(), spec.mode), ("batch", 2.0, Mode::Offers));
    }
}
