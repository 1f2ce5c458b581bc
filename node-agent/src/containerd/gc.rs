//! Images for the collector: each image record of the namespace with the
//! sizes of its blobs (manifest, config, layers, as the manifest declares
//! them) and whether a container uses it; and removing one. Removal deletes
//! the image record with `sync`, so containerd's garbage collector runs at
//! once and takes the content and the unpacked snapshots that only that
//! image referenced (through the `containerd.io/gc.ref.*` labels the pull
//! set); snapshots a container or another image still needs stay.

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{DeleteImageRequest, ListContainersRequest, ListImagesRequest};

use super::Containerd;
use super::connect::{grpc, ignore_not_found};
use super::content::read_content;
use super::image::Manifest;
use crate::runtime::{ImageInfo, RuntimeError};

/// Every image of the namespace.
pub(super) async fn images(c: &Containerd) -> Result<Vec<ImageInfo>, RuntimeError> {
    let records = ImagesClient::new(c.channel.clone())
        .list(c.request(ListImagesRequest { filters: Vec::new() }))
        .await
        .map_err(grpc("listing images"))?
        .into_inner()
        .images;
    let containers = containers_by_image(c).await?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let Some(target) = record.target else { continue };
        let mut blobs = vec![(target.digest.clone(), size(target.size))];
        match blobs_of(c, &target.digest).await {
            Ok(more) => blobs.extend(more),
            // Content gone under a record (a half-deleted image): its record alone is listed.
            Err(e) => tracing::debug!(image = %record.name, error = %e, "reading an image's manifest"),
        }
        out.push(ImageInfo {
            in_use: containers.iter().any(|(_, image)| *image == record.name),
            name: record.name,
            blobs,
            updated_at: record.updated_at.or(record.created_at).map(|t| t.seconds).unwrap_or(0),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The config and layers a manifest names; for an index, those of each of
/// its manifests present here.
async fn blobs_of(c: &Containerd, digest: &str) -> Result<Vec<(String, u64)>, RuntimeError> {
    let parse = |bytes: Vec<u8>| {
        serde_json::from_slice::<Manifest>(&bytes).map_err(|e| RuntimeError::Other(format!("manifest {digest}: {e}")))
    };
    let manifest = parse(read_content(c, digest).await?)?;
    let mut out: Vec<(String, u64)> = manifest.config.iter().chain(&manifest.layers).map(desc).collect();
    for child in &manifest.manifests {
        if let Ok(bytes) = read_content(c, &child.desc.digest).await {
            out.push(desc(&child.desc));
            let m = parse(bytes)?;
            out.extend(m.config.iter().chain(&m.layers).map(desc));
        }
    }
    Ok(out)
}

fn desc(d: &super::image::Desc) -> (String, u64) {
    (d.digest.clone(), size(d.size))
}

fn size(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(0)
}

/// (container id, image name) of every container in the namespace.
async fn containers_by_image(c: &Containerd) -> Result<Vec<(String, String)>, RuntimeError> {
    let containers = ContainersClient::new(c.channel.clone())
        .list(c.request(ListContainersRequest { filters: Vec::new() }))
        .await
        .map_err(grpc("listing containers"))?
        .into_inner()
        .containers;
    Ok(containers.into_iter().map(|ct| (ct.id, ct.image)).collect())
}

/// Deletes the image `name` unless a container uses it.
pub(super) async fn remove_image(c: &Containerd, name: &str) -> Result<(), RuntimeError> {
    // Not while the same image is being pulled.
    let lock = c.pull_lock(name);
    let _held = lock.lock().await;
    if let Some((container, _)) = containers_by_image(c).await?.into_iter().find(|(_, image)| image == name) {
        return Err(RuntimeError::ImageInUse { image: name.into(), container });
    }
    let req = DeleteImageRequest { name: name.to_string(), sync: true, ..Default::default() };
    let deleted = ImagesClient::new(c.channel.clone()).delete(c.request(req)).await;
    ignore_not_found(deleted, format!("deleting image {name}"))?;
    tracing::info!(image = %name, "removed an unused image");
    Ok(())
}
