//! A client-side pull into containerd: registry → content store → unpacked
//! snapshots → image record. One pull per image at a time: whoever asks
//! while it runs waits for it and then finds the image present. An image
//! whose record and top snapshot exist is not fetched again (the
//! "if not present" policy; tags are not re-resolved).

use std::collections::HashMap;

use bytes::Bytes;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{CreateImageRequest, Image, UpdateImageRequest};
use containerd_client::types::Descriptor;
use futures::stream::StreamExt;
use oci_client::Reference;

use super::Containerd;
use super::connect::grpc;
use super::content::{self, Lease};
use super::image::{Desc, ImageConfig, chain_ids, local_image};
use super::registry::{MANIFEST_TYPES, Remote};
use super::unpack::{snapshot_exists, unpack};
use crate::runtime::{RegistryAuth, RuntimeError};

/// Makes `image` present and unpacked, pulling it if needed.
pub(super) async fn pull(c: &Containerd, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
    let pull_error = |message: String| RuntimeError::ImagePull { image: image.to_string(), message };
    let reference: Reference = image.parse().map_err(|e| pull_error(format!("not an image reference: {e}")))?;
    let name = reference.whole();
    let lock = c.pull_lock(&name);
    let _held = lock.lock().await;
    if is_present(c, &name).await {
        return Ok(());
    }
    tracing::info!(image = %name, "pulling");
    c.registry_pulls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let lease = Lease::begin(c).await?;
    let result = fetch_and_unpack(c, &Remote::new(reference, auth), &name, &lease).await;
    lease.end(c).await;
    match result {
        Ok(()) => {
            tracing::info!(image = %name, "pulled");
            Ok(())
        }
        Err(Failure::Registry(message)) => Err(pull_error(message)),
        Err(Failure::Runtime(e)) => Err(e),
    }
}

/// Why a pull failed: the registry's answer (an image pull error), or
/// containerd's (a runtime error).
enum Failure {
    Registry(String),
    Runtime(RuntimeError),
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Self {
        Failure::Runtime(e)
    }
}

/// True when the image record exists and its top layer is unpacked.
async fn is_present(c: &Containerd, name: &str) -> bool {
    match local_image(c, name).await {
        Ok(Some(config)) => match config.top_chain_id() {
            Some(top) => snapshot_exists(c, &top).await.unwrap_or(false),
            None => false,
        },
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(image = %name, error = %e, "the local copy is unreadable; pulling again");
            false
        }
    }
}

async fn fetch_and_unpack(c: &Containerd, remote: &Remote, name: &str, lease: &Lease) -> Result<(), Failure> {
    let fetched = remote.manifest().await.map_err(Failure::Registry)?;
    let manifest = fetched.manifest;
    let config_desc =
        manifest.config.clone().ok_or_else(|| Failure::Registry("the manifest names no config".into()))?;
    let config_bytes = remote.blob(&config_desc).await.map_err(Failure::Registry)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Failure::Registry(format!("reading the image config: {e}")))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Failure::Registry("the image config and manifest disagree on the number of layers".into()));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);

    for layer in &manifest.layers {
        if !content::exists(c, &layer.digest).await? {
            let stream = remote.blob_stream(layer).await.map_err(Failure::Registry)?;
            content::write(c, lease, layer, stream, HashMap::new()).await?;
        }
    }
    // The config holds the top snapshot, and the manifest holds the config
    // and layers, for containerd's garbage collector.
    let mut config_labels = HashMap::new();
    if let Some(top) = chains.last() {
        config_labels.insert(format!("containerd.io/gc.ref.snapshot.{}", c.snapshotter), top.clone());
    }
    content::write(c, lease, &config_desc, once(config_bytes.into()), config_labels).await?;
    let mut manifest_labels =
        HashMap::from([("containerd.io/gc.ref.content.config".to_string(), config_desc.digest.clone())]);
    for (i, l) in manifest.layers.iter().enumerate() {
        manifest_labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
    }
    let media_type = manifest.media_type.clone().unwrap_or_else(|| MANIFEST_TYPES[0].to_string());
    let size = i64::try_from(fetched.raw.len()).map_err(|e| RuntimeError::Other(e.to_string()))?;
    let manifest_desc = Desc { media_type, digest: fetched.digest.clone(), size };
    content::write(c, lease, &manifest_desc, once(fetched.raw), manifest_labels).await?;

    unpack(c, lease, &manifest.layers, &chains).await?;
    put_image(c, name, &manifest_desc).await?;
    Ok(())
}

fn once(bytes: Bytes) -> futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures::stream::once(async move { Ok(bytes) }).boxed()
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
                .map_err(grpc(format!("updating image record {name}")))?;
            Ok(())
        }
        Err(s) => Err(grpc(format!("creating image record {name}"))(s)),
    }
}
