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
//!
//! The shim appends the container's output to its log file from pipes, and
//! those copies may still be draining when the exit is published; only
//! deleting the task waits for them. So once the exit is known it is kept
//! in the container's labels and the task is deleted: when `wait` returns,
//! the log is complete, and a later `wait` (after the agent restarts) reads
//! the same exit back from the labels.

use std::path::{Path, PathBuf};

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{DeleteTaskRequest, GetContainerRequest, UpdateContainerRequest, WaitRequest};

use super::Containerd;
use super::connect::{found, grpc, ignore_not_found, is_not_found};
use super::spec::cgroup_path;
use crate::runtime::{ExitStatus, RuntimeError};

/// Container labels that keep how the container ended once its task is gone.
const EXIT_CODE: &str = "berth.dev/exit-code";
const OOM_KILLED: &str = "berth.dev/oom-killed";
const FINISHED_AT: &str = "berth.dev/finished-at";

/// Waits for the container's process to exit and for its output to reach
/// the log; returns at once if it has.
pub(super) async fn wait(c: &Containerd, id: &str) -> Result<ExitStatus, RuntimeError> {
    let waited = TasksClient::new(c.channel.clone())
        .wait(c.request(WaitRequest { container_id: id.to_string(), exec_id: String::new() }))
        .await;
    let resp = match waited {
        Ok(resp) => resp.into_inner(),
        Err(s) if is_not_found(&s) => return recorded(c, id).await?.ok_or_else(|| RuntimeError::NotFound(id.into())),
        Err(s) => return Err(grpc(format!("waiting for {id}"))(s)),
    };
    let finished =
        resp.exited_at.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()).unwrap_or_else(jiff::Timestamp::now);
    let code = i32::try_from(resp.exit_status).unwrap_or(i32::MAX);
    // Read before the task is deleted: the cgroup goes with it.
    let oom_killed = code != 0 && oom_kills(&cgroup_path(id)) > 0;
    let exit = ExitStatus { code, oom_killed, finished_at: berth_api::format_time(finished) };
    record(c, id, &exit).await?;
    let deleted =
        TasksClient::new(c.channel.clone()).delete(c.request(DeleteTaskRequest { container_id: id.to_string() })).await;
    ignore_not_found(deleted, format!("deleting the exited task of {id}"))?;
    Ok(exit)
}

/// Keeps `exit` in the container's labels.
async fn record(c: &Containerd, id: &str, exit: &ExitStatus) -> Result<(), RuntimeError> {
    let mut containers = ContainersClient::new(c.channel.clone());
    let got = containers.get(c.request(GetContainerRequest { id: id.to_string() })).await;
    let Some(mut container) = found(got, format!("reading container {id}"))?.and_then(|r| r.into_inner().container)
    else {
        return Ok(());
    };
    container.labels.insert(EXIT_CODE.into(), exit.code.to_string());
    container.labels.insert(OOM_KILLED.into(), exit.oom_killed.to_string());
    container.labels.insert(FINISHED_AT.into(), exit.finished_at.clone());
    let mask = prost_types::FieldMask { paths: vec!["labels".into()] };
    let req = UpdateContainerRequest { container: Some(container), update_mask: Some(mask) };
    let updated = containers.update(c.request(req)).await;
    ignore_not_found(updated, format!("recording the exit of {id}"))
}

/// The exit kept in the labels of a container whose task was deleted.
async fn recorded(c: &Containerd, id: &str) -> Result<Option<ExitStatus>, RuntimeError> {
    let got = ContainersClient::new(c.channel.clone()).get(c.request(GetContainerRequest { id: id.to_string() })).await;
    let Some(container) = found(got, format!("reading container {id}"))?.and_then(|r| r.into_inner().container) else {
        return Ok(None);
    };
    Ok(exit_from_labels(&container.labels))
}

fn exit_from_labels(labels: &std::collections::HashMap<String, String>) -> Option<ExitStatus> {
    Some(ExitStatus {
        code: labels.get(EXIT_CODE)?.parse().ok()?,
        oom_killed: labels.get(OOM_KILLED).is_some_and(|v| v == "true"),
        finished_at: labels.get(FINISHED_AT)?.clone(),
    })
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
