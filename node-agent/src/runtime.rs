//! The container runtime as the agent sees it: one trait, one real
//! implementation (`containerd`), and a recording fake for unit tests of
//! the agent's decisions.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Registry credentials for one pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// Everything needed to create and start one container.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// The container id in the runtime (unique; derived from the placement UID).
    pub id: String,
    /// Image reference, e.g. `localhost:5000/berth/demo:latest`.
    pub image: String,
    /// Replaces the image's entrypoint when non-empty.
    pub command: Vec<String>,
    /// Replaces the image's cmd when non-empty (or when `command` is set).
    pub args: Vec<String>,
    /// Added to (and overriding) the image's environment.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// CPU limit in thousandths of a core (0 = none): cgroup CFS quota.
    pub cpu_millis: u64,
    /// Memory limit in bytes (0 = none): cgroup memory limit, no swap.
    pub memory_bytes: u64,
    /// The user and group the process runs as, replacing the image's `User`.
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// Refuse to start (with [`RuntimeError::Policy`]) when the process
    /// would run as root, e.g. because the image's `User` is root.
    pub run_as_non_root: bool,
    /// Mount the root filesystem read-only.
    pub read_only_root: bool,
    /// Host directories bind-mounted into the container.
    pub mounts: Vec<BindMount>,
    /// Labels stored on the container (the agent finds its containers by these).
    pub labels: BTreeMap<String, String>,
    /// stdout and stderr are appended here.
    pub log_path: PathBuf,
}

/// A host directory bind-mounted into a container (`rbind`, `nosuid`, `nodev`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BindMount {
    /// The path on the host.
    pub source: PathBuf,
    /// The absolute path inside the container.
    pub destination: String,
    pub read_only: bool,
}

/// How a container's process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i32,
    /// True when the kernel's OOM killer ended it for exceeding its memory limit.
    pub oom_killed: bool,
    /// RFC 3339 time of exit.
    pub finished_at: String,
}

/// A container the runtime knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// True while its process runs.
    pub running: bool,
}

/// An image the runtime holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its full reference, e.g. `127.0.0.1:5000/berth/demo:latest`.
    pub name: String,
    /// Its blobs (manifest, config, layers) as digest and size in bytes;
    /// images that share a layer list the same digest.
    pub blobs: Vec<(String, u64)>,
    /// When its record was last created or updated, in Unix seconds.
    pub updated_at: i64,
    /// True while a container of this agent's namespace uses it.
    pub in_use: bool,
}

impl ImageInfo {
    /// The size of its content, in bytes.
    pub fn size(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

/// How a command run inside a running container ([`Runtime::exec`]) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// It exited with `code`; `output` is the tail of its stdout and stderr
    /// (at most [`EXEC_OUTPUT_MAX`] bytes, lossily UTF-8).
    Exited { code: i32, output: String },
    /// It ran longer than its timeout and was killed.
    TimedOut,
}

/// How much of an exec'd command's output is kept (its tail).
pub const EXEC_OUTPUT_MAX: usize = 4096;

/// The last [`EXEC_OUTPUT_MAX`] bytes of `bytes`, as text.
pub fn output_tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(EXEC_OUTPUT_MAX);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image could not be pulled; the message is the registry's.
    #[error("pulling {image}: {message}")]
    ImagePull { image: String, message: String },
    /// The container breaks the agent's policy; the message names the field.
    #[error("{0}")]
    Policy(String),
    /// An image was not removed because a container uses it.
    #[error("image {image} is in use by container {container}")]
    ImageInUse { image: String, container: String },
    #[error("container {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// A container runtime. Every method is idempotent where it can be:
/// pulling a present image, killing a dead container and removing a
/// missing one succeed.
pub trait Runtime: Send + Sync + 'static {
    /// Makes `image` present and unpacked, pulling it if needed.
    fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Creates the container and starts its process.
    fn start(&self, spec: &ContainerSpec) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Waits for the container's process to exit (returns at once if it has).
    fn wait(&self, id: &str) -> impl Future<Output = Result<ExitStatus, RuntimeError>> + Send;
    /// Sends `signal` (e.g. `libc::SIGTERM`) to the container's process.
    fn kill(&self, id: &str, signal: i32) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Runs `argv` as a new process in the running container `id` (its
    /// environment, user and working directory; no stdin), killing it once
    /// it runs longer than `timeout`; nothing of it is left behind.
    fn exec(
        &self,
        id: &str,
        argv: &[String],
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<ExecOutcome, RuntimeError>> + Send;
    /// Deletes the container, its task and its snapshot.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Every container of this agent's namespace.
    fn list(&self) -> impl Future<Output = Result<Vec<ContainerInfo>, RuntimeError>> + Send;
    /// Container `id`, if it exists. A runtime may override this to ask for
    /// the one container: listing them all costs one state query per
    /// running task, on every launch and every stop.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<ContainerInfo>, RuntimeError>> + Send {
        async move { Ok(self.list().await?.into_iter().find(|c| c.id == id)) }
    }
    /// Every image of this agent's namespace, with its size and whether a container uses it.
    fn images(&self) -> impl Future<Output = Result<Vec<ImageInfo>, RuntimeError>> + Send;
    /// Deletes the image, its content and its unpacked snapshots (those no
    /// other image shares); refuses with [`RuntimeError::ImageInUse`] while a
    /// container uses it; a missing image is already removed.
    fn remove_image(&self, name: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `name version`, e.g. `containerd 1.6.20`.
    fn version(&self) -> impl Future<Output = Result<String, RuntimeError>> + Send;
}

/// A shared runtime is a runtime: tests keep a handle on the one the agent uses.
impl<R: Runtime> Runtime for std::sync::Arc<R> {
    async fn pull(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<(), RuntimeError> {
        (**self).pull(image, auth).await
    }
    async fn start(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        (**self).start(spec).await
    }
    async fn wait(&self, id: &str) -> Result<ExitStatus, RuntimeError> {
        (**self).wait(id).await
    }
    async fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        (**self).kill(id, signal).await
    }
    async fn exec(&self, id: &str, argv: &[String], timeout: std::time::Duration) -> Result<ExecOutcome, RuntimeError> {
        (**self).exec(id, argv, timeout).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        (**self).remove(id).await
    }
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        (**self).list().await
    }
    async fn get(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        (**self).get(id).await
    }
    async fn images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        (**self).images().await
    }
    async fn remove_image(&self, name: &str) -> Result<(), RuntimeError> {
        (**self).remove_image(name).await
    }
    async fn version(&self) -> Result<String, RuntimeError> {
        (**self).version().await
    }
}
