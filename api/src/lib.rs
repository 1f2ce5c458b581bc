//! `berth-api`: the resource types of group `berth.dev/v1alpha1`, their
//! defaults, and the resource arithmetic every other crate shares.
//!
//! The types derive `kube::CustomResource`, so the CRDs in `manifests/crds/`
//! are generated from this crate (`berth crds`) and never edited by hand.
//!
//! Layout:
//! - `quantity`: Kubernetes quantity strings (`500m`, `256Mi`) parsed and formatted.
//! - `resources`: `Resources` (what a manifest says) and `ResourceVec` (what code adds up).
//! - `condition`: the standard condition shape and helpers to set one.
//! - `ports`: host port ranges, requests, their arithmetic and the `PORT0…` environment.
//! - `constraint`: Marathon-style placement constraints, `Strategy`, parsing and checks.
//! - `security`: a container's `securityContext` and host `mounts`.
//! - `health`: health checks the agent runs, and what it reports of them.
//! - `retry`: how failed instances are retried, and the backoff between attempts.
//! - `rollout`: a service's update strategy, template hashes and revisions.
//! - `patch`: merge patches that send `null` for what a new value dropped.
//! - `validate`: what a Job's spec must satisfy beyond its schema (the DAG, names), by field path.
//! - `cluster`, `agent`, `framework`, `job`, `offer`, `placement`: one kind each.
//! - `crds`: every CRD, as objects and as YAML.
//! - `invariants`: DESIGN.md's invariants as checks tests call.

pub mod agent;
pub mod cluster;
pub mod condition;
pub mod constraint;
pub mod crds;
pub mod framework;
pub mod health;
pub mod invariants;
pub mod job;
pub mod offer;
pub mod patch;
pub mod placement;
pub mod ports;
pub mod quantity;
pub mod resources;
pub mod retry;
pub mod rollout;
pub mod security;
pub mod validate;

pub use agent::{Agent, AgentSpec, AgentStatus, Claim, ClaimKind};
pub use cluster::{Cluster, ClusterSpec, ClusterStatus};
pub use condition::Condition;
pub use framework::{Framework, FrameworkSpec, FrameworkStatus};
pub use job::{Container, GroupStatus, InstanceStatus, Job, JobSpec, JobStatus, TaskGroup};
pub use offer::{Offer, OfferSpec, OfferState, OfferStatus};
pub use placement::{KillRequest, Phase, Placement, PlacementSpec, PlacementStatus};
pub use quantity::Quantity;
pub use resources::{ResourceVec, Resources};
pub use security::{HostMount, SecurityContext};

/// The API group of every Berth kind.
pub const GROUP: &str = "berth.dev";
/// The served version of every Berth kind.
pub const VERSION: &str = "v1alpha1";

/// Label set on every placement: the name of the Job it runs a task of.
pub const LABEL_JOB: &str = "berth.dev/job";
/// Label set on every placement: its task group.
pub const LABEL_TASK_GROUP: &str = "berth.dev/task-group";
/// Label on a placement accepting an offer: the framework the offer was made
/// to (the API server refuses an accept without it or naming another).
pub const LABEL_FRAMEWORK: &str = "berth.dev/framework";

/// The current time as a Kubernetes timestamp (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp in the form Kubernetes writes (`2026-01-02T03:04:05Z`).
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
