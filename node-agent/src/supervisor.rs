//! One placement's life on this agent, as an explicit state machine:
//! `Pending → Staging (pull) → Starting (create, start) → Running →
//! Succeeded | Failed | Killed`. Each step is reported through `/status`
//! (`report`); a step the state machine does not allow is an error, never a
//! silent overwrite. While it runs, the supervisor follows the placement's
//! updates: a kill request, a deletion, its timeout or a failing health
//! check (`health`) stops the container (`kill`). However it ends, its container is removed and then the agent
//! finalizer released (`finalizer`), so the placement — and its claim — goes
//! only once nothing of it runs on the machine.

use std::sync::Arc;

use berth_api::{Phase, Placement};
use kube::ResourceExt;
use kube::api::Api;
use tokio::sync::watch;

use crate::kill::{self, StopCause};
use crate::pulling::{self, Pulled};
use crate::report::Reporter;
use crate::runtime::{BindMount, ContainerSpec, ExitStatus, Runtime, RuntimeError};
use crate::{AgentContext, Error, finalizer};

/// The container id of a placement: unique, and findable after a restart.
pub fn container_id(p: &Placement) -> String {
    container_id_of(&p.uid().unwrap_or_else(|| p.name_any()))
}

/// The container id of the placement with UID `uid`.
pub fn container_id_of(uid: &str) -> String {
    format!("berth-{uid}")
}

/// Label on every container: the UID of its placement.
pub const LABEL_PLACEMENT_UID: &str = "berth.dev/placement-uid";

/// Runs `p` to its end, reports every phase, removes its container and
/// releases the agent finalizer. `latest` carries newer versions of `p`.
pub async fn supervise<R: Runtime>(
    p: Placement,
    ctx: Arc<AgentContext<R>>,
    mut latest: watch::Receiver<Placement>,
) -> Result<(), Error> {
    let ns = p.namespace().unwrap_or_default();
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), &ns);
    let mut reporter = Reporter::new(api.clone(), &p);
    let id = container_id(&p);
    if !reporter.status.phase.is_terminal() {
        match run(&p, &ctx, &mut reporter, &id, &mut latest).await {
            // Another writer ended it meanwhile: its end stands.
            Err(Error::Transition(e)) => tracing::info!(placement = %p.name_any(), %e, "ended by another writer"),
            // Marked Lost (the agent was cut off) and replaced elsewhere: its
            // container is killed at once rather than left running unreported.
            Err(Error::Lost(name)) => {
                tracing::warn!(placement = %name, "marked Lost while it ran here; killing its container");
                crate::watch::kill_now(&ctx.runtime, &id).await?;
            }
            other => other?,
        }
    }
    // Terminal: nothing of it may keep running here.
    let p = latest.borrow().clone();
    if kill::stop_and_remove(&ctx.runtime, &id, kill::grace(&p, ctx.config.kill_grace)).await? {
        tracing::info!(placement = %p.name_any(), container = %id, "removed its container");
        ctx.images.container_removed(&p.spec.container.image);
    }
    if finalizer::holds(&p) || p.metadata.deletion_timestamp.is_some() {
        finalizer::release(&api, &p.name_any()).await?;
    }
    Ok(())
}

/// The state machine from wherever `p` is to a terminal phase.
async fn run<R: Runtime>(
    p: &Placement,
    ctx: &AgentContext<R>,
    reporter: &mut Reporter,
    id: &str,
    latest: &mut watch::Receiver<Placement>,
) -> Result<(), Error> {
    let mut fence = crate::fence::Watch::of(ctx);
    let exists = ctx.runtime.get(id).await?.is_some();
    if !exists {
        let asked = kill::requested(&latest.borrow());
        if let Some(cause) = asked {
            // Stopped before its container ever ran (or after it was lost).
            return reporter.stopped(&cause, None).await;
        }
        if matches!(reporter.status.phase, Phase::Starting | Phase::Running) {
            // The container this placement ran in is gone (e.g. the machine rebooted).
            return reporter.fail(None, "ContainerLost", "its container no longer exists on the agent").await;
        }
        if let Some(refused) = crate::policy::refuse(p, ctx).await? {
            return reporter.fail(None, refused.reason, &refused.message).await;
        }
        if reporter.status.phase != Phase::Staging {
            reporter.set(Phase::Staging, |_| {}).await?;
        }
        // Held until the container exists, so the image collector leaves the image be.
        // A stop request ends a pull still retrying.
        let pulled: Result<Pulled, StopCause> = tokio::select! {
            pulled = pulling::pull(ctx, p, reporter) => Ok(pulled?),
            cause = kill::stop_requested(latest, None, &mut fence) => Err(cause),
        };
        let _image = match pulled {
            Ok(Pulled::Ready(hold)) => hold,
            Ok(Pulled::Failed { reason, message }) => return reporter.fail(None, reason, &message).await,
            Err(cause) => return end(reporter, &cause, None).await,
        };
        let asked = kill::requested(&latest.borrow());
        if let Some(cause) = asked {
            return reporter.stopped(&cause, None).await;
        }
        if fence.is_fenced() {
            let cause = StopCause::Disconnected(ctx.config.fence_after.unwrap_or_default().as_secs());
            return end(reporter, &cause, None).await;
        }
        reporter
            .set(Phase::Starting, |s| {
                s.reason = None;
                s.message = None;
            })
            .await?;
        let spec = container_spec(p, id, ctx)?;
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        }
        if let Err(e) = ctx.runtime.start(&spec).await {
            let _ = ctx.runtime.remove(id).await;
            let reason = match e {
                RuntimeError::Policy(_) => crate::policy::REASON_POLICY_VIOLATION,
                _ => "StartFailed",
            };
            return reporter.fail(None, reason, &e.to_string()).await;
        }
        let now = berth_api::now_rfc3339();
        reporter
            .set(Phase::Running, |s| {
                s.container_id = Some(id.to_string());
                s.started_at = Some(now);
            })
            .await?;
        tracing::info!(placement = %p.name_any(), container = %id, "running");
    }
    // Running (started now, or adopted after a restart): until it exits or is stopped.
    let mut timed = p.clone();
    timed.status = Some(reporter.status.clone());
    let deadline = kill::deadline(&timed);
    // Its health checks run alongside, and stop it once one fails too often.
    let checks = &p.spec.container.health_checks;
    let ended: Result<StopCause, Result<ExitStatus, Error>> = tokio::select! {
        exit = ctx.runtime.wait(id) => Err(exit.map_err(Error::from)),
        cause = kill::stop_requested(latest, deadline, &mut fence) => Ok(cause),
        verdict = crate::health::watch(&ctx.runtime, id, checks, reporter) => verdict.map_err(Err),
    };
    let cause = match ended {
        Ok(cause) => cause,
        Err(exit) => return reporter.exited(&exit?).await,
    };
    let grace = kill::grace_for(&cause, &latest.borrow(), ctx.config.kill_grace);
    tracing::info!(placement = %p.name_any(), ?cause, grace_seconds = grace.as_secs(), "stopping its container");
    let exit = kill::terminate(&ctx.runtime, id, grace).await?;
    end(reporter, &cause, Some(&exit)).await
}

/// Reports the stop; a fenced agent cannot reach the API yet, so it tries
/// again every second until it can (or the placement was ended meanwhile).
async fn end(
    reporter: &mut Reporter,
    cause: &StopCause,
    exit: Option<&crate::runtime::ExitStatus>,
) -> Result<(), Error> {
    loop {
        match reporter.stopped(cause, exit).await {
            Err(Error::Kube(e)) if matches!(cause, StopCause::Disconnected(_)) => {
                tracing::debug!(error = %e, "reporting a fenced placement failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// The container a placement asks for.
pub fn container_spec<R: Runtime>(p: &Placement, id: &str, ctx: &AgentContext<R>) -> Result<ContainerSpec, Error> {
    let res = p.spec.container.resources.to_vec().map_err(|e| Error::Config(format!("spec.resources.{e}")))?;
    let ns = p.namespace().unwrap_or_default();
    let security = p.spec.container.security_context.as_ref();
    Ok(ContainerSpec {
        id: id.to_string(),
        image: p.spec.container.image.clone(),
        command: p.spec.container.command.clone(),
        args: p.spec.container.args.clone(),
        env: attempt_env(p)
            .into_iter()
            .chain(port_env(p))
            .chain(p.spec.container.env.iter().map(|e| (e.name.clone(), e.value.clone())))
            .collect(),
        working_dir: p.spec.container.working_dir.clone(),
        cpu_millis: res.cpu_millis,
        memory_bytes: res.memory_bytes,
        run_as_user: security.and_then(|s| s.run_as_user),
        run_as_group: security.and_then(|s| s.run_as_group),
        run_as_non_root: ctx.config.policy.forbid_root,
        read_only_root: security.is_some_and(|s| s.read_only_root_filesystem),
        mounts: p
            .spec
            .container
            .mounts
            .iter()
            .map(|m| BindMount {
                source: m.host_path.clone().into(),
                destination: m.path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        labels: [
            (LABEL_PLACEMENT_UID.to_string(), p.uid().unwrap_or_default()),
            ("berth.dev/placement".to_string(), format!("{ns}/{}", p.name_any())),
        ]
        .into(),
        log_path: ctx.config.log_path(&ns, &p.name_any()),
    })
}

/// `PORT0…`, `PORT` and `PORT_<NAME>` for the host ports in `p`'s status
/// (given by the claim gate from its claim); a variable the placement's own
/// `env` sets comes after these, so it wins.
fn port_env(p: &Placement) -> Vec<(String, String)> {
    let ports = p.status.as_ref().map(|s| s.ports.as_slice()).unwrap_or_default();
    berth_api::ports::env(&p.spec.container.ports, ports)
}

/// `BERTH_JOB`, `BERTH_TASK_GROUP`, `BERTH_INSTANCE`, `BERTH_ATTEMPT` (0 for
/// the first) and `BERTH_PLACEMENT`: which task instance and which attempt
/// of it the container is, so a task can tell a retry from its first run,
/// or split work by instance. The placement's own `env` comes after, so it wins.
fn attempt_env(p: &Placement) -> Vec<(String, String)> {
    [
        ("BERTH_JOB", p.spec.job.clone()),
        ("BERTH_TASK_GROUP", p.spec.task_group.clone()),
        ("BERTH_INSTANCE", p.spec.instance.to_string()),
        ("BERTH_ATTEMPT", p.spec.attempt.to_string()),
        ("BERTH_PLACEMENT", p.name_any()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use berth_api::{Placement, PlacementSpec};

    #[test]
    fn a_container_is_told_its_job_group_instance_and_attempt() {
        let spec = PlacementSpec {
            job: "etl".into(),
            task_group: "load".into(),
            instance: 2,
            attempt: 3,
            ..Default::default()
        };
        let env = super::attempt_env(&Placement::new("etl-load-2-3", spec));
        let expected = [
            ("BERTH_JOB", "etl"),
            ("BERTH_TASK_GROUP", "load"),
            ("BERTH_INSTANCE", "2"),
            ("BERTH_ATTEMPT", "3"),
            ("BERTH_PLACEMENT", "etl-load-2-3"),
        ];
        assert_eq!(env, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }
}
