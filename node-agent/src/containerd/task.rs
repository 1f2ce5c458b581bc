//! A container's life in containerd: the container record (runtime spec,
//! labels, snapshot key), its read-write snapshot on the image's top layer,
//! and its task (the runc process) — created, started, signalled, deleted
//! and listed. Each step tolerates having been done already, so a retry
//! after a crash converges.

use std::collections::HashMap;

use containerd_client::services::v1::container::Runtime as ContainerRuntime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest,
    GetContainerRequest, GetRequest, KillRequest, ListContainersRequest, ListTasksRequest, StartRequest,
};
use containerd_client::types::Mount;
use containerd_client::types::v1::Status;

use super::connect::{grpc, ignore_not_found, is_not_found};
use super::image::local_image;
use super::logs::log_uri;
use super::spec::runtime_spec;
use super::{Containerd, RUNTIME};
use crate::runtime::{ContainerInfo, ContainerSpec, RuntimeError};

/// The type containerd (and its shim) expects of a container's spec.
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Creates the container from its pulled image and starts its process.
pub(super) async fn start(c: &Containerd, spec: &ContainerSpec) -> Result<(), RuntimeError> {
    let reference: oci_client::Reference =
        spec.image.parse().map_err(|e| RuntimeError::Other(format!("{}: not an image reference: {e}", spec.image)))?;
    let image = reference.whole();
    let config =
        local_image(c, &image).await?.ok_or_else(|| RuntimeError::Other(format!("image {image} is not pulled")))?;
    let top = config.top_chain_id().ok_or_else(|| RuntimeError::Other(format!("image {image} has no layers")))?;
    let oci = runtime_spec(spec, &config)?;
    let log = log_uri(&spec.log_path)?;

    // The container record comes first: it references the snapshot, so
    // containerd's garbage collector keeps the snapshot once it exists.
    let container = Container {
        id: spec.id.clone(),
        labels: spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        image,
        runtime: Some(ContainerRuntime { name: RUNTIME.into(), options: None }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: serde_json::to_vec(&oci).map_err(|e| RuntimeError::Other(format!("runtime spec: {e}")))?,
        }),
        snapshotter: c.snapshotter.clone(),
        snapshot_key: spec.id.clone(),
        ..Default::default()
    };
    let created = ContainersClient::new(c.channel.clone())
        .create(c.request(CreateContainerRequest { container: Some(container) }))
        .await;
    match created {
        Ok(_) => {}
        Err(s) if s.code() == tonic::Code::AlreadyExists => {}
        Err(s) => return Err(grpc(format!("creating container {}", spec.id))(s)),
    }
    let rootfs = prepare_rootfs(c, &spec.id, &top).await?;

    let mut tasks = TasksClient::new(c.channel.clone());
    let create = CreateTaskRequest {
        container_id: spec.id.clone(),
        rootfs,
        stdout: log.clone(),
        stderr: log,
        ..Default::default()
    };
    tasks.create(c.request(create)).await.map_err(grpc(format!("creating the task of {}", spec.id)))?;
    tasks
        .start(c.request(StartRequest { container_id: spec.id.clone(), exec_id: String::new() }))
        .await
        .map_err(grpc(format!("starting the task of {}", spec.id)))?;
    tracing::debug!(container = %spec.id, "started");
    Ok(())
}

/// The container's read-write snapshot on `parent`, prepared if missing.
async fn prepare_rootfs(c: &Containerd, id: &str, parent: &str) -> Result<Vec<Mount>, RuntimeError> {
    let mut snapshots = SnapshotsClient::new(c.channel.clone());
    let prepare = PrepareSnapshotRequest {
        snapshotter: c.snapshotter.clone(),
        key: id.to_string(),
        parent: parent.to_string(),
        labels: HashMap::new(),
    };
    match snapshots.prepare(c.request(prepare)).await {
        Ok(r) => Ok(r.into_inner().mounts),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            let req = MountsRequest { snapshotter: c.snapshotter.clone(), key: id.to_string() };
            let mounts = snapshots.mounts(c.request(req)).await.map_err(grpc(format!("reading the mounts of {id}")))?;
            Ok(mounts.into_inner().mounts)
        }
        Err(s) => Err(grpc(format!("preparing the snapshot of {id}"))(s)),
    }
}

/// Sends `signal` to every process of the container; a container without
/// a running process has nothing to signal, and that is success.
pub(super) async fn kill(c: &Containerd, id: &str, signal: i32) -> Result<(), RuntimeError> {
    let signal = u32::try_from(signal).map_err(|_| RuntimeError::Other(format!("signal {signal} is not valid")))?;
    let req = KillRequest { container_id: id.to_string(), exec_id: String::new(), signal, all: true };
    match TasksClient::new(c.channel.clone()).kill(c.request(req)).await {
        Ok(_) => Ok(()),
        Err(s) if is_not_found(&s) || s.code() == tonic::Code::FailedPrecondition => Ok(()),
        Err(s) => Err(grpc(format!("killing {id}"))(s)),
    }
}

/// Deletes the task (killing it first if it still runs), the container
/// record and its snapshot. Whatever is already gone is skipped.
pub(super) async fn remove(c: &Containerd, id: &str) -> Result<(), RuntimeError> {
    let mut tasks = TasksClient::new(c.channel.clone());
    let delete = || c.request(DeleteTaskRequest { container_id: id.to_string() });
    match tasks.delete(delete()).await {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            // Still running: stop it, wait for the exit, then delete.
            kill(c, id, libc::SIGKILL).await?;
            super::exit::wait(c, id).await?;
            ignore_not_found(tasks.delete(delete()).await, format!("deleting the task of {id}"))?;
        }
        Err(s) => return Err(grpc(format!("deleting the task of {id}"))(s)),
    }
    let deleted =
        ContainersClient::new(c.channel.clone()).delete(c.request(DeleteContainerRequest { id: id.to_string() })).await;
    ignore_not_found(deleted, format!("deleting container {id}"))?;
    let req = RemoveSnapshotRequest { snapshotter: c.snapshotter.clone(), key: id.to_string() };
    let removed = SnapshotsClient::new(c.channel.clone()).remove(c.request(req)).await;
    ignore_not_found(removed, format!("removing the snapshot of {id}"))
}

/// Every container in the namespace, running or not.
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
    let running = |id: &str| tasks.iter().any(|t| t.id == id && t.status == Status::Running as i32);
    let mut out: Vec<ContainerInfo> = containers
        .into_iter()
        .map(|ct| ContainerInfo { running: running(&ct.id), labels: ct.labels.into_iter().collect(), id: ct.id })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Container `id` and whether its task runs, asked of containerd for that
/// container alone (one shim's state, however many others run).
pub(super) async fn get(c: &Containerd, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
    let found =
        ContainersClient::new(c.channel.clone()).get(c.request(GetContainerRequest { id: id.to_string() })).await;
    let container = match found {
        Ok(r) => r.into_inner().container,
        Err(s) if is_not_found(&s) => return Ok(None),
        Err(s) => return Err(grpc(format!("looking up container {id}"))(s)),
    };
    let Some(container) = container else { return Ok(None) };
    let task = TasksClient::new(c.channel.clone())
        .get(c.request(GetRequest { container_id: id.to_string(), exec_id: String::new() }))
        .await;
    let running = match task {
        Ok(r) => r.into_inner().process.is_some_and(|p| p.status == Status::Running as i32),
        Err(s) if is_not_found(&s) => false,
        Err(s) => return Err(grpc(format!("looking up the task of {id}"))(s)),
    };
    Ok(Some(ContainerInfo { id: container.id, running, labels: container.labels.into_iter().collect() }))
}
