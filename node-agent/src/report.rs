//! Writing a placement's status: one legal transition of the state machine
//! at a time, and its end (exit code, reason, message, `finishedAt`) for
//! every way it can end.

use berth_api::placement::IllegalTransition;
use berth_api::{Phase, Placement, PlacementStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::kill::StopCause;
use crate::runtime::ExitStatus;
use crate::{Error, pulling};

/// Writes a placement's status one legal transition at a time, each write
/// conditional on the placement's resourceVersion: a phase another writer
/// set meanwhile (a placement the allocator refused while it was Pending,
/// or marked Lost) is read back and judged by the state machine, never
/// overwritten.
pub struct Reporter {
    api: Api<Placement>,
    pub name: String,
    pub status: PlacementStatus,
    resource_version: Option<String>,
}

impl Reporter {
    pub fn new(api: Api<Placement>, p: &Placement) -> Self {
        Reporter {
            api,
            name: p.name_any(),
            status: p.status.clone().unwrap_or_default(),
            resource_version: p.resource_version(),
        }
    }

    pub async fn set(&mut self, to: Phase, edit: impl FnOnce(&mut PlacementStatus)) -> Result<(), Error> {
        let phase = self.status.phase.transition(to).map_err(|e: IllegalTransition| Error::Transition(e))?;
        let mut next = self.status.clone();
        next.phase = phase;
        edit(&mut next);
        for _ in 0..5 {
            let status = berth_api::patch::merge_patch(Some(&self.status), &next);
            let patch = serde_json::json!({ "metadata": {"resourceVersion": self.resource_version}, "status": status });
            match self.api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(written) => {
                    self.resource_version = written.resource_version();
                    self.status = next;
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // Another writer moved it: its phase stands if ours cannot follow it.
                    let current = self.api.get_status(&self.name).await?;
                    let stored = current.status.clone().unwrap_or_default();
                    if stored.phase == Phase::Lost {
                        return Err(Error::Lost(self.name.clone()));
                    }
                    stored.phase.transition(to).map_err(Error::Transition)?;
                    self.resource_version = current.resource_version();
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Config(format!("placement {}: its status kept changing under the agent", self.name)))
    }

    /// Writes `status.health` of the running placement, its phase unchanged.
    pub async fn health(&mut self, health: berth_api::health::HealthStatus) -> Result<(), Error> {
        let phase = self.status.phase;
        self.set(phase, |s| s.health = Some(health)).await
    }

    /// Ends it `Failed` with `reason` before (or without) an exit of its process.
    pub async fn fail(&mut self, code: Option<i32>, reason: &str, message: &str) -> Result<(), Error> {
        tracing::warn!(placement = %self.name, reason, message, "failed");
        let now = berth_api::now_rfc3339();
        self.set(Phase::Failed, |s| {
            s.exit_code = code;
            s.reason = Some(reason.into());
            s.message = Some(message.into());
            s.finished_at = Some(now);
        })
        .await
    }

    /// Ends it as `cause` says; `exit` is how its process ended, if it ran.
    pub async fn stopped(&mut self, cause: &StopCause, exit: Option<&ExitStatus>) -> Result<(), Error> {
        let (phase, reason, message) = cause.end();
        tracing::info!(placement = %self.name, phase = ?phase, reason, "stopped");
        let finished = exit.map(|e| e.finished_at.clone()).unwrap_or_else(berth_api::now_rfc3339);
        self.set(phase, |s| {
            s.exit_code = exit.map(|e| e.code);
            s.reason = Some(reason);
            s.message = Some(message);
            s.finished_at = Some(finished);
        })
        .await
    }

    /// Ends it by how its process exited on its own.
    pub async fn exited(&mut self, exit: &ExitStatus) -> Result<(), Error> {
        let code = exit.code;
        let finished = exit.finished_at.clone();
        if code == 0 && !exit.oom_killed {
            return self
                .set(Phase::Succeeded, |s| {
                    s.exit_code = Some(0);
                    s.reason = Some("Completed".into());
                    s.finished_at = Some(finished);
                })
                .await;
        }
        let (reason, message) = if exit.oom_killed {
            ("OOMKilled", format!("the container exceeded its memory limit and was killed (exit code {code})"))
        } else {
            ("Error", format!("the container exited with code {code}"))
        };
        self.set(Phase::Failed, |s| {
            s.exit_code = Some(code);
            s.reason = Some(reason.into());
            s.message = Some(message);
            s.finished_at = Some(finished);
        })
        .await
    }
}

impl pulling::BackOffReport for Reporter {
    /// Stays `Staging`, saying the pull waits to be retried and why.
    async fn backing_off(&mut self, message: &str) -> Result<(), Error> {
        self.set(Phase::Staging, |s| {
            s.reason = Some(pulling::REASON_BACK_OFF.into());
            s.message = Some(message.into());
        })
        .await
    }
}
