//! The container runtime on containerd (1.6 and later), over its gRPC API.
//!
//! Debian's containerd 1.6 has no Transfer service, so images are pulled
//! client-side ([`pull`]): the registry is read with `oci-client`, blobs are
//! written into containerd's content store, the image record is created, and
//! each layer is unpacked into a committed snapshot named by its chain ID.
//! Manifests and configs are read by [`image`]. Containers get an OCI
//! runtime spec built here ([`spec`]) and run as tasks under runc, with
//! stdout and stderr appended to a file ([`task`]).

mod image;
mod pull;
mod spec;
mod task;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use containerd_client::services::v1::version_client::VersionClient;
use tonic::transport::Channel;

use crate::runtime::{ContainerInfo, ContainerSpec, ExitStatus, RegistryAuth, Runtime, RuntimeError};

/// containerd's namespace header: every call names the namespace it acts in.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The snapshotter images are unpacked into and containers run on.
pub const SNAPSHOTTER: &str = "overlayfs";
/// The runtime shim containers run under.
const RUNTIME: &str = "io.containerd.runc.v2";

/// A connection to containerd, acting in one namespace.
pub struct Containerd {
    channel: Channel,
    namespace: String,
    /// One lock per image reference, so concurrent placements pull it once.
    pulls: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Containerd {
    /// Connects to containerd's socket; `namespace` keeps this agent's
    /// images and containers apart from anything else on the machine.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Self, RuntimeError> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| RuntimeError::Other(format!("connecting to containerd at {}: {e}", socket.display())))?;
        let c = Containerd { channel, namespace: namespace.to_string(), pulls: Default::default() };
        // Fail now, not at the first placement, if nothing answers.
        c.version().await?;
        Ok(c)
    }

    /// `msg` as a request in this agent's namespace.
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Ok(ns) = self.namespace.parse() {
            req.metadata_mut().insert(NAMESPACE_HEADER, ns);
        }
        req
    }
}

/// A gRPC error as a runtime error, naming what was being done.
fn grpc(what: impl std::fmt::Display) -> impl FnOnce(tonic::Status) -> RuntimeError {
    move |s| RuntimeError::Other(format!("{what}: {}", s.message()))
}

fn is_not_found(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::NotFound
}

impl Runtime for Containerd {
    async fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        let lock = self.pulls.lock().await.entry(image.to_string()).or_default().clone();
        let _held = lock.lock().await;
        pull::ensure_image(self, image, auth).await
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        task::start(self, spec).await
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        task::wait(self, id).await
    }

    async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        task::kill(self, id, signal).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        task::remove(self, id).await
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        task::list(self).await
    }

    async fn version(&self) -> Result<String, RuntimeError> {
        let v = VersionClient::new(self.channel.clone())
            .version(tonic::Request::new(()))
            .await
            .map_err(grpc("asking containerd's version"))?
            .into_inner();
        Ok(format!("containerd {}", v.version))
    }
}
