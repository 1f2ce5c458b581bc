//! `Job`: work for a framework, made of task groups.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::constraint::Strategy;
use crate::health::HealthCheck;
use crate::placement::Phase;
use crate::ports::PortRequest;
use crate::resources::Resources;
use crate::retry::RetryPolicy;
use crate::rollout::{Revision, UpdateStrategy};
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
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.available", priority = 1),
    printcolumn(name = "Revision", type_ = "integer", json_path = ".status.revision", priority = 1),
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
    /// Batch: the longest the Job may run, from its start; past it, its
    /// running tasks are stopped and it fails with reason `DeadlineExceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<u64>,
    /// Batch: seconds after the Job completed or failed when it is deleted,
    /// with its placements. Unset: kept until deleted by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u64>,
    /// Batch: true stops the Job's running tasks (they are not failures)
    /// and starts no new ones; false resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Service: true holds a rolling update where it is (no instance of
    /// the new template is started, none of the old stopped); false resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
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
    /// Batch: the most instances of this group running at once (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub parallelism: Option<u32>,
    /// Batch: task groups (of this Job) whose every instance must succeed
    /// before this one starts; together they form a DAG. A cycle or an
    /// unknown name is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How failed instances are retried (batch) or restarted (service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    /// Service: how instances are replaced when the container changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<UpdateStrategy>,
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
    /// Checks the agent runs while the container runs; an instance failing
    /// one `maxConsecutiveFailures` times in a row is stopped and replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub health_checks: Vec<HealthCheck>,
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

    /// The most instances running at once: `parallelism`, or all of them.
    pub fn parallelism(&self) -> u32 {
        self.parallelism.unwrap_or(self.instances()).max(1)
    }

    /// How failed instances are retried (the default policy when unset).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retries.clone().unwrap_or_default()
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
    /// Batch: `Complete`, `Failed`, `Progressing`; services: `Available`,
    /// `Progressing`; both: `Scheduled`, and `Ready`, `Reconciling` and
    /// `Stalled` as Flux's kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Each task group, in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStatus>,
    /// Service: instances running, healthy and not being stopped, over all groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// Service: the revision now rolled out (or rolling out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// Service: the templates of the latest revisions, newest last (at most
    /// 10), for `berth rollout undo`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
}

/// Progress of one task group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    pub name: String,
    /// Batch: `Waiting` (for its dependencies), `Pending`, `Running`,
    /// `Complete`, `Failed`, `Skipped` (a dependency failed) or `Suspended`.
    /// Service: `Running`, `Updating`, `Paused` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why it is in that phase, for people (`waiting for extract`,
    /// `instance 2 backing off 20s after exit code 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its instances by state.
    #[serde(default)]
    pub tasks: TaskCounts,
    /// Service: instances running and healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<u32>,
    /// Service: instances of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<u32>,
    /// Service: instances ready and not being stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// Each instance (the first 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
}

/// The most instances listed in a group's status.
pub const MAX_LISTED_INSTANCES: usize = 100;

/// One task instance over its attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub instance: u32,
    /// The phase of its latest attempt; `Pending` while it has none.
    #[serde(default)]
    pub phase: Phase,
    /// Placements made for it so far.
    #[serde(default)]
    pub attempts: u32,
    /// Attempts that failed (what retries count; lost or evicted ones are not).
    #[serde(default)]
    pub failures: u32,
    /// The exit code of its latest attempt that exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// Its latest placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// When its next attempt may start, while it backs off after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_after: Option<String>,
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
