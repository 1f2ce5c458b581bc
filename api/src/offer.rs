//! `Offer`: resources of one agent held for one framework.
//!
//! The protocol: the allocator places a hold claim on the agent's ledger and
//! creates the Offer (state `Outstanding`, `spec.expiresAt`). The framework
//! accepts by creating `Placement`s that name the offer, or declines by
//! setting `spec.decline` (optionally with `refuseSeconds`). The allocator
//! records the outcome in `status` — `Accepted`, `Declined` (with the
//! refuse time it honours), or `Rescinded` (expired, or the agent went
//! away) — and releases the hold.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ports::PortRange;
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
    /// The `Framework` (in the offer's namespace) it is made to.
    #[schemars(length(min = 1))]
    pub framework: String,
    /// The `Agent` whose resources it holds.
    #[schemars(length(min = 1))]
    pub agent: String,
    /// The resources held.
    pub resources: Resources,
    /// The host ports held: placements accepting the offer are given theirs
    /// from these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    /// When it is rescinded if not answered (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Set by the framework to decline: how long not to offer this agent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
}

/// A framework's refusal of an offer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decline {
    /// How long the agent is not offered to this framework again (default: the cluster's `refuseSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 31536000))]
    pub refuse_seconds: Option<u32>,
}

/// Where an offer stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OfferState {
    /// Made and not yet answered.
    #[default]
    Outstanding,
    /// The framework placed tasks on it.
    Accepted,
    /// The framework declined it.
    Declined,
    /// Withdrawn by the allocator: expired, or the agent or framework went away.
    Rescinded,
}

/// The outcome of an offer, written by the allocator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferStatus {
    /// `Outstanding`, `Accepted`, `Declined` or `Rescinded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<OfferState>,
    /// For `Declined`: the refuse time honoured, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<u32>,
    /// For `Rescinded`: `Expired`, `AgentGone` or `FrameworkGone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it was answered or rescinded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outstanding_offer_and_its_answers_read_as_written() {
        let st: OfferStatus = serde_json::from_str(r#"{"state": "Outstanding"}"#).unwrap();
        assert_eq!(st.state, Some(OfferState::Outstanding));
        let st: OfferStatus = serde_json::from_str(r#"{"state": "Declined", "refuseSeconds": 60}"#).unwrap();
        assert_eq!((st.state, st.refuse_seconds), (Some(OfferState::Declined), Some(60)));
        let spec: OfferSpec = serde_json::from_str(
            r#"{"framework": "f", "agent": "a", "resources": {"cpu": "1"}, "decline": {"refuseSeconds": 10}}"#,
        )
        .unwrap();
        assert_eq!(spec.decline.and_then(|d| d.refuse_seconds), Some(10));
    }
}
