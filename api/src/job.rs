//! `Job`: work for a framework, made of task groups.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::constraint::Strategy;
use crate::ports::PortRequest;
use crate::resources::Resources;
use crate::security::{HostMount, SecurityContext};

/// Work to run: one or more task groups, each with instances of one container.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Job",
    namespaced,
    status = "JobStatus",
    shortname = "bj",
    category = "berth",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Succeeded", type_ = "integer", json_path = ".status.tasks.succeeded"),
    printcolumn(name = "Running", type_ = "integer", json_path = ".status.tasks.running"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.tasks.failed"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// The `Framework` (in this namespace) that schedules this Job; unset
    /// means the built-in batch scheduler with shared-state claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The task groups to run.
    #[schemars(length(min = 1))]
    pub task_groups: Vec<TaskGroup>,
    /// Higher runs first when resources are scarce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// A `kubernetes.io/dockerconfigjson` Secret in this namespace with registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// How agents are chosen for this Job's tasks: `binpack` (default),
    /// `spread` or `random`. Per Job, because it is the work, not the
    /// framework, that knows whether it wants to be packed or spread.
    #[serde(default, skip_serializing_if = "is_default")]
    pub strategy: Strategy,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Identical task instances running one container image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskGroup {
    /// Unique within the Job; lowercase letters, digits and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 40))]
    pub name: String,
    /// How many instances to run (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub instances: Option<u32>,
    /// Marathon-style `[attribute, operator, value?]` constraints over the
    /// agents' attributes and `hostname`; operators `UNIQUE`, `CLUSTER`,
    /// `GROUP_BY`, `LIKE`, `UNLIKE`, `MAX_PER`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::constraint::constraints_schema")]
    pub constraints: Vec<Vec<String>>,
    /// All instances are placed at once or none is (a gang): no part of the
    /// group holds resources while the rest waits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gang: bool,
    /// The container each instance runs.
    #[serde(flatten)]
    pub container: Container,
}

/// The container a task runs: image, process and resources. A Job's task
/// group and each of its placements carry the same fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The OCI image, e.g. `localhost:5000/berth/demo:latest`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Replaces the image's default arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables added to the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// The working directory; the image's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// What each instance needs; the limits the container runs under.
    #[serde(default)]
    pub resources: Resources,
    /// Seconds between SIGTERM and SIGKILL when the container is stopped
    /// (killed, deleted, drained or past its timeout); the agent's
    /// `--kill-grace-seconds` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
    /// The longest the container may run: past it, it is stopped (with its
    /// grace period) and ends `Failed` with reason `DeadlineExceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
    /// The user the process runs as and whether its root filesystem is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Host directories bind-mounted into the container (`nosuid`, `nodev`);
    /// only under the agent's `--allowed-host-paths`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<HostMount>,
    /// Host ports it needs, one per entry, picked by the scheduler from the
    /// agent's port ranges and passed as `PORT0`, `PORT1`, … (and
    /// `PORT_<NAME>` for named ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ports: Vec<PortRequest>,
}

/// One environment variable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

impl TaskGroup {
    pub fn instances(&self) -> u32 {
        self.instances.unwrap_or(1)
    }
}

/// Progress of a Job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// `Pending`, `Running`, `Complete` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Task instances by state.
    #[serde(default)]
    pub tasks: TaskCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Scheduled`, `Complete`, `Failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Task instances counted by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCounts {
    #[serde(default)]
    pub pending: u32,
    #[serde(default)]
    pub running: u32,
    #[serde(default)]
    pub succeeded: u32,
    #[serde(default)]
    pub failed: u32,
}
