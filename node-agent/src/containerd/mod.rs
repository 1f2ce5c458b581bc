//! The container runtime on containerd (1.6 and later), over its gRPC API.
//!
//! Debian's containerd 1.6 has no Transfer service, so images are pulled
//! client-side: the registry is read with `oci-client`, blobs are written
//! into containerd's content store under a lease, the image record is
//! created, and each layer is unpacked into a committed snapshot named by
//! its chain ID. Containers get an OCI runtime spec built from the image's
//! config and the placement, and run as tasks under runc with stdout and
//! stderr appended to a file.
//!
//! Layout:
//! - `connect`: the channel, the namespace and lease headers, gRPC errors.
//! - `image`: manifests, configs and chain IDs; an image's config read back.
//! - `registry`: fetching manifests and blobs from an OCI registry.
//! - `content`: writing and reading blobs in the content store; leases.
//! - `pull`: the pull, once per image however many ask at once.
//! - `unpack`: layers into committed snapshots.
//! - `spec`: the OCI runtime spec of a container.
//! - `logs`: where a container's stdout and stderr go.
//! - `task`: create, start, kill, remove, list.
//! - `exec`: a command run inside a running container (command health checks).
//! - `exit`: waiting for the exit, and telling an OOM kill from others.
//! - `gc`: images with their sizes and users, for the image collector; removal.

mod connect;
mod content;
mod exec;
mod exit;
mod gc;
mod image;
mod logs;
mod pull;
mod registry;
mod spec;
mod task;
mod unpack;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use containerd_client::services::v1::version_client::VersionClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

pub use connect::DEFAULT_SNAPSHOTTER;

use crate::runtime::{
    ContainerInfo, ContainerSpec, ExecOutcome, ExitStatus, ImageInfo, RegistryAuth, Runtime, RuntimeError,
};

/// The runtime shim containers run under.
const RUNTIME: &str = "io.containerd.runc.v2";

/// A connection to containerd, acting in one namespace. Cheap to share
/// behind an `Arc`; every method may be called concurrently.
pub struct Containerd {
    channel: Channel,
    /// The namespace, ready to go into each request's metadata.
    namespace_header: MetadataValue<Ascii>,
    snapshotter: String,
    /// One lock per image reference, so concurrent placements pull it once.
    pulls: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls that went to a registry (not answered from the local store).
    registry_pulls: AtomicU64,
}

impl Containerd {
    /// How many pulls fetched from a registry since connecting; a pull of
    /// an image already unpacked does not count.
    pub fn registry_pulls(&self) -> u64 {
        self.registry_pulls.load(Ordering::Relaxed)
    }

    /// The lock held while `image` is pulled.
    fn pull_lock(&self, image: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(image.to_string()).or_default().clone()
    }
}

impl Runtime for Containerd {
    async fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        pull::pull(self, image, auth).await
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        task::start(self, spec).await
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        exit::wait(self, id).await
    }

    async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        task::kill(self, id, signal).await
    }

    async fn exec(&self, id: &str, argv: &[String], timeout: std::time::Duration) -> Result<ExecOutcome, RuntimeError> {
        exec::exec(self, id, argv, timeout).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        task::remove(self, id).await
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        task::list(self).await
    }

    async fn get(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        task::get(self, id).await
    }

    async fn images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        gc::images(self).await
    }

    async fn remove_image(&self, name: &str) -> Result<(), RuntimeError> {
        gc::remove_image(self, name).await
    }

    async fn version(&self) -> Result<String, RuntimeError> {
        let v = VersionClient::new(self.channel.clone())
            .version(self.request(()))
            .await
            .map_err(connect::grpc("asking containerd's version"))?
            .into_inner();
        Ok(format!("containerd {}", v.version))
    }
}
