//! The stop path: why a placement's container is stopped, and how — SIGTERM,
//! then SIGKILL once its grace period has passed, then removal.
//!
//! A container is stopped when its placement asks for it (`spec.kill`), is
//! deleted (`deletionTimestamp`, kept by the agent finalizer until the
//! container is gone), runs past `timeoutSeconds`, or fails a health check
//! `maxConsecutiveFailures` times in a row (`health`). Each cause ends the
//! placement in its own way ([`StopCause::end`]).

use std::time::Duration;

use berth_api::health::REASON_UNHEALTHY;
use berth_api::{Phase, Placement};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::runtime::{ExitStatus, Runtime, RuntimeError};

/// `status.reason` of a placement stopped because it was deleted.
pub const REASON_DELETED: &str = "Deleted";
/// `status.reason` of a placement stopped because it ran past `timeoutSeconds`.
pub const REASON_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// Why a running placement is stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// `spec.kill` was set: ends `Killed` with its reason and message.
    Requested { reason: String, message: Option<String> },
    /// The placement was deleted: ends `Killed`/`Deleted`.
    Deleted,
    /// It ran past `timeoutSeconds`: ends `Failed`/`DeadlineExceeded`.
    Timeout(u64),
    /// A health check failed `maxConsecutiveFailures` times in a row; the
    /// message is what it last saw. Ends `Failed`/`Unhealthy`.
    Unhealthy(String),
    /// The agent could not renew its Lease for this many seconds and fenced
    /// itself ([`crate::fence`]): killed at once, ends `Lost`/`AgentDisconnected`.
    Disconnected(u64),
}

impl StopCause {
    /// The phase, reason and message the placement ends with.
    pub fn end(&self) -> (Phase, String, String) {
        match self {
            StopCause::Requested { reason, message } => (
                Phase::Killed,
                reason.clone(),
                message.clone().unwrap_or_else(|| "the placement was killed on request (spec.kill)".into()),
            ),
            StopCause::Deleted => (Phase::Killed, REASON_DELETED.into(), "the placement was deleted".into()),
            StopCause::Timeout(s) => (
                Phase::Failed,
                REASON_DEADLINE_EXCEEDED.into(),
                format!("the container ran longer than its timeoutSeconds ({s}s) and was stopped"),
            ),
            StopCause::Unhealthy(message) => (Phase::Failed, REASON_UNHEALTHY.into(), message.clone()),
            StopCause::Disconnected(s) => (
                Phase::Lost,
                crate::fence::REASON_AGENT_DISCONNECTED.into(),
                format!(
                    "its agent could not renew its Lease for {s}s and stopped it (--fence-after-seconds), \
                     so it cannot run beside its replacement"
                ),
            ),
        }
    }
}

/// The stop `p` asks for now, if any: deletion first, then `spec.kill`.
pub fn requested(p: &Placement) -> Option<StopCause> {
    if p.metadata.deletion_timestamp.is_some() {
        return Some(StopCause::Deleted);
    }
    let kill = p.spec.kill.as_ref()?;
    Some(StopCause::Requested { reason: kill.reason.clone(), message: kill.message.clone() })
}

/// When the container of `p` must be stopped for running too long: its
/// `timeoutSeconds` after `status.startedAt` (so the deadline survives an
/// agent restart), as an instant on this process's clock.
pub fn deadline(p: &Placement) -> Option<(Instant, u64)> {
    let secs = p.spec.container.timeout_seconds?;
    let started = p.status.as_ref()?.started_at.as_deref()?.parse::<jiff::Timestamp>().ok()?;
    let elapsed = jiff::Timestamp::now().duration_since(started);
    let left = Duration::from_secs(secs).saturating_sub(elapsed.unsigned_abs());
    Some((Instant::now() + left, secs))
}

/// Resolves with the first stop `latest` asks for, with the timeout once
/// `deadline` passes, or when the agent fences itself. Never resolves if none comes.
pub async fn stop_requested(
    latest: &mut watch::Receiver<Placement>,
    deadline: Option<(Instant, u64)>,
    fence: &mut crate::fence::Watch,
) -> StopCause {
    tokio::select! {
        cause = requested_or_timeout(latest, deadline) => cause,
        after = fence.fenced() => StopCause::Disconnected(after.as_secs()),
    }
}

async fn requested_or_timeout(latest: &mut watch::Receiver<Placement>, deadline: Option<(Instant, u64)>) -> StopCause {
    loop {
        if let Some(cause) = requested(&latest.borrow_and_update()) {
            return cause;
        }
        tokio::select! {
            changed = latest.changed() => if changed.is_err() {
                // No more updates: only the deadline can stop it now.
                return match deadline {
                    Some((at, secs)) => { tokio::time::sleep_until(at).await; StopCause::Timeout(secs) }
                    None => std::future::pending().await,
                };
            },
            _ = async { tokio::time::sleep_until(deadline.map(|d| d.0).unwrap_or_else(Instant::now)).await },
                if deadline.is_some() => return StopCause::Timeout(deadline.map(|d| d.1).unwrap_or_default()),
        }
    }
}

/// The grace period of `p`: its `terminationGracePeriodSeconds`, else `default`.
pub fn grace(p: &Placement, default: Duration) -> Duration {
    p.spec.container.termination_grace_period_seconds.map(Duration::from_secs).unwrap_or(default)
}

/// The grace period of `p` stopped for `cause`: none when the agent fenced
/// itself (its replacement may start as soon as the TTL passes).
pub fn grace_for(cause: &StopCause, p: &Placement, default: Duration) -> Duration {
    match cause {
        StopCause::Disconnected(_) => Duration::ZERO,
        _ => grace(p, default),
    }
}

/// Stops container `id`: SIGTERM, and SIGKILL if it still runs after
/// `grace` (at once when `grace` is zero). Returns how its process ended.
pub async fn terminate<R: Runtime>(runtime: &R, id: &str, grace: Duration) -> Result<ExitStatus, RuntimeError> {
    if grace.is_zero() {
        runtime.kill(id, libc::SIGKILL).await?;
        return runtime.wait(id).await;
    }
    runtime.kill(id, libc::SIGTERM).await?;
    match tokio::time::timeout(grace, runtime.wait(id)).await {
        Ok(exit) => exit,
        Err(_) => {
            tracing::info!(container = %id, grace_seconds = grace.as_secs(), "still running after SIGTERM; sending SIGKILL");
            runtime.kill(id, libc::SIGKILL).await?;
            runtime.wait(id).await
        }
    }
}

/// Stops (if it runs) and removes container `id`; true if there was one.
pub async fn stop_and_remove<R: Runtime>(runtime: &R, id: &str, grace: Duration) -> Result<bool, RuntimeError> {
    let Some(c) = runtime.get(id).await? else { return Ok(false) };
    if c.running {
        terminate(runtime, id, grace).await?;
    }
    runtime.remove(id).await?;
    Ok(true)
}
