//! A command run inside a running container (a command health check): a
//! new process in the container's task, with the process settings of its
//! runtime spec (environment, user, working directory, capabilities) and
//! `argv` as its arguments, no stdin and no terminal. Its stdout and stderr
//! go to a file the shim appends to, read back once the process is deleted
//! (deleting it waits for the shim's copies); the process is killed when it
//! outlives its timeout, and deleted however it ends.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, KillRequest, StartRequest, WaitRequest,
};

use super::Containerd;
use super::connect::{grpc, ignore_not_found};
use super::logs::log_uri;
use crate::runtime::{EXEC_OUTPUT_MAX, ExecOutcome, RuntimeError, output_tail};

/// The type containerd (and its shim) expects of an exec'd process's spec.
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// How long a killed process may take to be reaped before it is deleted anyway.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Exec ids of this agent process, each used once.
static NEXT_EXEC: AtomicU64 = AtomicU64::new(0);

/// Runs `argv` in container `id`, killing it after `timeout`.
pub(super) async fn exec(
    c: &Containerd,
    id: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<ExecOutcome, RuntimeError> {
    let process = process_spec(c, id, argv).await?;
    let exec_id = format!("health-{}-{}", std::process::id(), NEXT_EXEC.fetch_add(1, Ordering::Relaxed));
    let out = output_path(id, &exec_id);
    let uri = log_uri(&out)?;
    let mut tasks = TasksClient::new(c.channel.clone());
    let req = ExecProcessRequest {
        container_id: id.to_string(),
        stdin: String::new(),
        stdout: uri.clone(),
        stderr: uri,
        terminal: false,
        spec: Some(prost_types::Any { type_url: PROCESS_TYPE_URL.into(), value: process }),
        exec_id: exec_id.clone(),
    };
    tasks.exec(c.request(req)).await.map_err(grpc(format!("exec in {id}")))?;
    let ran = run(c, id, &exec_id, timeout).await;
    let deleted = tasks
        .delete_process(c.request(DeleteProcessRequest { container_id: id.to_string(), exec_id: exec_id.clone() }));
    let deleted = ignore_not_found(deleted.await, format!("deleting exec {exec_id} of {id}"));
    let output = read_tail(&out);
    let _ = std::fs::remove_file(&out);
    deleted?;
    Ok(match ran? {
        Some(code) => ExecOutcome::Exited { code, output },
        None => ExecOutcome::TimedOut,
    })
}

/// Starts the exec'd process and waits for its exit code; `None` when it
/// ran past `timeout` and was killed.
async fn run(c: &Containerd, id: &str, exec_id: &str, timeout: Duration) -> Result<Option<i32>, RuntimeError> {
    let mut tasks = TasksClient::new(c.channel.clone());
    let start = StartRequest { container_id: id.to_string(), exec_id: exec_id.to_string() };
    tasks.start(c.request(start)).await.map_err(grpc(format!("starting exec {exec_id} in {id}")))?;
    let waiter = tasks.clone();
    let wait = || {
        let mut tasks = waiter.clone();
        let req = c.request(WaitRequest { container_id: id.to_string(), exec_id: exec_id.to_string() });
        async move { tasks.wait(req).await.map_err(grpc(format!("waiting for exec {exec_id} in {id}"))) }
    };
    match tokio::time::timeout(timeout, wait()).await {
        Ok(waited) => Ok(Some(i32::try_from(waited?.into_inner().exit_status).unwrap_or(i32::MAX))),
        Err(_) => {
            let kill = KillRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                signal: libc::SIGKILL as u32,
                all: false,
            };
            if let Err(s) = tasks.kill(c.request(kill)).await {
                tracing::debug!(container = %id, exec = %exec_id, error = %s.message(), "killing a timed-out exec");
            }
            let _ = tokio::time::timeout(REAP_WAIT, wait()).await;
            Ok(None)
        }
    }
}

/// The process of container `id`'s runtime spec, running `argv` instead.
async fn process_spec(c: &Containerd, id: &str, argv: &[String]) -> Result<Vec<u8>, RuntimeError> {
    let container = ContainersClient::new(c.channel.clone())
        .get(c.request(GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => RuntimeError::NotFound(id.into()),
            _ => grpc(format!("reading container {id}"))(s),
        })?
        .into_inner()
        .container
        .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
    let spec = container.spec.ok_or_else(|| RuntimeError::Other(format!("container {id} has no runtime spec")))?;
    let spec: serde_json::Value = serde_json::from_slice(&spec.value)
        .map_err(|e| RuntimeError::Other(format!("the runtime spec of {id}: {e}")))?;
    let mut process = spec.get("process").cloned().unwrap_or_else(|| serde_json::json!({}));
    process["args"] = serde_json::json!(argv);
    process["terminal"] = serde_json::json!(false);
    if let Some(p) = process.as_object_mut() {
        p.remove("consoleSize");
    }
    serde_json::to_vec(&process).map_err(|e| RuntimeError::Other(format!("exec process spec: {e}")))
}

/// Where exec `exec_id` in container `id` writes its output.
fn output_path(id: &str, exec_id: &str) -> PathBuf {
    std::env::temp_dir().join("berth-exec").join(format!("{id}-{exec_id}.out"))
}

/// The last [`EXEC_OUTPUT_MAX`] bytes of the file at `path` (none if it is missing).
fn read_tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(EXEC_OUTPUT_MAX as u64)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    output_tail(&bytes)
}
