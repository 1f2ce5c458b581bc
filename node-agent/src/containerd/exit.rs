//! How a container ended: its exit status and time from Tasks.Wait, and
//! whether the kernel's OOM killer ended it for exceeding its memory limit.
//!
//! An exit code of 137 only says SIGKILL; the proof of an OOM kill is the
//! kernel's count of them in the container's memory cgroup — cgroup v1
//! `memory.oom_control` (`oom_kill N`, Linux 4.13+) or cgroup v2
//! `memory.events`. The cgroup outlives the process until the task is
//! deleted, and the count survives the agent's restart, which an event
//! subscription would not. A container whose process exited 0 is not
//! reported OOM-killed even if one of its children was.

use std::path::{Path, PathBuf};

use containerd_client::services::v1::WaitRequest;
use containerd_client::services::v1::tasks_client::TasksClient;

use super::Containerd;
use super::connect::{grpc, is_not_found};
use super::spec::cgroup_path;
use crate::runtime::{ExitStatus, RuntimeError};

/// Waits for the container's process to exit; returns at once if it has.
pub(super) async fn wait(c: &Containerd, id: &str) -> Result<ExitStatus, RuntimeError> {
    let resp = TasksClient::new(c.channel.clone())
        .wait(c.request(WaitRequest { container_id: id.to_string(), exec_id: String::new() }))
        .await
        .map_err(|s| {
            if is_not_found(&s) { RuntimeError::NotFound(id.into()) } else { grpc(format!("waiting for {id}"))(s) }
        })?
        .into_inner();
    let finished =
        resp.exited_at.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()).unwrap_or_else(jiff::Timestamp::now);
    let code = i32::try_from(resp.exit_status).unwrap_or(i32::MAX);
    let oom_killed = code != 0 && oom_kills(&cgroup_path(id)) > 0;
    Ok(ExitStatus { code, oom_killed, finished_at: berth_api::format_time(finished) })
}

/// OOM kills the kernel counted in the memory cgroup at `cgroup` (0 when
/// the cgroup cannot be read).
fn oom_kills(cgroup: &str) -> u64 {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut candidates: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(memory) = memory_hierarchy(&mounts) {
        candidates.push((join(&memory, cgroup).join("memory.oom_control"), "oom_kill"));
    }
    if let Some(unified) = unified_hierarchy(&mounts) {
        candidates.push((join(&unified, cgroup).join("memory.events"), "oom_kill"));
    }
    candidates
        .iter()
        .filter_map(|(file, key)| std::fs::read_to_string(file).ok().and_then(|text| counter(&text, key)))
        .max()
        .unwrap_or(0)
}

/// `root` + the absolute cgroup path.
fn join(root: &Path, cgroup: &str) -> PathBuf {
    root.join(cgroup.trim_start_matches('/'))
}

/// Where the cgroup v1 memory controller is mounted.
fn memory_hierarchy(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == "memory")).then(|| PathBuf::from(f[1]))
    })
}

/// Where cgroup v2 is mounted, if its memory controller is on.
fn unified_hierarchy(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(2) != Some(&"cgroup2") {
            return None;
        }
        let root = PathBuf::from(f.get(1)?);
        let enabled = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        enabled.split_whitespace().any(|c| c == "memory").then_some(root)
    })
}

/// The value of `key N` in a flat-keyed cgroup file.
fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_count_is_read_from_flat_keyed_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), Some(2));
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(v2, "oom_kill"), Some(1));
        assert_eq!(counter("under_oom 0\n", "oom_kill"), None);
    }

    #[test]
    fn the_memory_hierarchy_is_found_in_mounts() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
                      cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n";
        assert_eq!(memory_hierarchy(mounts), Some(PathBuf::from("/sys/fs/cgroup/memory")));
        assert_eq!(
            join(Path::new("/sys/fs/cgroup/memory"), "/berth/x"),
            PathBuf::from("/sys/fs/cgroup/memory/berth/x")
        );
    }
}
