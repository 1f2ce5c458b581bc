//! The end of a placement's life against a real in-process API server and
//! the agent on the fake runtime: a kill request, a container ignoring
//! SIGTERM, a timeout, a deletion (the agent finalizer holds the placement
//! until its container is gone), a finished placement losing the
//! finalizer at once, and an agent cut off from the API fencing itself.

use berth_agent::fake::Call;
use berth_agent::supervisor::container_id;
use berth_api::job::EnvVar;
use berth_api::placement::FINALIZER_AGENT;
use berth_api::{Container, Phase, Placement};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};

mod support;
use support::{System, claim, create_placement, eventually, placements, status_when};

/// The agent of `support::start`: a 30 s default grace period, no claim wait to speak of.
async fn start() -> System {
    support::start(|_| {}).await
}

/// Creates placement `name` running `container`, claims it and waits until it runs.
async fn run(sys: &System, name: &str, edit: impl FnOnce(&mut Container)) -> Placement {
    let p = create(sys, name, edit).await;
    claim(sys, &p).await;
    status_when(sys, name, "to run", |s| s.phase == Phase::Running).await;
    p
}

/// Creates placement `name` running `container` (not claimed yet).
async fn create(sys: &System, name: &str, edit: impl FnOnce(&mut Container)) -> Placement {
    let p = create_placement(sys, name, edit).await;
    assert_eq!(p.finalizers(), [FINALIZER_AGENT], "the API server adds the agent finalizer");
    p
}

fn kills(sys: &System, p: &Placement) -> Vec<i32> {
    let id = container_id(p);
    sys.fake
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Kill(k, s) = c { (k == id).then_some(s) } else { None })
        .collect()
}

fn removed(sys: &System, p: &Placement) -> bool {
    sys.fake.calls().contains(&Call::Remove(container_id(p)))
}

/// Waits until placement `name` no longer holds the agent finalizer.
async fn released(sys: &System, name: &str) {
    eventually(&format!("{name} to lose the agent finalizer"), async || {
        let p = placements(sys).get(name).await.map_err(|e| e.to_string())?;
        if p.finalizers().is_empty() { Ok(()) } else { Err(format!("{:?}", p.finalizers())) }
    })
    .await;
}

#[tokio::test]
async fn a_kill_request_stops_the_container_with_sigterm_and_ends_killed_with_its_reason() {
    let sys = start().await;
    let p = run(&sys, "evicted", |_| {}).await;
    let kill =
        serde_json::json!({"spec": {"kill": {"reason": "Evicted", "message": "agent agent-1 is being drained"}}});
    placements(&sys).patch("evicted", &PatchParams::default(), &Patch::Merge(&kill)).await.unwrap();

    let done = status_when(&sys, "evicted", "to end Killed", |s| s.phase.is_terminal()).await;
    let st = done.status.clone().unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Killed, Some("Evicted")), "{st:?}");
    assert_eq!(st.message.as_deref(), Some("agent agent-1 is being drained"));
    assert_eq!(st.exit_code, Some(128 + libc::SIGTERM), "the process ended on SIGTERM");
    assert!(st.started_at.is_some() && st.finished_at.is_some(), "{st:?}");
    assert_eq!(kills(&sys, &p), [libc::SIGTERM], "no SIGKILL for a process that stops on SIGTERM");
    released(&sys, "evicted").await;
    assert!(removed(&sys, &p), "its container is removed: {:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_container_ignoring_sigterm_gets_sigkill_after_its_grace_period() {
    let sys = start().await;
    let p = run(&sys, "stubborn", |c| {
        c.env.push(EnvVar { name: "FAKE_IGNORE_TERM".into(), value: "1".into() });
        c.termination_grace_period_seconds = Some(1);
    })
    .await;
    let kill = serde_json::json!({"spec": {"kill": {"reason": "Stop"}}});
    placements(&sys).patch("stubborn", &PatchParams::default(), &Patch::Merge(&kill)).await.unwrap();

    let done = status_when(&sys, "stubborn", "to end Killed", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Killed, Some("Stop")), "{st:?}");
    assert_eq!(st.exit_code, Some(128 + libc::SIGKILL), "{st:?}");
    assert_eq!(kills(&sys, &p), [libc::SIGTERM, libc::SIGKILL]);
}

#[tokio::test]
async fn a_container_past_its_timeout_is_stopped_and_fails_deadline_exceeded() {
    let sys = start().await;
    // Not `run`: on a loaded machine the one second can pass before a poll sees it Running.
    let p = create(&sys, "slowpoke", |c| c.timeout_seconds = Some(1)).await;
    claim(&sys, &p).await;

    let done = status_when(&sys, "slowpoke", "to time out", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert!(st.started_at.is_some(), "it ran before it timed out: {st:?}");
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Failed, Some("DeadlineExceeded")), "{st:?}");
    assert!(st.message.as_deref().unwrap_or_default().contains("timeoutSeconds (1s)"), "{st:?}");
    assert_eq!(st.exit_code, Some(128 + libc::SIGTERM));
    assert_eq!(kills(&sys, &p), [libc::SIGTERM]);
}

#[tokio::test]
async fn a_deleted_placement_stays_until_its_container_is_removed() {
    let sys = start().await;
    let p = run(&sys, "doomed", |c| {
        c.env.push(EnvVar { name: "FAKE_IGNORE_TERM".into(), value: "1".into() });
        c.termination_grace_period_seconds = Some(2);
    })
    .await;
    placements(&sys).delete("doomed", &DeleteParams::default()).await.unwrap();

    // Within its grace period the process still runs, and the placement stays.
    let terminating = eventually("the agent to send SIGTERM", async || {
        let calls = kills(&sys, &p);
        let now = placements(&sys).get_opt("doomed").await.map_err(|e| e.to_string())?;
        if calls.is_empty() { Err(format!("no kill yet; {:?}", now.map(|p| p.metadata))) } else { Ok(now) }
    })
    .await;
    if !removed(&sys, &p) {
        let t = terminating.expect("a placement whose container is not removed yet is still stored");
        assert!(t.metadata.deletion_timestamp.is_some(), "it is Terminating");
    }
    eventually("the placement to be gone", async || match placements(&sys).get_opt("doomed").await {
        Ok(None) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    assert!(removed(&sys, &p), "gone only once its container was removed: {:?}", sys.fake.calls());
    assert_eq!(kills(&sys, &p), [libc::SIGTERM, libc::SIGKILL]);
}

#[tokio::test]
async fn a_finished_placement_loses_the_finalizer_and_deletes_at_once() {
    let sys = start().await;
    let p = run(&sys, "done", |_| {}).await;
    sys.fake.release(&container_id(&p), 3);
    let done = status_when(&sys, "done", "to fail", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref(), st.exit_code), (Phase::Failed, Some("Error"), Some(3)), "{st:?}");
    released(&sys, "done").await;
    assert!(removed(&sys, &p));
    placements(&sys).delete("done", &DeleteParams::default()).await.unwrap();
    assert!(placements(&sys).get_opt("done").await.unwrap().is_none(), "nothing holds it any more");
}

#[tokio::test]
async fn a_placement_killed_while_it_waits_for_its_claim_ends_killed_without_starting() {
    let sys = start().await;
    let p = create(&sys, "early", |_| {}).await;
    let kill = serde_json::json!({"spec": {"kill": {"reason": "Evicted", "message": "drained"}}});
    placements(&sys).patch("early", &PatchParams::default(), &Patch::Merge(&kill)).await.unwrap();

    let done = status_when(&sys, "early", "to end Killed", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref(), st.exit_code), (Phase::Killed, Some("Evicted"), None), "{st:?}");
    released(&sys, "early").await;
    let id = container_id(&p);
    assert!(
        !sys.fake.calls().iter().any(|c| matches!(c, Call::Pull(_)) || *c == Call::Start(id.clone())),
        "nothing was pulled or started: {:?}",
        sys.fake.calls()
    );
}

#[tokio::test]
async fn a_fencing_agent_cut_off_kills_its_containers_and_reports_them_lost_when_back() {
    let fencing = |c: &mut berth_agent::AgentConfig| {
        c.heartbeat = std::time::Duration::from_millis(200);
        c.fence_after = Some(std::time::Duration::from_secs(1));
    };
    let sys = support::start_with(fencing, true).await;
    let p = run(&sys, "cut-off", |_| {}).await;
    let proxy = sys.proxy.as_ref().expect("the agent is behind a proxy");

    proxy.cut();
    let signals = eventually("the container to be killed while the agent is cut off", async || {
        let k = kills(&sys, &p);
        if k.is_empty() { Err(format!("{:?}", sys.fake.calls())) } else { Ok(k) }
    })
    .await;
    assert_eq!(signals, [libc::SIGKILL], "no grace period for a fenced agent");
    let seen = placements(&sys).get("cut-off").await.unwrap().status.unwrap_or_default();
    assert_eq!(seen.phase, Phase::Running, "cut off, the agent could not report it yet: {seen:?}");

    proxy.heal();
    let done = status_when(&sys, "cut-off", "to be reported Lost", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Lost, Some("AgentDisconnected")), "{st:?}");
    assert!(st.message.as_deref().unwrap_or_default().contains("--fence-after-seconds"), "{st:?}");
    released(&sys, "cut-off").await;
    assert!(removed(&sys, &p), "its container is removed: {:?}", sys.fake.calls());
    run(&sys, "after", |_| {}).await;
}
