//! The agent's main loop: watch the placements bound to this agent (field
//! selector `spec.agent`), start a supervisor for each new one (and for each
//! ended one still holding the agent finalizer), hand every update to its
//! supervisor (a kill request, a deletion), stop the container of each
//! placement that vanished, and after every (re)list stop containers whose
//! placement is gone. A new `Pending` placement first waits at the claim
//! gate (`claimed`) for its claim in this agent's ledger. After a restart
//! the first list adopts running containers: their supervisors find them
//! by id and wait on them.

use std::collections::HashSet;
use std::sync::Arc;

use berth_api::{Phase, Placement};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::runtime::Runtime;
use crate::supervisor::{LABEL_PLACEMENT_UID, container_id_of, supervise};
use crate::{AgentContext, Error, Supervised, claimed, finalizer, kill};

/// Follows this agent's placements until `shutdown` resolves.
pub async fn watch_placements<R: Runtime>(
    ctx: Arc<AgentContext<R>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let api: Api<Placement> = Api::all(ctx.client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.agent={}", ctx.config.name));
    let mut events = watcher(api, wc).default_backoff().boxed();
    let mut listed: HashSet<String> = HashSet::new();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            e = events.next() => match e { Some(e) => e, None => return Ok(()) },
        };
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(p)) => {
                listed.insert(p.uid().unwrap_or_default());
                ensure_supervised(&ctx, p);
            }
            Ok(watcher::Event::InitDone) => sweep(&ctx, &listed).await,
            Ok(watcher::Event::Apply(p)) => ensure_supervised(&ctx, p),
            Ok(watcher::Event::Delete(p)) => {
                stop(&ctx, &p.uid().unwrap_or_default(), kill::grace(&p, ctx.config.kill_grace))
            }
            Err(e) => tracing::warn!(error = %e, "watching placements failed; retrying"),
        }
    }
}

/// Hands `p` to its supervisor, or starts one (after the claim gate) when
/// `p` still needs this agent: it has not ended, or it still carries the
/// agent finalizer (its container must go before it may). A placement
/// marked `Lost` while this agent was away has been replaced: its container
/// is killed at once, without a grace period or any report.
fn ensure_supervised<R: Runtime>(ctx: &Arc<AgentContext<R>>, p: Placement) {
    ctx.gate.observe(&p);
    let uid = p.uid().unwrap_or_default();
    if p.status.as_ref().is_some_and(|s| s.phase == Phase::Lost) {
        return kill_lost(ctx, &p);
    }
    let mut running = ctx.running.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = running.get(&uid) {
        s.latest.send_replace(p);
        return;
    }
    let terminal = p.status.as_ref().is_some_and(|s| s.phase.is_terminal());
    let deleted = p.metadata.deletion_timestamp.is_some();
    if (terminal || deleted) && !finalizer::holds(&p) {
        return;
    }
    let key = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
    let (latest, rx) = tokio::sync::watch::channel(p.clone());
    let task_ctx = ctx.clone();
    let task_uid = uid.clone();
    let handle = tokio::spawn(async move {
        let name = p.name_any();
        let api: Api<Placement> = Api::namespaced(task_ctx.client.clone(), &p.namespace().unwrap_or_default());
        let result = match claimed::admit(&task_ctx, p).await {
            Ok(Some(p)) => supervise(p, task_ctx.clone(), rx).await,
            // It ended (or went) at the gate: its end is read back, then cleaned up.
            Ok(None) => match api.get_opt(&name).await {
                Ok(Some(p)) => supervise(p, task_ctx.clone(), rx).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(placement = %name, error = %e, "supervising the placement failed");
        }
        task_ctx.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&task_uid);
    });
    running.insert(uid, Supervised { key, abort: handle.abort_handle(), latest });
}

/// Stops the container of the vanished placement `uid` (one deleted without
/// the agent finalizer, or while this agent was away): SIGTERM, SIGKILL
/// after the grace period, then removal.
fn stop<R: Runtime>(ctx: &Arc<AgentContext<R>>, uid: &str, grace: std::time::Duration) {
    if let Some(s) = ctx.running.lock().unwrap_or_else(|e| e.into_inner()).remove(uid) {
        s.abort.abort();
    }
    let ctx = ctx.clone();
    let id = container_id_of(uid);
    tokio::spawn(async move {
        match kill::stop_and_remove(&ctx.runtime, &id, grace).await {
            Ok(true) => tracing::info!(container = %id, "stopped the container of a deleted placement"),
            Ok(false) => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "stopping the container failed"),
        }
    });
}

/// Kills (SIGKILL, no grace: it was already replaced elsewhere) and removes
/// the container of `uid`, a placement marked `Lost`, if this agent has one.
pub(crate) fn kill_lost<R: Runtime>(ctx: &Arc<AgentContext<R>>, p: &Placement) {
    let uid = p.uid().unwrap_or_default();
    if let Some(s) = ctx.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid) {
        s.abort.abort();
    }
    let ctx = ctx.clone();
    let id = container_id_of(&uid);
    // The node-lifecycle controller releases the finalizer of what it marks
    // Lost; one still held (written by another party) goes with the container.
    let held = finalizer::holds(p).then(|| (p.namespace().unwrap_or_default(), p.name_any()));
    tokio::spawn(async move {
        if let Err(e) = kill_now(&ctx.runtime, &id).await {
            tracing::warn!(container = %id, error = %e, "killing the container of a Lost placement failed");
        }
        if let Some((ns, name)) = held
            && let Err(e) = finalizer::release(&Api::namespaced(ctx.client.clone(), &ns), &name).await
        {
            tracing::warn!(placement = %name, error = %e, "releasing the agent finalizer failed");
        }
    });
}

/// SIGKILL, wait, remove: a container that must not run one moment longer
/// (a zero grace period sends SIGKILL at once).
pub(crate) async fn kill_now<R: Runtime>(runtime: &R, id: &str) -> Result<(), crate::runtime::RuntimeError> {
    if kill::stop_and_remove(runtime, id, std::time::Duration::ZERO).await? {
        tracing::warn!(container = %id, "killed the container of a placement marked Lost (replaced elsewhere)");
    }
    Ok(())
}

/// Stops every container of this agent whose placement was not in the last list.
async fn sweep<R: Runtime>(ctx: &Arc<AgentContext<R>>, listed: &HashSet<String>) {
    let containers = match ctx.runtime.list().await {
        Ok(c) => c,
        Err(e) => return tracing::warn!(error = %e, "listing containers failed"),
    };
    for c in containers {
        if let Some(uid) = c.labels.get(LABEL_PLACEMENT_UID)
            && !listed.contains(uid)
        {
            stop(ctx, uid, ctx.config.kill_grace);
        }
    }
}
