//! Client-side pull into containerd: registry → content store → image
//! record → one committed snapshot per layer, named by its chain ID.
//! Everything written is held by a lease until the image record and the
//! garbage-collection labels reference it.

use std::collections::HashMap;
use std::sync::Once;

use bytes::Bytes;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, CreateRequest, DeleteRequest, Image, InfoRequest, UpdateImageRequest,
    WriteContentRequest,
};
use containerd_client::types::{Descriptor, Mount};
use futures::stream::{BoxStream, StreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use super::image::{Desc, ImageConfig, Manifest, chain_ids, image_config};
use super::{Containerd, SNAPSHOTTER, grpc, is_not_found};
use crate::runtime::{RegistryAuth, RuntimeError};

const LEASE_HEADER: &str = "containerd-lease";
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn pull_error(image: &str) -> impl Fn(String) -> RuntimeError + '_ {
    move |message| RuntimeError::ImagePull { image: image.to_string(), message }
}

/// Makes `image` present in the content store and unpacked.
pub(super) async fn ensure_image(c: &Containerd, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
    let err = pull_error(image);
    let reference: Reference = image.parse().map_err(|e| err(format!("not an image reference: {e}")))?;
    let name = reference.whole();
    if let Ok((_, config)) = image_config(c, &name).await
        && let Some(top) = config.top_chain_id()
        && snapshot_exists(c, &top).await?
    {
        return Ok(());
    }
    tracing::info!(image = %name, "pulling");
    let lease = format!("berth-pull-{}", uuid_like());
    let expire = berth_api::format_time(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1));
    LeasesClient::new(c.channel.clone())
        .create(c.request(CreateRequest {
            id: lease.clone(),
            labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
        }))
        .await
        .map_err(grpc("creating a lease"))?;
    let result = fetch_and_unpack(c, &reference, &name, auth, &lease).await;
    let _ = LeasesClient::new(c.channel.clone()).delete(c.request(DeleteRequest { id: lease, sync: false })).await;
    result
}

async fn fetch_and_unpack(
    c: &Containerd,
    reference: &Reference,
    name: &str,
    auth: Option<&RegistryAuth>,
    lease: &str,
) -> Result<(), RuntimeError> {
    let err = pull_error(name);
    static RUSTLS: Once = Once::new();
    RUSTLS.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let registry = reference.resolve_registry().to_string();
    let plain_http = ["localhost", "127.", "[::1]"].iter().any(|p| registry.starts_with(p));
    let protocol = if plain_http { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https };
    let client = Client::new(ClientConfig { protocol, ..Default::default() });
    let auth = match auth {
        Some(a) => oci_client::secrets::RegistryAuth::Basic(a.username.clone(), a.password.clone()),
        None => oci_client::secrets::RegistryAuth::Anonymous,
    };

    let (mut raw, mut digest) =
        client.pull_manifest_raw(reference, &auth, &MANIFEST_TYPES).await.map_err(|e| err(e.to_string()))?;
    let mut manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| err(format!("reading the manifest: {e}")))?;
    if !manifest.manifests.is_empty() {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let chosen = manifest
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
            .ok_or_else(|| err(format!("the image has no linux/{arch} variant")))?;
        let by_digest = reference.clone_with_digest(chosen.desc.digest.clone());
        (raw, digest) =
            client.pull_manifest_raw(&by_digest, &auth, &MANIFEST_TYPES).await.map_err(|e| err(e.to_string()))?;
        manifest = serde_json::from_slice(&raw).map_err(|e| err(format!("reading the manifest: {e}")))?;
    }
    let config_desc = manifest.config.clone().ok_or_else(|| err("the manifest names no config".into()))?;

    let mut config_bytes = Vec::new();
    client
        .pull_blob(reference, config_desc.digest.as_str(), &mut config_bytes)
        .await
        .map_err(|e| err(e.to_string()))?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| err(format!("reading the image config: {e}")))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(err("the image config and manifest disagree on the number of layers".into()));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);

    for layer in &manifest.layers {
        if !content_exists(c, &layer.digest).await? {
            let blob =
                client.pull_blob_stream(reference, layer.digest.as_str()).await.map_err(|e| err(e.to_string()))?;
            write_content(c, lease, layer, blob.stream, HashMap::new()).await?;
        }
    }
    let mut config_labels = HashMap::new();
    if let Some(top) = chains.last() {
        config_labels.insert(format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"), top.clone());
    }
    let one = futures::stream::once(async move { Ok(Bytes::from(config_bytes)) }).boxed();
    write_content(c, lease, &config_desc, one, config_labels).await?;

    let mut manifest_labels =
        HashMap::from([("containerd.io/gc.ref.content.config".to_string(), config_desc.digest.clone())]);
    for (i, l) in manifest.layers.iter().enumerate() {
        manifest_labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
    }
    let media_type = manifest.media_type.clone().unwrap_or_else(|| MANIFEST_TYPES[0].to_string());
    let manifest_desc = Desc { media_type, digest: digest.clone(), size: raw.len() as i64 };
    let one = futures::stream::once(async move { Ok(raw) }).boxed();
    write_content(c, lease, &manifest_desc, one, manifest_labels).await?;

    unpack(c, lease, &manifest.layers, &chains).await?;
    put_image(c, name, &manifest_desc).await
}

/// Applies each layer onto its parent and commits it under its chain ID.
async fn unpack(c: &Containerd, lease: &str, layers: &[Desc], chains: &[String]) -> Result<(), RuntimeError> {
    let mut snapshots = SnapshotsClient::new(c.channel.clone());
    let mut parent = String::new();
    for (layer, chain) in layers.iter().zip(chains) {
        if !snapshot_exists(c, chain).await? {
            let key = format!("extract-{}-{chain}", uuid_like());
            let mounts = snapshots
                .prepare(with_lease(
                    c.request(PrepareSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: key.clone(),
                        parent: parent.clone(),
                        labels: HashMap::new(),
                    }),
                    lease,
                ))
                .await
                .map_err(grpc("preparing a snapshot"))?
                .into_inner()
                .mounts;
            let applied = apply_layer(c, layer, mounts).await;
            let committed = match applied {
                Ok(()) => snapshots
                    .commit(with_lease(
                        c.request(CommitSnapshotRequest {
                            snapshotter: SNAPSHOTTER.into(),
                            name: chain.clone(),
                            key: key.clone(),
                            labels: HashMap::new(),
                        }),
                        lease,
                    ))
                    .await
                    .map(|_| ())
                    .or_else(|s| if s.code() == tonic::Code::AlreadyExists { Ok(()) } else { Err(s) })
                    .map_err(grpc("committing a snapshot")),
                Err(e) => Err(e),
            };
            if committed.is_err() {
                let _ =
                    snapshots.remove(c.request(RemoveSnapshotRequest { snapshotter: SNAPSHOTTER.into(), key })).await;
            }
            committed?;
        }
        parent = chain.clone();
    }
    Ok(())
}

async fn apply_layer(c: &Containerd, layer: &Desc, mounts: Vec<Mount>) -> Result<(), RuntimeError> {
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

/// Creates the image record, or points an existing one at `target`.
async fn put_image(c: &Containerd, name: &str, target: &Desc) -> Result<(), RuntimeError> {
    let image = Image {
        name: name.to_string(),
        target: Some(Descriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
            size: target.size,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut images = ImagesClient::new(c.channel.clone());
    match images.create(c.request(CreateImageRequest { image: Some(image.clone()), ..Default::default() })).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            images
                .update(c.request(UpdateImageRequest { image: Some(image), ..Default::default() }))
                .await
                .map_err(grpc("updating the image record"))?;
            Ok(())
        }
        Err(s) => Err(grpc("creating the image record")(s)),
    }
}

/// Streams `data` into the content store as `desc`, verified by its digest.
async fn write_content(
    c: &Containerd,
    lease: &str,
    desc: &Desc,
    mut data: BoxStream<'static, Result<Bytes, std::io::Error>>,
    labels: HashMap<String, String>,
) -> Result<(), RuntimeError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    let reference = format!("berth-{}", desc.digest);
    let (digest, total) = (desc.digest.clone(), desc.size);
    let producer = tokio::spawn(async move {
        let mut offset = 0i64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| format!("downloading {digest}: {e}"))?;
            let len = chunk.len() as i64;
            let msg = WriteContentRequest {
                action: 1, // write
                r#ref: reference.clone(),
                total,
                expected: digest.clone(),
                offset,
                data: chunk.to_vec(),
                labels: HashMap::new(),
            };
            offset += len;
            if tx.send(msg).await.is_err() {
                return Err("containerd closed the write".to_string());
            }
        }
        let commit = WriteContentRequest {
            action: 2, // commit
            r#ref: reference,
            total,
            expected: digest,
            offset,
            data: Vec::new(),
            labels,
        };
        tx.send(commit).await.map_err(|_| "containerd closed the write".to_string())
    });
    let outcome = ContentClient::new(c.channel.clone())
        .write(with_lease(c.request(tokio_stream::wrappers::ReceiverStream::new(rx)), lease))
        .await;
    let drained = match outcome {
        Ok(resp) => {
            let mut responses = resp.into_inner();
            loop {
                match responses.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break Ok(()),
                    Err(s) if s.code() == tonic::Code::AlreadyExists => break Ok(()),
                    Err(s) => break Err(s),
                }
            }
        }
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(s) => Err(s),
    };
    let produced = producer.await.map_err(|e| RuntimeError::Other(e.to_string()))?;
    produced.map_err(RuntimeError::Other)?;
    drained.map_err(grpc(format!("writing {} to the content store", desc.digest)))
}

async fn content_exists(c: &Containerd, digest: &str) -> Result<bool, RuntimeError> {
    match ContentClient::new(c.channel.clone()).info(c.request(InfoRequest { digest: digest.to_string() })).await {
        Ok(_) => Ok(true),
        Err(s) if is_not_found(&s) => Ok(false),
        Err(s) => Err(grpc(format!("looking up {digest}"))(s)),
    }
}

pub(super) async fn snapshot_exists(c: &Containerd, key: &str) -> Result<bool, RuntimeError> {
    let req = StatSnapshotRequest { snapshotter: SNAPSHOTTER.into(), key: key.to_string() };
    match SnapshotsClient::new(c.channel.clone()).stat(c.request(req)).await {
        Ok(_) => Ok(true),
        Err(s) if is_not_found(&s) => Ok(false),
        Err(s) => Err(grpc(format!("looking up snapshot {key}"))(s)),
    }
}

fn with_lease<T>(mut req: tonic::Request<T>, lease: &str) -> tonic::Request<T> {
    if let Ok(v) = lease.parse() {
        req.metadata_mut().insert(LEASE_HEADER, v);
    }
    req
}

/// A short random hex string for temporary keys.
fn uuid_like() -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}{:?}", std::time::SystemTime::now(), std::thread::current().id()));
    hex::encode(&h.finalize()[..8])
}
