//! The agent's settings, and the machine's capacity when none is given.

use std::path::PathBuf;
use std::time::Duration;

use berth_api::ports::PortRange;
use berth_api::{Quantity, ResourceVec, Resources};

use crate::policy::Policy;

/// How one agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The `Agent` object's name; the machine's hostname by default.
    pub name: String,
    /// Logs and state live under this directory.
    pub data_dir: PathBuf,
    /// What the agent refuses to run, whatever the ledger says.
    pub policy: Policy,
    /// CPU offered to placements; the machine's cores when unset.
    pub cpu: Option<Quantity>,
    /// Memory offered to placements; the machine's memory when unset.
    pub memory: Option<Quantity>,
    /// Host ports placements may be given, reported as `status.ports`.
    pub ports: Vec<PortRange>,
    /// Reported as `status.hostname` (what `hostname` constraints match);
    /// the machine's hostname when unset. Set it when several agents share
    /// one machine's hostname (simulated agents, tests).
    pub hostname: Option<String>,
    /// The URL others reach this agent's log server at.
    pub endpoint: String,
    /// How often the agent reports it is alive.
    pub heartbeat: Duration,
    /// How long a killed container gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Stop every container after this long without a Lease renewal
    /// (self-fencing, [`crate::fence`]); `None`: never.
    pub fence_after: Option<Duration>,
    /// How long a `Pending` placement waits for its claim in this agent's
    /// ledger before it is marked `Failed` with reason `Unclaimed`.
    pub claim_wait: Duration,
    /// A placement's log is rotated once it is longer than this (bytes).
    pub log_max_bytes: u64,
    /// How many rotated copies of a placement's log are kept.
    pub log_max_files: u32,
    /// Pull retries and image garbage collection.
    pub images: ImageSettings,
}

/// How the agent pulls images and collects unused ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSettings {
    /// Pull attempts before a placement ends `Failed`/`ImagePullFailed`.
    pub pull_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each.
    pub pull_backoff_initial: Duration,
    /// The longest wait between attempts.
    pub pull_backoff_max: Duration,
    /// When the images' total size passes this many bytes, unused images
    /// are removed, least recently used first; `None`: never.
    pub gc_high_bytes: Option<u64>,
    /// ... until it is at most this many bytes.
    pub gc_low_bytes: Option<u64>,
    /// Kubelet's policy: when the filesystem holding the images is fuller
    /// than a percentage, unused images are removed until it is at most a
    /// lower one; `None`: never.
    pub gc_disk: Option<DiskThreshold>,
    /// How often the images' size is checked (also after a container is removed).
    pub gc_interval: Duration,
}

/// When image garbage collection starts and stops by how full a disk is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskThreshold {
    /// A path on the filesystem containerd keeps images on (its `--root`).
    pub path: PathBuf,
    /// Collection starts when more than this percentage is used…
    pub high_percent: u8,
    /// … and removes images until at most this percentage is used.
    pub low_percent: u8,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            pull_attempts: DEFAULT_PULL_ATTEMPTS,
            pull_backoff_initial: Duration::from_secs(1),
            pull_backoff_max: Duration::from_secs(60),
            gc_high_bytes: None,
            gc_low_bytes: None,
            gc_disk: None,
            gc_interval: Duration::from_secs(60),
        }
    }
}

/// The default of [`ImageSettings::pull_attempts`]: waits of 1 s, 2 s and
/// 4 s between them, about 7 s in all.
pub const DEFAULT_PULL_ATTEMPTS: u32 = 4;

/// The default of [`AgentConfig::claim_wait`].
pub const DEFAULT_CLAIM_WAIT: Duration = Duration::from_secs(60);

impl AgentConfig {
    /// The machine's capacity, with the configured overrides applied.
    pub fn capacity(&self) -> Result<Resources, String> {
        let machine = machine_capacity();
        let cpu = self.cpu.clone().unwrap_or_else(|| Quantity::from_millis(machine.cpu_millis));
        let memory = self.memory.clone().unwrap_or_else(|| Quantity::from_bytes(machine.memory_bytes));
        let r = Resources { cpu: Some(cpu), memory: Some(memory) };
        r.to_vec().map_err(|e| e.to_string())?;
        Ok(r)
    }

    /// Where a placement's stdout and stderr go.
    pub fn log_path(&self, namespace: &str, name: &str) -> PathBuf {
        self.data_dir.join("logs").join(namespace).join(format!("{name}.log"))
    }
}

/// The cores and memory this machine has.
pub fn machine_capacity() -> ResourceVec {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0);
    ResourceVec::new(cores * 1000, memory)
}

/// The machine's hostname.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_has_cores_and_memory() {
        let m = machine_capacity();
        assert!(m.cpu_millis >= 1000 && m.memory_bytes > 0, "{m}");
    }

    #[test]
    fn flags_override_the_machine() {
        let cfg = AgentConfig {
            name: "a".into(),
            data_dir: "/tmp".into(),
            policy: Default::default(),
            cpu: Some("500m".into()),
            memory: Some("12x".into()),
            ports: Vec::new(),
            hostname: None,
            endpoint: String::new(),
            heartbeat: Duration::from_secs(1),
            kill_grace: Duration::from_secs(1),
            fence_after: None,
            claim_wait: DEFAULT_CLAIM_WAIT,
            log_max_bytes: crate::rotate::DEFAULT_MAX_BYTES,
            log_max_files: crate::rotate::DEFAULT_MAX_FILES,
            images: ImageSettings::default(),
        };
        assert!(cfg.capacity().unwrap_err().contains("memory"));
    }
}
