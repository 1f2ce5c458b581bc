//! `Offer`: resources of one agent held for one framework.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// Resources of one agent held for one framework until answered or expired.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Offer",
    namespaced,
    status = "OfferStatus",
    category = "berth",
    printcolumn(name = "Framework", type_ = "string", json_path = ".spec.framework"),
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agent"),
    printcolumn(name = "CPU", type_ = "string", json_path = ".spec.resources.cpu"),
    printcolumn(name = "Memory", type_ = "string", json_path = ".spec.resources.memory"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.expiresAt"),
    selectable = ".spec.agent",
    selectable = ".spec.framework"
)]
#[serde(rename_all = "camelCase")]
pub struct OfferSpec {
    pub framework: String,
    pub agent: String,
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Set by the framework to decline: how long not to offer this agent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OfferStatus {
    /// `Outstanding`, `Accepted`, `Declined`, `Rescinded` or `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
