//! Containers and their tasks: create from a snapshot and a runtime spec,
//! start, wait (with OOM detection from the container's memory cgroup),
//! kill, remove, list.

use std::collections::HashMap;

use containerd_client::services::v1::container::Runtime as ContainerRuntime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest, KillRequest,
    ListContainersRequest, ListTasksRequest, StartRequest, WaitRequest,
};

use super::image::image_config;
use super::spec::runtime_spec;
use super::{Containerd, RUNTIME, SNAPSHOTTER, grpc, is_not_found};
use crate::runtime::{ContainerInfo, ContainerSpec, ExitStatus, RuntimeError};

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The container's cgroup, relative to each controller's root.
fn cgroup_path(id: &str) -> String {
    format!("/berth/{id}")
}

pub(super) async fn start(c: &Containerd, spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let reference: oci_client::Reference =
        spec.image.parse().map_err(|e| RuntimeError::Other(format!("{}: not an image reference: {e}", spec.image)))?;
    let image = reference.whole();
    let (_, config) = image_config(c, &image).await?;
    let top = config.top_chain_id().ok_or_else(|| RuntimeError::Other(format!("image {image} has no layers")))?;

    // The container record comes first: it references the snapshot, so
    // containerd's garbage collector keeps the snapshot once it exists.
    let oci = runtime_spec(spec, &config, &cgroup_path(&spec.id));
    let container = Container {
        id: spec.id.clone(),
        labels: spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        image,
        runtime: Some(ContainerRuntime { name: RUNTIME.into(), options: None }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: serde_json::to_vec(&oci).map_err(|e| RuntimeError::Other(e.to_string()))?,
        }),
        snapshotter: SNAPSHOTTER.into(),
        snapshot_key: spec.id.clone(),
        ..Default::default()
    };
    match ContainersClient::new(c.channel.clone())
        .create(c.request(CreateContainerRequest { container: Some(container) }))
        .await
    {
        Ok(_) => {}
        Err(s) if s.code() == tonic::Code::AlreadyExists => {}
        Err(s) => return Err(grpc("creating the container")(s)),
    }

    let mut snapshots = SnapshotsClient::new(c.channel.clone());
    let prepared = snapshots
        .prepare(c.request(PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: spec.id.clone(),
            parent: top,
            labels: HashMap::new(),
        }))
        .await;
    let mounts = match prepared {
        Ok(r) => r.into_inner().mounts,
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            let req = MountsRequest { snapshotter: SNAPSHOTTER.into(), key: spec.id.clone() };
            snapshots.mounts(c.request(req)).await.map_err(grpc("reading the container's mounts"))?.into_inner().mounts
        }
        Err(s) => return Err(grpc("preparing the container's snapshot")(s)),
    };

    let log = format!("file://{}", spec.log_path.display());
    let mut tasks = TasksClient::new(c.channel.clone());
    tasks
        .create(c.request(CreateTaskRequest {
            container_id: spec.id.clone(),
            rootfs: mounts,
            stdout: log.clone(),
            stderr: log,
            ..Default::default()
        }))
        .await
        .map_err(grpc("creating the task"))?;
    tasks
        .start(c.request(StartRequest { container_id: spec.id.clone(), exec_id: String::new() }))
        .await
        .map_err(grpc("starting the task"))?;
    Ok(())
}

pub(super) async fn wait(c: &Containerd, id: &str) -> Result<ExitStatus, RuntimeError> {
    let resp = TasksClient::new(c.channel.clone())
        .wait(c.request(WaitRequest { container_id: id.to_string(), exec_id: String::new() }))
        .await
        .map_err(
            |s| if is_not_found(&s) { RuntimeError::NotFound(id.into()) } else { grpc("waiting for the task")(s) },
        )?
        .into_inner();
    let finished =
        resp.exited_at.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()).unwrap_or_else(jiff::Timestamp::now);
    Ok(ExitStatus {
        code: resp.exit_status as i32,
        oom_killed: oom_killed(id),
        finished_at: berth_api::format_time(finished),
    })
}

/// True when the kernel's OOM killer acted in the container's memory cgroup
/// (cgroup v1 `memory.oom_control`, or v2 `memory.events`). Read before the
/// task is deleted, while the cgroup still exists.
fn oom_killed(id: &str) -> bool {
    let path = cgroup_path(id);
    let candidates = [
        (format!("/sys/fs/cgroup/memory{path}/memory.oom_control"), "oom_kill "),
        (format!("/sys/fs/cgroup{path}/memory.events"), "oom_kill "),
    ];
    candidates.iter().any(|(file, key)| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines().any(|l| l.strip_prefix(key).and_then(|n| n.trim().parse::<u64>().ok()).is_some_and(|n| n > 0))
        })
    })
}

pub(super) async fn kill(c: &Containerd, id: &str, signal: i32) -> Result<(), RuntimeError> {
    let req = KillRequest { container_id: id.to_string(), exec_id: String::new(), signal: signal as u32, all: true };
    match TasksClient::new(c.channel.clone()).kill(c.request(req)).await {
        Ok(_) => Ok(()),
        // Already gone, or already exited: the goal is reached.
        Err(s) if is_not_found(&s) || s.code() == tonic::Code::FailedPrecondition => Ok(()),
        Err(s) => Err(grpc(format!("killing {id}"))(s)),
    }
}

pub(super) async fn remove(c: &Containerd, id: &str) -> Result<(), RuntimeError> {
    let mut tasks = TasksClient::new(c.channel.clone());
    let delete = || c.request(DeleteTaskRequest { container_id: id.to_string() });
    match tasks.delete(delete()).await {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            // Still running: stop it first.
            kill(c, id, libc::SIGKILL).await?;
            let _ = wait(c, id).await;
            match tasks.delete(delete()).await {
                Ok(_) => {}
                Err(s) if is_not_found(&s) => {}
                Err(s) => return Err(grpc(format!("deleting the task of {id}"))(s)),
            }
        }
        Err(s) => return Err(grpc(format!("deleting the task of {id}"))(s)),
    }
    match ContainersClient::new(c.channel.clone())
        .delete(c.request(DeleteContainerRequest { id: id.to_string() }))
        .await
    {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) => return Err(grpc(format!("deleting container {id}"))(s)),
    }
    let req = RemoveSnapshotRequest { snapshotter: SNAPSHOTTER.into(), key: id.to_string() };
    match SnapshotsClient::new(c.channel.clone()).remove(c.request(req)).await {
        Ok(_) => Ok(()),
        Err(s) if is_not_found(&s) => Ok(()),
        Err(s) => Err(grpc(format!("removing the snapshot of {id}"))(s)),
    }
}

pub(super) async fn list(c: &Containerd) -> Result<Vec<ContainerInfo>, RuntimeError> {
    let containers = ContainersClient::new(c.channel.clone())
        .list(c.request(ListContainersRequest { filters: Vec::new() }))
        .await
        .map_err(grpc("listing containers"))?
        .into_inner()
        .containers;
    let tasks = TasksClient::new(c.channel.clone())
        .list(c.request(ListTasksRequest { filter: String::new() }))
        .await
        .map_err(grpc("listing tasks"))?
        .into_inner()
        .tasks;
    const RUNNING: i32 = containerd_client::types::v1::Status::Running as i32;
    Ok(containers
        .into_iter()
        .map(|ct| ContainerInfo {
            running: tasks.iter().any(|t| t.id == ct.id && t.status == RUNNING),
            labels: ct.labels.into_iter().collect(),
            id: ct.id,
        })
        .collect())
}
