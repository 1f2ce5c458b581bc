//! What one allocation round sees and what it decides, as plain values.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::cluster::{AllocationPolicy, ClusterSpec};
use berth_api::framework::Mode;
use berth_api::resources::ResourceError;
use berth_api::{ResourceVec, Resources};
use jiff::{SignedDuration, Timestamp};

/// One agent of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentInput {
    pub name: String,
    pub allocatable: ResourceVec,
    /// The sum of every claim in its ledger: placements and offer holds.
    pub claimed: ResourceVec,
    /// The offers whose hold claims are in its ledger (so part of `claimed`).
    pub holds: Vec<String>,
    /// False when it takes no new offers (not ready, unschedulable, outside the cluster).
    pub schedulable: bool,
}

/// What a framework waits for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// Everything it waits for, e.g. the summed resources of its pending tasks.
    pub total: ResourceVec,
    /// Its smallest pending task: offers are made in multiples of this, and
    /// an agent that cannot fit it is not offered.
    pub task: ResourceVec,
}

/// One framework taking part in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameworkInput {
    /// `namespace/name`.
    pub id: String,
    pub role: String,
    /// Its weight within its role; above zero.
    pub weight: f64,
    /// Its priority under `StrictPriority`; higher goes first.
    pub priority: i32,
    /// Only `Offers` frameworks are offered anything.
    pub mode: Mode,
    /// What its placements hold now (offers not counted).
    pub allocated: ResourceVec,
    /// What it waits for; `None` when it has nothing pending (suppressed).
    pub demand: Option<Demand>,
    /// The agents (by name) where at least one of its pending tasks could
    /// go under their constraints; it is offered no other. `None`: all.
    pub usable: Option<BTreeSet<String>>,
    /// Why its scheduler counts as disconnected (its Lease expired): it is
    /// offered nothing and its open offers are rescinded. `None`: connected.
    pub disconnected: Option<String>,
}

/// A role's weight and quota.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleQuota {
    pub weight: f64,
    /// Offered before fair sharing, while the role has demand.
    pub guarantee: ResourceVec,
    /// Never exceeded by the role's placements and offers together.
    pub limit: Option<ResourceVec>,
}

impl Default for RoleQuota {
    fn default() -> Self {
        RoleQuota { weight: 1.0, guarantee: ResourceVec::ZERO, limit: None }
    }
}

/// The cluster's allocation policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub kind: AllocationPolicy,
    /// Roles by name; a role not listed has weight 1 and no quota.
    pub roles: BTreeMap<String, RoleQuota>,
    pub offer_timeout: SignedDuration,
}

impl Default for Policy {
    fn default() -> Self {
        let secs = berth_api::cluster::DEFAULT_OFFER_TIMEOUT_SECONDS;
        Policy {
            kind: AllocationPolicy::Drf,
            roles: BTreeMap::new(),
            offer_timeout: SignedDuration::from_secs(secs.into()),
        }
    }
}

/// A `Cluster`'s policy that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spec.roles[{index}].{field}: {message}")]
pub struct PolicyError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

impl Policy {
    /// The policy a `Cluster` spec describes.
    pub fn from_spec(spec: &ClusterSpec) -> Result<Policy, PolicyError> {
        let mut roles = BTreeMap::new();
        for (index, r) in spec.roles.iter().enumerate() {
            let err = |field: &str, message: String| PolicyError { index, field: field.to_string(), message };
            let weight = r.weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight > 0.0) {
                return Err(err("weight", format!("{weight} is not above zero")));
            }
            let vec = |field: &str, res: &Option<Resources>| -> Result<Option<ResourceVec>, PolicyError> {
                res.as_ref()
                    .map(Resources::to_vec)
                    .transpose()
                    .map_err(|e: ResourceError| err(&format!("{field}.{}", e.field), e.error.to_string()))
            };
            let guarantee = vec("guarantee", &r.guarantee)?.unwrap_or_default();
            let limit = vec("limit", &r.limit)?;
            if roles.insert(r.name.clone(), RoleQuota { weight, guarantee, limit }).is_some() {
                return Err(err("name", format!("{:?} is listed twice", r.name)));
            }
        }
        let offer_timeout = SignedDuration::from_secs(spec.offer_timeout_seconds().into());
        Ok(Policy { kind: spec.allocation.policy, roles, offer_timeout })
    }

    /// A role's quota; a role not listed has the default.
    pub fn role(&self, name: &str) -> RoleQuota {
        self.roles.get(name).cloned().unwrap_or_default()
    }
}

/// A decline: `framework` is not offered `agent` before `until`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclineFilter {
    pub framework: String,
    pub agent: String,
    pub until: Timestamp,
}

/// An offer made in an earlier round and not yet answered.
#[derive(Clone, Debug, PartialEq)]
pub struct OutstandingOffer {
    /// `namespace/name` of the Offer object.
    pub id: String,
    pub framework: String,
    pub agent: String,
    pub resources: ResourceVec,
    pub expires_at: Timestamp,
}

/// Everything one round sees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    pub agents: Vec<AgentInput>,
    pub frameworks: Vec<FrameworkInput>,
    pub policy: Policy,
    pub filters: Vec<DeclineFilter>,
    pub offers: Vec<OutstandingOffer>,
}

/// An offer to make.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOffer {
    pub framework: String,
    pub agent: String,
    pub resources: ResourceVec,
    pub expires_at: Timestamp,
}

/// Why an outstanding offer is withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RescindReason {
    /// Not answered before `expiresAt`.
    Expired,
    /// Its agent is gone or takes no new work.
    AgentGone,
    /// Its framework is gone or no longer takes offers.
    FrameworkGone,
    /// Its framework's scheduler stopped renewing its Lease.
    FrameworkDisconnected,
}

impl RescindReason {
    /// The reason written to the Offer's status.
    pub fn as_str(self) -> &'static str {
        match self {
            RescindReason::Expired => "Expired",
            RescindReason::AgentGone => "AgentGone",
            RescindReason::FrameworkGone => "FrameworkGone",
            RescindReason::FrameworkDisconnected => "FrameworkDisconnected",
        }
    }
}

/// Why a framework got no new offer this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleReason {
    /// Nothing pending: offers are suppressed.
    Suppressed,
    /// Its open offers already cover its demand.
    OffersOutstanding,
    /// Its role's limit leaves no room for its smallest task.
    QuotaLimit,
    /// Every agent with room is filtered by its own declines.
    Declined,
    /// An agent is reserved for it until enough is released there.
    Reserved,
    /// What is free is kept for roles below their guarantee.
    GuaranteeHeadroom,
    /// No agent has room for its smallest task.
    NoCapacity,
    /// Its pending tasks' constraints rule out every agent with room.
    NoUsableAgent,
    /// Its scheduler stopped renewing its Lease.
    Disconnected,
}

impl IdleReason {
    /// The condition reason, a CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            IdleReason::Suppressed => "Suppressed",
            IdleReason::OffersOutstanding => "OffersOutstanding",
            IdleReason::QuotaLimit => "QuotaLimit",
            IdleReason::Declined => "Declined",
            IdleReason::Reserved => "Reserved",
            IdleReason::GuaranteeHeadroom => "GuaranteeHeadroom",
            IdleReason::NoCapacity => "NoCapacity",
            IdleReason::NoUsableAgent => "NoUsableAgent",
            IdleReason::Disconnected => "Disconnected",
        }
    }
}

/// A framework's reason and a sentence for its `Offered` condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Idle {
    pub reason: IdleReason,
    pub message: String,
}

/// What one round decides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundPlan {
    pub offers: Vec<NewOffer>,
    /// Offer ids to withdraw, with why.
    pub rescinds: Vec<(String, RescindReason)>,
    /// Frameworks (`Offers` mode) that got no new offer, with why.
    pub idle: BTreeMap<String, Idle>,
    /// An agent kept for a framework whose task fits nowhere now: `(framework, agent)`.
    pub reservation: Option<(String, String)>,
    /// Each framework's dominant share after the round (placements and open offers).
    pub shares: BTreeMap<String, f64>,
}
