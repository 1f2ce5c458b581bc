//! OCI images as Berth reads them: manifests, indexes and configs, chain
//! IDs, and an image's config read back from containerd's content store.

use containerd_client::services::v1::GetImageRequest;
use containerd_client::services::v1::images_client::ImagesClient;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::Containerd;
use super::connect::{grpc, is_not_found};
use super::content::read_content;
use crate::runtime::RuntimeError;

/// What Berth reads of an image manifest or index.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Option<Desc>,
    #[serde(default)]
    pub layers: Vec<Desc>,
    #[serde(default)]
    pub manifests: Vec<PlatformDesc>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlatformDesc {
    #[serde(flatten)]
    pub desc: Desc,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
pub(super) struct Platform {
    pub architecture: String,
    pub os: String,
}

/// The parts of an image config a container needs.
#[derive(Deserialize, Default)]
pub(super) struct ImageConfig {
    #[serde(default)]
    pub config: Option<ExecConfig>,
    pub rootfs: RootFs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ExecConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ImageConfig {
    /// The chain ID of the top layer: the snapshot a container starts from.
    pub fn top_chain_id(&self) -> Option<String> {
        chain_ids(&self.rootfs.diff_ids).pop()
    }
}

/// Chain IDs of the layers, bottom first (the OCI image spec's definition).
pub(super) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!("sha256:{}", hex::encode(Sha256::digest(format!("{prev} {d}")))),
        };
        out.push(next);
    }
    out
}

/// The config of the image record `name`, read back from the content
/// store; `None` when there is no such record.
pub(super) async fn local_image(c: &Containerd, name: &str) -> Result<Option<ImageConfig>, RuntimeError> {
    let found = ImagesClient::new(c.channel.clone()).get(c.request(GetImageRequest { name: name.to_string() })).await;
    let target = match found {
        Ok(resp) => resp.into_inner().image.and_then(|i| i.target),
        Err(s) if is_not_found(&s) => return Ok(None),
        Err(s) => return Err(grpc(format!("looking up image {name}"))(s)),
    };
    let target = target.ok_or_else(|| RuntimeError::Other(format!("image {name} has no target")))?;
    let manifest: Manifest = serde_json::from_slice(&read_content(c, &target.digest).await?)
        .map_err(|e| RuntimeError::Other(format!("image {name}'s manifest: {e}")))?;
    let config_desc = manifest.config.ok_or_else(|| RuntimeError::Other(format!("image {name} has no config")))?;
    let config = serde_json::from_slice(&read_content(c, &config_desc.digest).await?)
        .map_err(|e| RuntimeError::Other(format!("image {name}'s config: {e}")))?;
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let diff = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let chains = chain_ids(&diff);
        assert_eq!(chains[0], "sha256:a");
        assert_eq!(chains[1], format!("sha256:{}", hex::encode(Sha256::digest("sha256:a sha256:b"))));
    }
}
