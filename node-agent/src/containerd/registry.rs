//! Reading an image from an OCI registry with `oci-client`: the manifest
//! (an index resolved to this machine's platform), the config, and layer
//! streams. Registries on loopback are spoken to over plain HTTP, like
//! Docker's and containerd's default "insecure" loopback exception.

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference};

use super::image::{Desc, Manifest};
use crate::runtime::RegistryAuth;

/// What Berth accepts as a manifest: OCI and Docker, single and multi-platform.
pub(super) const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One image in one registry, with the credentials to read it.
pub(super) struct Remote {
    client: Client,
    reference: Reference,
    auth: oci_client::secrets::RegistryAuth,
}

/// A manifest as fetched: its bytes (what its digest covers), digest and parsed form.
pub(super) struct Fetched {
    pub raw: Bytes,
    pub digest: String,
    pub manifest: Manifest,
}

impl Remote {
    pub fn new(reference: Reference, auth: Option<&RegistryAuth>) -> Remote {
        static RUSTLS: Once = Once::new();
        RUSTLS.call_once(|| {
            // Another part of the process may have installed one already; that one serves.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let registry = reference.resolve_registry().to_string();
        let protocol = if is_loopback(&registry) { ClientProtocol::Http } else { ClientProtocol::Https };
        let client = Client::new(ClientConfig {
            protocol,
            // A registry that stops answering fails the pull instead of holding it (and its lock) forever.
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("berth-agent/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        let auth = match auth {
            Some(a) => oci_client::secrets::RegistryAuth::Basic(a.username.clone(), a.password.clone()),
            None => oci_client::secrets::RegistryAuth::Anonymous,
        };
        Remote { client, reference, auth }
    }

    /// The image's manifest for this machine: an index is resolved to its
    /// `linux/<arch>` entry.
    pub async fn manifest(&self) -> Result<Fetched, String> {
        let first = self.fetch_manifest(&self.reference).await?;
        if first.manifest.manifests.is_empty() {
            return Ok(first);
        }
        let arch = oci_arch();
        let chosen = first
            .manifest
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
            .ok_or_else(|| format!("the image has no linux/{arch} variant"))?;
        self.fetch_manifest(&self.reference.clone_with_digest(chosen.desc.digest.clone())).await
    }

    async fn fetch_manifest(&self, reference: &Reference) -> Result<Fetched, String> {
        let (raw, digest) =
            self.client.pull_manifest_raw(reference, &self.auth, &MANIFEST_TYPES).await.map_err(describe)?;
        let manifest = serde_json::from_slice(&raw).map_err(|e| format!("reading manifest {digest}: {e}"))?;
        Ok(Fetched { raw, digest, manifest })
    }

    /// A small blob (the config), whole, verified against its digest.
    pub async fn blob(&self, desc: &Desc) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
        self.client.pull_blob(&self.reference, desc.digest.as_str(), &mut out).await.map_err(describe)?;
        Ok(out)
    }

    /// A blob (a layer) as a stream of chunks.
    pub async fn blob_stream(&self, desc: &Desc) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, String> {
        let sized = self.client.pull_blob_stream(&self.reference, desc.digest.as_str()).await.map_err(describe)?;
        Ok(sized.stream)
    }
}

/// `localhost`, `127.x.x.x` and `[::1]`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// This machine's architecture as OCI names it.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The registry's own words where it gave some (`MANIFEST_UNKNOWN: manifest
/// unknown`), otherwise the client's error.
fn describe(e: OciDistributionError) -> String {
    match e {
        OciDistributionError::RegistryError { envelope, url } => {
            let errors: Vec<String> = envelope
                .errors
                .iter()
                .map(|err| {
                    let code = serde_json::to_value(&err.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| format!("{:?}", err.code));
                    format!("{code}: {}", err.message)
                })
                .collect();
            format!("{} ({url})", errors.join("; "))
        }
        OciDistributionError::UnauthorizedError { url } => {
            format!("401 Unauthorized: the registry wants valid credentials ({url})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries_use_plain_http() {
        for r in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "index.docker.io", "10.0.0.1:5000", "localhost.example.com", "[2001:db8::1]:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
