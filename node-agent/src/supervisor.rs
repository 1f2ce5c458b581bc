//! One placement's life on this agent, as an explicit state machine:
//! `Pending → Staging (pull) → Starting (create, start) → Running →
//! Succeeded | Failed`. Each step is reported through `/status`; a step
//! the state machine does not allow is an error, never a silent overwrite.

use std::sync::Arc;

use berth_api::placement::IllegalTransition;
use berth_api::{Phase, Placement, PlacementStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::runtime::{ContainerSpec, ExitStatus, Runtime, RuntimeError};
use crate::{AgentContext, Error};

/// The container id of a placement: unique, and findable after a restart.
pub fn container_id(p: &Placement) -> String {
    format!("berth-{}", p.uid().unwrap_or_else(|| p.name_any()))
}

/// Label on every container: the UID of its placement.
pub const LABEL_PLACEMENT_UID: &str = "berth.dev/placement-uid";

/// Runs `p` to its end and reports every phase. If it is marked `Lost`
/// meanwhile (the agent was cut off and it was replaced), its container is
/// killed at once rather than left running unreported.
pub async fn supervise<R: Runtime>(p: Placement, ctx: Arc<AgentContext<R>>) -> Result<(), Error> {
    let id = container_id(&p);
    let result = run(p, &ctx).await;
    if matches!(result, Err(Error::Lost(_))) {
        crate::watch::kill_now(&ctx.runtime, &id).await;
    }
    result
}

async fn run<R: Runtime>(p: Placement, ctx: &Arc<AgentContext<R>>) -> Result<(), Error> {
    let ns = p.namespace().unwrap_or_default();
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), &ns);
    let mut reporter = Reporter {
        api,
        name: p.name_any(),
        status: p.status.clone().unwrap_or_default(),
        resource_version: p.resource_version(),
    };
    if reporter.status.phase.is_terminal() {
        return Ok(());
    }
    let id = container_id(&p);
    let exists = ctx.runtime.list().await?.iter().any(|c| c.id == id);
    if !exists {
        if matches!(reporter.status.phase, Phase::Starting | Phase::Running) {
            // The container this placement ran in is gone (e.g. the machine rebooted).
            return reporter.fail(None, "ContainerLost", "its container no longer exists on the agent").await;
        }
        if reporter.status.phase != Phase::Staging {
            reporter.set(Phase::Staging, |_| {}).await?;
        }
        if let Err(e) = ctx.runtime.pull(&p.spec.container.image, None).await {
            let reason = if matches!(e, RuntimeError::ImagePull { .. }) { "ImagePullFailed" } else { "Error" };
            return reporter.fail(None, reason, &e.to_string()).await;
        }
        reporter.set(Phase::Starting, |_| {}).await?;
        let spec = container_spec(&p, &id, ctx)?;
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        }
        if let Err(e) = ctx.runtime.start(&spec).await {
            let _ = ctx.runtime.remove(&id).await;
            return reporter.fail(None, "StartFailed", &e.to_string()).await;
        }
        let now = berth_api::now_rfc3339();
        reporter
            .set(Phase::Running, |s| {
                s.container_id = Some(id.clone());
                s.started_at = Some(now);
            })
            .await?;
        tracing::info!(placement = %p.name_any(), container = %id, "running");
    }
    let exit = ctx.runtime.wait(&id).await?;
    report_exit(&mut reporter, &exit).await?;
    ctx.runtime.remove(&id).await?;
    Ok(())
}

async fn report_exit(r: &mut Reporter, exit: &ExitStatus) -> Result<(), Error> {
    let code = exit.code;
    let finished = exit.finished_at.clone();
    if code == 0 && !exit.oom_killed {
        return r
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
    r.set(Phase::Failed, |s| {
        s.exit_code = Some(code);
        s.reason = Some(reason.into());
        s.message = Some(message);
        s.finished_at = Some(finished);
    })
    .await
}

/// The container a placement asks for.
pub fn container_spec<R: Runtime>(p: &Placement, id: &str, ctx: &AgentContext<R>) -> Result<ContainerSpec, Error> {
    let res = p.spec.container.resources.to_vec().map_err(|e| Error::Config(format!("spec.resources.{e}")))?;
    let ns = p.namespace().unwrap_or_default();
    Ok(ContainerSpec {
        id: id.to_string(),
        image: p.spec.container.image.clone(),
        command: p.spec.container.command.clone(),
        args: p.spec.container.args.clone(),
        env: p.spec.container.env.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
        working_dir: p.spec.container.working_dir.clone(),
        cpu_millis: res.cpu_millis,
        memory_bytes: res.memory_bytes,
        labels: [
            (LABEL_PLACEMENT_UID.to_string(), p.uid().unwrap_or_default()),
            ("berth.dev/placement".to_string(), format!("{ns}/{}", p.name_any())),
        ]
        .into(),
        log_path: ctx.config.log_path(&ns, &p.name_any()),
    })
}

/// Writes a placement's status one legal transition at a time, each write
/// conditional on the placement's resourceVersion: a phase another writer
/// set meanwhile (a placement the allocator refused while it was Pending,
/// or marked Lost) is read back and judged by the state machine, never
/// overwritten.
struct Reporter {
    api: Api<Placement>,
    name: String,
    status: PlacementStatus,
    resource_version: Option<String>,
}

impl Reporter {
    async fn set(&mut self, to: Phase, edit: impl FnOnce(&mut PlacementStatus)) -> Result<(), Error> {
        let phase = self.status.phase.transition(to).map_err(|e: IllegalTransition| Error::Transition(e))?;
        let mut next = self.status.clone();
        next.phase = phase;
        edit(&mut next);
        for _ in 0..5 {
            let patch = serde_json::json!({ "metadata": {"resourceVersion": self.resource_version}, "status": next });
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

    async fn fail(&mut self, code: Option<i32>, reason: &str, message: &str) -> Result<(), Error> {
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
}
