//! The simulated agents' placements: ONE watch over all placements (not one
//! per agent) hands each placement bound to a simulated agent to its own
//! small task, and ONE watch over all agents keeps each simulated agent's
//! ledger. Each task lives the placement's life as `berth agent` would,
//! without a container: it waits at the claim gate (a `Pending` placement
//! starts only once its agent's ledger holds its claim, and is then written
//! `Running` (`startedAt`, the claim's host ports) in one write, on the
//! condition that it has not changed — no `Staging`, as there is nothing
//! to pull), and after
//! `--task-duration` ends `Succeeded` with exit code 0 — or `Killed` with
//! the reason of its `spec.kill`, or `Killed`/`Deleted` once deleted. Its
//! end written, it releases the agent finalizer (`berth.dev/agent`), as the
//! real agent does once the container is gone. It releases nothing else:
//! the controllers release claims. One still unclaimed after
//! `--claim-wait-seconds` is marked `Failed`/`Unclaimed`, as the real agent
//! marks it. A task whose environment sets
//! [`DURATION_ENV`] (`seconds`, or `forever`) runs that long instead of
//! `--task-duration`, so one benchmark can mix short and long tasks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_agent::kill::{self, StopCause};
use berth_agent::report::Reporter;
use berth_agent::runtime::ExitStatus;
use berth_agent::{Error, claimed, finalizer};
use berth_api::{Agent, Claim, Phase, Placement};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use super::Sim;

/// A task's environment variable that overrides `--task-duration` for it.
pub const DURATION_ENV: &str = "BERTH_SIM_DURATION";

/// Each simulated agent's ledger; `None` until its `Agent` has been seen.
type Ledgers = Arc<HashMap<String, watch::Sender<Option<Vec<Claim>>>>>;

/// Follows every placement (and every agent's ledger) until the watch ends.
pub(super) async fn follow(sim: Arc<Sim>, names: Vec<String>) -> anyhow::Result<()> {
    let ledgers: Ledgers = Arc::new(names.into_iter().map(|n| (n, watch::Sender::new(None))).collect());
    tokio::spawn(follow_ledgers(sim.clone(), ledgers.clone()));
    let live: Arc<Mutex<HashMap<String, watch::Sender<Placement>>>> = Default::default();
    let api: Api<Placement> = Api::all(sim.client.clone());
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let p = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            Ok(watcher::Event::Delete(p)) => {
                live.lock().unwrap_or_else(|e| e.into_inner()).remove(&p.uid().unwrap_or_default());
                continue;
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "watching placements failed; retrying");
                continue;
            }
        };
        let Some(ledger) = ledgers.get(&p.spec.agent) else { continue };
        let uid = p.uid().unwrap_or_default();
        let mut tasks = live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tasks.get(&uid) {
            tx.send_replace(p);
            continue;
        }
        if !needs_agent(&p) {
            continue;
        }
        sim.stats.seen.fetch_add(1, Ordering::Relaxed);
        sim.stats.last_seen.store(super::unix_ms(), Ordering::Relaxed);
        let (tx, rx) = watch::channel(p);
        tasks.insert(uid.clone(), tx);
        let (sim, live, ledger) = (sim.clone(), live.clone(), ledger.subscribe());
        tokio::spawn(async move {
            let name = rx.borrow().name_any();
            if let Err(e) = life(&sim, ledger, rx).await {
                sim.error(&name, "reporting its placement", &e);
            }
            live.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
        });
    }
    Ok(())
}

/// True when `p` still needs its agent: it has not ended, or it still
/// carries the agent finalizer.
fn needs_agent(p: &Placement) -> bool {
    let terminal = p.status.as_ref().is_some_and(|s| s.phase.is_terminal());
    (!terminal && p.metadata.deletion_timestamp.is_none()) || finalizer::holds(p)
}

/// Keeps each simulated agent's ledger from one watch over all agents.
async fn follow_ledgers(sim: Arc<Sim>, ledgers: Ledgers) {
    let api: Api<Agent> = Api::all(sim.client.clone());
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                if let Some(tx) = ledgers.get(&a.name_any()) {
                    tx.send_replace(Some(a.status.map(|s| s.claims).unwrap_or_default()));
                }
            }
            Ok(watcher::Event::Delete(a)) => {
                if let Some(tx) = ledgers.get(&a.name_any()) {
                    tx.send_replace(Some(Vec::new()));
                }
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => tracing::warn!(error = %e, "watching agents failed; retrying"),
        }
    }
}

/// One placement's simulated life, gate to finalizer.
async fn life(
    sim: &Sim,
    ledger: watch::Receiver<Option<Vec<Claim>>>,
    mut latest: watch::Receiver<Placement>,
) -> Result<(), Error> {
    let p = latest.borrow().clone();
    let api: Api<Placement> = Api::namespaced(sim.client.clone(), &p.namespace().unwrap_or_default());
    if p.status.as_ref().is_some_and(|s| s.phase == Phase::Lost) {
        // Marked Lost (its agent was judged gone): nothing runs, nothing to report.
        return release(&api, &p).await;
    }
    let wait = Duration::from_secs(sim.args.claim_wait_seconds);
    let Some(p) = admit(&api, ledger, &mut latest, wait).await? else {
        let last = latest.borrow().clone();
        return release(&api, &last).await;
    };
    let mut reporter = Reporter::new(api.clone(), &p);
    match run(sim, &mut reporter, &p, &mut latest).await {
        Err(Error::Transition(_) | Error::Lost(_)) => {}
        other => other?,
    }
    let last = latest.borrow().clone();
    release(&api, &last).await
}

/// Releases the agent finalizer of `p` if it holds it (or is being deleted).
async fn release(api: &Api<Placement>, p: &Placement) -> Result<(), Error> {
    if finalizer::holds(p) || p.metadata.deletion_timestamp.is_some() {
        finalizer::release(api, &p.name_any()).await?;
    }
    Ok(())
}

/// The agent's claim gate (`claimed::wait_for_claim`): `Some` (its latest
/// version) once `p` is `Staging`, or `None` once it ended (or was asked to
/// stop) while `Pending` — a stop then reported as the agent reports it.
async fn admit(
    api: &Api<Placement>,
    mut ledger: watch::Receiver<Option<Vec<Claim>>>,
    latest: &mut watch::Receiver<Placement>,
    wait: Duration,
) -> Result<Option<Placement>, Error> {
    let (agent, uid) = {
        let p = latest.borrow();
        (p.spec.agent.clone(), p.uid().unwrap_or_default())
    };
    // Nothing to pull and no container to create: from Pending straight to
    // Running, in the one write that takes the claim (a transition the API
    // allows), as an agent with a fast runtime and the image cached would.
    let begin = |ports: &[u16]| {
        let mut status = claimed::ports_status(ports);
        status["containerId"] = format!("sim-{uid}").into();
        status["startedAt"] = berth_api::now_rfc3339().into();
        (Phase::Running, status)
    };
    if let Some(p) = claimed::wait_for_claim_then(api, &agent, wait, latest, &mut ledger, begin).await? {
        return Ok(Some(p));
    }
    let p = latest.borrow().clone();
    let pending = p.status.as_ref().is_none_or(|s| !s.phase.is_terminal());
    if let Some(cause) = kill::requested(&p).filter(|_| pending) {
        match Reporter::new(api.clone(), &p).stopped(&cause, None).await {
            Err(Error::Transition(_) | Error::Lost(_)) | Ok(()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// From `Staging` (or wherever an earlier run left it) to its end.
async fn run(
    sim: &Sim,
    reporter: &mut Reporter,
    p: &Placement,
    latest: &mut watch::Receiver<Placement>,
) -> Result<(), Error> {
    // Admitted straight to Running (see `admit`); one left Staging or
    // Starting by an earlier run of the simulator goes on from there.
    if matches!(reporter.status.phase, Phase::Staging | Phase::Starting) {
        let id = format!("sim-{}", p.uid().unwrap_or_default());
        let now = berth_api::now_rfc3339();
        reporter
            .set(Phase::Running, |s| {
                s.container_id = Some(id);
                s.started_at = Some(now);
            })
            .await?;
    }
    sim.stats.running.fetch_add(1, Ordering::Relaxed);
    sim.stats.last_running.store(super::unix_ms(), Ordering::Relaxed);
    let (duration, forever) = duration_of(sim, p);
    tokio::select! {
        _ = tokio::time::sleep(duration), if !forever => {
            let exit = ExitStatus { code: 0, oom_killed: false, finished_at: berth_api::now_rfc3339() };
            reporter.exited(&exit).await?;
            sim.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        cause = stop_requested(latest) => {
            // A process stopped by SIGTERM exits with 128 + 15.
            let exit = ExitStatus { code: 128 + 15, oom_killed: false, finished_at: berth_api::now_rfc3339() };
            reporter.stopped(&cause, Some(&exit)).await?;
            sim.stats.killed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// How long `p` runs: its [`DURATION_ENV`], else `--task-duration`; or forever.
fn duration_of(sim: &Sim, p: &Placement) -> (Duration, bool) {
    let default = (Duration::from_secs_f64(sim.args.task_duration), sim.args.run_forever);
    let Some(env) = p.spec.container.env.iter().find(|e| e.name == DURATION_ENV) else { return default };
    match env.value.as_str() {
        "forever" => (Duration::ZERO, true),
        v => match v.parse::<f64>() {
            Ok(s) if s >= 0.0 && s.is_finite() => (Duration::from_secs_f64(s), false),
            _ => default,
        },
    }
}

/// Resolves with the first stop the placement asks for (`spec.kill`, deletion).
async fn stop_requested(latest: &mut watch::Receiver<Placement>) -> StopCause {
    loop {
        if let Some(cause) = kill::requested(&latest.borrow_and_update()) {
            return cause;
        }
        if latest.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
