//! `Placement`: one attempt of one task instance, bound to one agent — the
//! unit an agent runs, like a Pod. Its phase follows an explicit state
//! machine ([`Phase::can_become`]).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::Container;

/// One attempt of one task instance on one agent.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Placement",
    namespaced,
    status = "PlacementStatus",
    shortname = "pl",
    category = "berth",
    printcolumn(name = "Job", type_ = "string", json_path = ".spec.job"),
    printcolumn(name = "Task", type_ = "string", json_path = ".spec.taskGroup"),
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agent"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Exit", type_ = "integer", json_path = ".status.exitCode"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(name = "Healthy", type_ = "boolean", json_path = ".status.health.healthy", priority = 1),
    printcolumn(name = "Ports", type_ = "string", json_path = ".status.ports", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    selectable = ".spec.agent",
    selectable = ".spec.job"
)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// The agent that runs it.
    pub agent: String,
    /// The Job it runs a task of.
    pub job: String,
    /// The task group within the Job.
    pub task_group: String,
    /// Which instance of the group (0-based).
    #[serde(default)]
    pub instance: u32,
    /// Which attempt of that instance (0-based).
    #[serde(default)]
    pub attempt: u32,
    /// The offer this placement accepts, for `Offers` frameworks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// The container to run; its resources are claimed on the agent's ledger.
    #[serde(flatten)]
    pub container: Container,
    /// Secret with registry credentials, in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// Set to stop the placement: its agent sends SIGTERM, then SIGKILL
    /// after the grace period, and reports `Killed` with this reason. Set
    /// by drain (`Evicted`), by a framework, or by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillRequest>,
}

/// A request to stop a placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KillRequest {
    /// Why, as a CamelCase word; the placement's final `status.reason`
    /// (`Evicted` when its agent is drained).
    #[schemars(length(min = 1))]
    pub reason: String,
    /// A sentence for people; the placement's final `status.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The finalizer that keeps a placement until its agent has stopped and
/// removed its container, so its claim is not released while the container
/// still runs. The agent removes it once the placement is terminal and its
/// container gone; the node-lifecycle controller removes it from placements
/// it marks `Lost`.
pub const FINALIZER_AGENT: &str = "berth.dev/agent";

/// `status.reason` of a placement stopped because its agent was drained.
pub const REASON_EVICTED: &str = "Evicted";
/// `status.reason` of a placement marked `Lost` because its agent stopped
/// renewing its Lease.
pub const REASON_AGENT_LOST: &str = "AgentLost";
/// `status.reason` of a placement stopped because its Job was suspended.
pub const REASON_SUSPENDED: &str = "Suspended";
/// `status.reason` of a placement stopped (or a Job failed) because its
/// Job ran past `activeDeadlineSeconds`, or the task past `timeoutSeconds`.
pub const REASON_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// What the agent observed of a placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    #[serde(default)]
    pub phase: Phase,
    /// `OOMKilled`, `Error`, `ImagePullFailed`, `Completed`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The host ports it was given, in the order of `spec.ports` (the
    /// container's `PORT0`, `PORT1`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// The outcome of its health checks while it runs; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::HealthStatus>,
}

/// The life of a placement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Created by a scheduler; the agent has not begun.
    #[default]
    Pending,
    /// The agent is pulling the image and preparing the container.
    Staging,
    /// The container is created and being started.
    Starting,
    /// The container's process runs.
    Running,
    /// It exited 0.
    Succeeded,
    /// It exited non-zero, or could not be started.
    Failed,
    /// It was stopped on request.
    Killed,
    /// Its agent stopped reporting.
    Lost,
}

/// A phase change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a placement cannot go from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: Phase,
    pub to: Phase,
}

impl Phase {
    /// True once the placement can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Killed | Phase::Lost)
    }

    /// The allowed transitions, in one place. Staying put is allowed.
    pub fn can_become(self, to: Phase) -> bool {
        use Phase::*;
        if self == to {
            return true;
        }
        match self {
            Pending => matches!(to, Staging | Starting | Running | Failed | Killed | Lost),
            Staging => matches!(to, Starting | Running | Failed | Killed | Lost),
            Starting => matches!(to, Running | Succeeded | Failed | Killed | Lost),
            Running => matches!(to, Succeeded | Failed | Killed | Lost),
            Succeeded | Failed | Killed | Lost => false,
        }
    }

    /// `to`, if the state machine allows it.
    pub fn transition(self, to: Phase) -> Result<Phase, IllegalTransition> {
        if self.can_become(to) { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::{self, *};

    const ALL: [Phase; 8] = [Pending, Staging, Starting, Running, Succeeded, Failed, Killed, Lost];

    #[test]
    fn terminal_phases_never_change() {
        for from in ALL.into_iter().filter(|p| p.is_terminal()) {
            for to in ALL.into_iter().filter(|&t| t != from) {
                assert!(from.transition(to).is_err(), "{from:?} -> {to:?} allowed");
            }
        }
    }

    #[test]
    fn the_happy_path_is_allowed_and_never_goes_back() {
        let path = [Pending, Staging, Starting, Running, Succeeded];
        for w in path.windows(2) {
            assert_eq!(w[0].transition(w[1]), Ok(w[1]));
            assert!(w[1].transition(w[0]).is_err());
        }
    }
}
