//! Unpacking an image: each layer is applied (Diff.Apply, which also
//! decompresses) onto a snapshot prepared on its parent, then committed
//! under its chain ID. A layer whose chain ID is already committed — by an
//! earlier pull, or by another image sharing the base — is skipped.

use std::collections::HashMap;

use containerd_client::services::v1::ApplyRequest;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::types::{Descriptor, Mount};

use super::Containerd;
use super::connect::{grpc, is_not_found};
use super::content::{Lease, uuid_like};
use super::image::Desc;
use crate::runtime::RuntimeError;

/// Applies each layer onto its parent and commits it under its chain ID
/// (`layers` and `chains` bottom first, of equal length).
pub(super) async fn unpack(
    c: &Containerd,
    lease: &Lease,
    layers: &[Desc],
    chains: &[String],
) -> Result<(), RuntimeError> {
    let mut parent = String::new();
    for (layer, chain) in layers.iter().zip(chains) {
        if !snapshot_exists(c, chain).await? {
            unpack_layer(c, lease, layer, &parent, chain).await?;
        }
        parent = chain.clone();
    }
    Ok(())
}

async fn unpack_layer(
    c: &Containerd,
    lease: &Lease,
    layer: &Desc,
    parent: &str,
    chain: &str,
) -> Result<(), RuntimeError> {
    let mut snapshots = SnapshotsClient::new(c.channel.clone());
    let key = format!("extract-{}-{chain}", uuid_like());
    let prepare = PrepareSnapshotRequest {
        snapshotter: c.snapshotter.clone(),
        key: key.clone(),
        parent: parent.to_string(),
        labels: HashMap::new(),
    };
    let mounts = snapshots
        .prepare(c.leased(prepare, &lease.header))
        .await
        .map_err(grpc(format!("preparing a snapshot for layer {}", layer.digest)))?
        .into_inner()
        .mounts;
    let committed = match apply(c, layer, mounts).await {
        Ok(()) => {
            let commit = CommitSnapshotRequest {
                snapshotter: c.snapshotter.clone(),
                name: chain.to_string(),
                key: key.clone(),
                labels: HashMap::new(),
            };
            match snapshots.commit(c.leased(commit, &lease.header)).await {
                Ok(_) => Ok(()),
                // Another pull of an image sharing this layer committed it first.
                Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                Err(s) => Err(grpc(format!("committing layer {}", layer.digest))(s)),
            }
        }
        Err(e) => Err(e),
    };
    if committed.is_err() || snapshot_exists(c, &key).await.unwrap_or(false) {
        let req = RemoveSnapshotRequest { snapshotter: c.snapshotter.clone(), key };
        let _ = snapshots.remove(c.request(req)).await;
    }
    committed
}

/// Writes the layer's changes into the mounted snapshot.
async fn apply(c: &Containerd, layer: &Desc, mounts: Vec<Mount>) -> Result<(), RuntimeError> {
    let diff = Descriptor {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        ..Default::default()
    };
    DiffClient::new(c.channel.clone())
        .apply(c.request(ApplyRequest { diff: Some(diff), mounts, ..Default::default() }))
        .await
        .map_err(grpc(format!("unpacking layer {}", layer.digest)))?;
    Ok(())
}

/// True when a snapshot (committed or active) named `key` exists.
pub(super) async fn snapshot_exists(c: &Containerd, key: &str) -> Result<bool, RuntimeError> {
    let req = StatSnapshotRequest { snapshotter: c.snapshotter.clone(), key: key.to_string() };
    match SnapshotsClient::new(c.channel.clone()).stat(c.request(req)).await {
        Ok(_) => Ok(true),
        Err(s) if is_not_found(&s) => Ok(false),
        Err(s) => Err(grpc(format!("looking up snapshot {key}"))(s)),
    }
}
