//! The connection to containerd: the channel over its unix socket, the
//! namespace every request carries (`containerd-namespace`), the lease a
//! pull's writes carry (`containerd-lease`), and gRPC errors as
//! [`RuntimeError`]s.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use tonic::metadata::MetadataValue;

use super::Containerd;
use crate::runtime::RuntimeError;

/// containerd's namespace header: every call names the namespace it acts in.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// containerd's lease header: what is written under it is kept until the lease ends.
const LEASE_HEADER: &str = "containerd-lease";
/// The snapshotter used unless [`Containerd::with_snapshotter`] says otherwise.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

impl Containerd {
    /// Connects to containerd's socket; `namespace` keeps this agent's
    /// images and containers apart from anything else on the machine.
    /// Fails at once if nothing answers or the namespace is not a valid
    /// containerd namespace (letters and digits, joined by `.`, `_`, `-`).
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Self, RuntimeError> {
        if !valid_namespace(namespace) {
            return Err(RuntimeError::Other(format!("{namespace:?} is not a valid containerd namespace")));
        }
        let namespace_header = namespace
            .parse()
            .map_err(|_| RuntimeError::Other(format!("{namespace:?} is not a valid containerd namespace")))?;
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| RuntimeError::Other(format!("connecting to containerd at {}: {e}", socket.display())))?;
        let c = Containerd {
            channel,
            namespace_header,
            snapshotter: DEFAULT_SNAPSHOTTER.to_string(),
            pulls: std::sync::Mutex::new(HashMap::new()),
            registry_pulls: AtomicU64::new(0),
        };
        // Fail now, not at the first placement, if nothing answers.
        crate::runtime::Runtime::version(&c).await?;
        Ok(c)
    }

    /// Uses `snapshotter` (e.g. `native` where overlayfs is unavailable)
    /// for unpacked images and containers' root filesystems.
    pub fn with_snapshotter(mut self, snapshotter: &str) -> Self {
        self.snapshotter = snapshotter.to_string();
        self
    }

    /// The snapshotter in use.
    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    /// `msg` as a request in this agent's namespace.
    pub(super) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.metadata_mut().insert(NAMESPACE_HEADER, self.namespace_header.clone());
        req
    }

    /// `msg` as a request in this agent's namespace, under `lease`.
    pub(super) fn leased<T>(&self, msg: T, lease: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
        let mut req = self.request(msg);
        req.metadata_mut().insert(LEASE_HEADER, lease.clone());
        req
    }
}

/// containerd's namespace rule: `^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`, at most 76 bytes.
fn valid_namespace(ns: &str) -> bool {
    ns.len() <= 76
        && ns.split(['.', '_', '-']).all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A gRPC error as a runtime error, naming what was being done.
pub(super) fn grpc(what: impl std::fmt::Display) -> impl FnOnce(tonic::Status) -> RuntimeError {
    move |s| RuntimeError::Other(format!("{what}: {}", s.message()))
}

pub(super) fn is_not_found(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::NotFound
}

/// `Ok(())` for success and for NotFound: deleting what is gone succeeds.
pub(super) fn ignore_not_found<T>(
    r: Result<T, tonic::Status>,
    what: impl std::fmt::Display,
) -> Result<(), RuntimeError> {
    found(r, what).map(|_| ())
}

/// The answer, `None` if what was asked for does not exist.
pub(super) fn found<T>(r: Result<T, tonic::Status>, what: impl std::fmt::Display) -> Result<Option<T>, RuntimeError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(s) if is_not_found(&s) => Ok(None),
        Err(s) => Err(grpc(what)(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_namespace;

    #[test]
    fn namespaces_follow_containerds_rule() {
        assert!(valid_namespace("berth"));
        assert!(valid_namespace("berth-e2e.tmp_1"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("-berth"));
        assert!(!valid_namespace("berth--x"));
        assert!(!valid_namespace("a/b"));
        assert!(!valid_namespace(&"a".repeat(77)));
    }
}
