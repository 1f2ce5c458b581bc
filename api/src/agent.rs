//! `Agent`: one machine, registered by its node agent. Its status carries
//! the claim ledger that schedulers update with compare-and-swap.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::ports::{self, PortRange};
use crate::resources::{ResourceError, ResourceVec, Resources};

/// A machine that runs placements.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Agent",
    status = "AgentStatus",
    shortname = "ag",
    category = "berth",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "CPU", type_ = "string", json_path = ".status.allocatable.cpu"),
    printcolumn(name = "Memory", type_ = "string", json_path = ".status.allocatable.memory"),
    printcolumn(name = "CPU Used", type_ = "string", json_path = ".status.allocated.cpu"),
    printcolumn(name = "Memory Used", type_ = "string", json_path = ".status.allocated.memory"),
    printcolumn(name = "Ports", type_ = "string", json_path = ".status.ports", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Attributes that constraints match (`rack: r1`); `hostname` is implied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// True when no new placements may go to this agent (drain, cordon).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
}

/// What the agent has, what is claimed on it, and whether it is alive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The machine's total resources.
    #[serde(default)]
    pub capacity: Resources,
    /// What placements may use: capacity less what is reserved for the system.
    #[serde(default)]
    pub allocatable: Resources,
    /// The sum of the claims in the ledger.
    #[serde(default)]
    pub allocated: Resources,
    /// The host ports placements may be given (the agent's `--ports`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    /// The claim ledger: every placement and offer hold on this agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// The machine's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Where the agent serves placement logs, e.g. `http://10.0.0.5:10250`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The container runtime, e.g. `containerd 1.6.20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// When the agent last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<String>,
    /// `Ready` while the agent is alive and reporting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One entry of the ledger: resources held on this agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// What holds the resources.
    pub kind: ClaimKind,
    /// `namespace/name` of the placement or offer.
    pub owner: String,
    /// The UID of the placement or offer (names may be reused; UIDs are not).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The resources held.
    pub resources: Resources,
    /// The host ports held: a placement's, in the order of its requests; an
    /// offer hold's, every port it offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// When the claim was made; a claim whose placement never appears is
    /// released after a grace period measured from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// What a claim is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClaimKind {
    /// A placement runs (or will run) here.
    Placement,
    /// An offer holds these resources for one framework.
    Hold,
}

impl AgentStatus {
    /// The sum of all claims.
    pub fn claimed(&self) -> Result<ResourceVec, ResourceError> {
        let mut total = ResourceVec::ZERO;
        for c in &self.claims {
            total += c.resources.to_vec()?;
        }
        Ok(total)
    }

    /// What is left for new claims: allocatable less claimed.
    pub fn free(&self) -> Result<ResourceVec, ResourceError> {
        Ok(self.allocatable.to_vec()?.saturating_sub(&self.claimed()?))
    }

    /// The agent's ports that no claim holds.
    pub fn free_ports(&self) -> Vec<PortRange> {
        ports::minus(&self.ports, self.claims.iter().flat_map(|c| c.ports.iter().copied()))
    }

    /// True when the agent's `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        crate::condition::find(&self.conditions, "Ready").is_some_and(Condition::is_true)
    }
}
