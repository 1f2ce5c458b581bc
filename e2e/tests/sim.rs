//! Simulated agents, end to end: `berth apiserver`, `berth controllers`
//! (agent TTL [`TTL`] s) and `berth sim --agents 50`, no containerd. A Job
//! of 500 instances runs to `Complete` on the simulated agents through the
//! real API (claim gate, `Running`, `Succeeded`, finalizer released, claims
//! released by the controllers); a task asked to stop ends `Killed` with
//! its reason. Then the simulator is killed with SIGKILL and the
//! node-lifecycle controller marks its agents NotReady and the placements
//! still running on them `Lost`.

use std::time::Duration;

use berth_api::placement::REASON_AGENT_LOST;
use berth_api::{Agent, ClaimKind, Phase, Placement};
use berth_e2e::ShellJob;
use berth_e2e::berth::Berth;

const AGENTS: usize = 50;
const INSTANCES: usize = 500;
/// The controllers' `--agent-ttl-seconds`.
const TTL: &str = "4";
const WAIT: Duration = Duration::from_secs(60);
/// No simulated container pulls it; any reference does.
const IMAGE: &str = "registry.invalid/berth/sim:latest";

fn list<T: serde::de::DeserializeOwned>(b: &Berth, plural: &str) -> Result<Vec<T>, String> {
    let out = b.kubectl(&["get", "--raw", &format!("/apis/berth.dev/v1alpha1/{plural}")]);
    if !out.status.success() {
        return Err(berth_e2e::output_text(&out));
    }
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    serde_json::from_value(list["items"].clone()).map_err(|e| e.to_string())
}

fn phase(p: &Placement) -> Phase {
    p.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// Placements of `job` by phase, for timeout messages.
fn summary(ps: &[Placement], job: &str) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for p in ps.iter().filter(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with(job))) {
        let reason = p.status.as_ref().and_then(|s| s.reason.clone()).unwrap_or_default();
        *counts.entry(format!("{:?}/{reason}", phase(p))).or_insert(0) += 1;
    }
    format!("{job}: {counts:?}")
}

/// `Ok` once `n` placements of `job` are Running.
fn running(b: &Berth, job: &str, n: usize) -> Result<(), String> {
    let ps: Vec<Placement> = list(b, "placements")?;
    let count = ps.iter().filter(|p| p.spec.job == job && phase(p) == Phase::Running).count();
    if count == n { Ok(()) } else { Err(summary(&ps, job)) }
}

fn ready(a: &Agent) -> Option<String> {
    a.status.as_ref().and_then(|s| berth_api::condition::find(&s.conditions, "Ready")).map(|c| c.status.clone())
}

#[test]
fn a_job_runs_on_simulated_agents_and_their_loss_is_noticed() {
    // Each agent runs one of the Job's tasks at a time (50m each), so the
    // controllers claim only as many as they create placements for within
    // their orphan grace (docs/performance.md, "Known limit").
    let sim = [
        "--agents",
        "50",
        "--cpu",
        "4",
        "--memory",
        "8Gi",
        "--task-duration",
        "0.2",
        "--progress-seconds",
        "2",
        "--claim-wait-seconds",
        "5",
    ];
    let mut berth = Berth::simulated(&sim, &["--agent-ttl-seconds", TTL]);
    berth.wait("every simulated agent registered and Ready", WAIT, |b| {
        let agents: Vec<Agent> = list(b, "agents")?;
        let ready = agents.iter().filter(|a| ready(a).as_deref() == Some("True")).count();
        if ready == AGENTS { Ok(()) } else { Err(format!("{ready} of {} agents Ready", agents.len())) }
    });

    berth.apply(&ShellJob::new("many", IMAGE, "true").instances(INSTANCES as u32).resources("50m", "8Mi").yaml());
    berth.wait("job many Complete", 2 * WAIT, |b| match b.jsonpath("jobs.berth.dev/many", ".status.phase").as_str() {
        "Complete" => Ok(()),
        other => Err(format!(
            "phase {other:?}; {}",
            list(b, "placements").map(|ps| summary(&ps, "many")).unwrap_or_default()
        )),
    });
    let ps: Vec<Placement> = list(&berth, "placements").unwrap();
    let many: Vec<&Placement> =
        ps.iter().filter(|p| p.metadata.name.as_deref().unwrap_or("").starts_with("many-")).collect();
    assert_eq!(many.len(), INSTANCES, "{}", summary(&ps, "many"));
    for p in &many {
        let status = p.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Phase::Succeeded, "{:?}: {status:?}", p.metadata.name);
        assert_eq!(status.exit_code, Some(0));
        assert!(status.started_at.is_some(), "{:?} has no startedAt", p.metadata.name);
        assert!(p.spec.agent.starts_with("sim-"), "{:?} ran on {}", p.metadata.name, p.spec.agent);
        assert!(p.metadata.finalizers.iter().flatten().all(|f| f != "berth.dev/agent"), "{:?}", p.metadata);
    }
    let used: std::collections::BTreeSet<&str> = many.iter().map(|p| p.spec.agent.as_str()).collect();
    assert!(used.len() > 1, "every task ran on {used:?}");
    berth.wait("no placement claims left in the agents' ledgers", WAIT, |b| {
        let agents: Vec<Agent> = list(b, "agents")?;
        let claims = agents.iter().flat_map(|a| a.status.iter().flat_map(|s| &s.claims));
        let left: Vec<&str> = claims.filter(|c| c.kind == ClaimKind::Placement).map(|c| c.owner.as_str()).collect();
        if left.is_empty() { Ok(()) } else { Err(format!("claims left: {left:?}")) }
    });

    // A task asked to stop ends Killed with the request's reason.
    let forever = |job: &str, n: u32| {
        ShellJob::new(job, IMAGE, "sleep infinity")
            .instances(n)
            .resources("50m", "8Mi")
            .group_fields("env:\n  - name: BERTH_SIM_DURATION\n    value: forever")
            .yaml()
    };
    berth.apply(&forever("stop", 1));
    berth.wait("stop-main-0-0 Running", WAIT, |b| running(b, "stop", 1));
    let patch = r#"{"spec":{"kill":{"reason":"Preempted","message":"make room"}}}"#;
    let out = berth.kubectl(&["patch", "placements.berth.dev/stop-main-0-0", "--type=merge", "-p", patch]);
    assert!(out.status.success(), "{}", berth_e2e::output_text(&out));
    berth.wait("stop-main-0-0 Killed with its reason", WAIT, |b| {
        let object = "placements.berth.dev/stop-main-0-0";
        let (phase, reason) = (b.jsonpath(object, ".status.phase"), b.jsonpath(object, ".status.reason"));
        if phase == "Killed" && reason == "Preempted" { Ok(()) } else { Err(b.jsonpath(object, ".status")) }
    });

    // Long-running tasks are Running when the simulator dies.
    berth.apply(&forever("long", 20));
    berth.wait("job long's tasks Running", WAIT, |b| running(b, "long", 20));
    berth.kill9("sim");
    berth.wait("every simulated agent NotReady", WAIT, |b| {
        let agents: Vec<Agent> = list(b, "agents")?;
        let ready: Vec<String> = agents
            .iter()
            .filter(|a| ready(a).as_deref() != Some("False"))
            .filter_map(|a| a.metadata.name.clone())
            .collect();
        if ready.is_empty() { Ok(()) } else { Err(format!("not yet NotReady: {ready:?}")) }
    });
    berth.wait("job long's running tasks Lost", WAIT, |b| {
        let ps: Vec<Placement> = list(b, "placements")?;
        let first: Vec<&Placement> = ps
            .iter()
            .filter(|p| p.spec.job == "long" && p.metadata.name.as_deref().is_some_and(|n| n.ends_with("-0")))
            .collect();
        let lost = first
            .iter()
            .filter(|p| {
                phase(p) == Phase::Lost
                    && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some(REASON_AGENT_LOST)
            })
            .count();
        if first.len() == 20 && lost == 20 { Ok(()) } else { Err(summary(&ps, "long")) }
    });
}
