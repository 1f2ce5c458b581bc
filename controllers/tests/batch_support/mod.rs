//! What the batch rules tests share: a real in-process API server with the
//! controllers and agent `a1` registered by the test, where nothing runs:
//! the test plays the agent, driving placements' status by hand.

use berth_api::framework::{FrameworkSpec, Mode, Scheduler};
use berth_api::{
    Agent, AgentSpec, AgentStatus, Condition, Container, Framework, Job, JobSpec, Phase, Placement, Resources,
    TaskGroup,
};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::server;

pub struct System {
    pub client: Client,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

/// Server, controllers (and Framework `fw`, builtin-batch in `mode`, when
/// given) and agent `a1` (4 CPU / 8Gi), registered ready by the test.
pub async fn start(mode: Option<Mode>) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    let agents: Api<Agent> = Api::all(client.clone());
    let mut a1 = agents.create(&PostParams::default(), &Agent::new("a1", AgentSpec::default())).await.unwrap();
    a1.status = Some(AgentStatus {
        allocatable: Resources { cpu: Some("4".into()), memory: Some("8Gi".into()) },
        conditions: vec![Condition::new("Ready", true, "Heartbeat", "")],
        ..Default::default()
    });
    agents.replace_status("a1", &PostParams::default(), &a1).await.unwrap();
    if let Some(mode) = mode {
        let spec = FrameworkSpec { mode, scheduler: Scheduler::BuiltinBatch, ..Default::default() };
        let fws: Api<Framework> = Api::namespaced(client.clone(), "default");
        fws.create(&PostParams::default(), &Framework::new("fw", spec)).await.unwrap();
    }
    server::controllers(&client, &stopped);
    System { client, _stop: stop, _dir: dir }
}

pub fn group(name: &str, instances: u32, deps: &[&str]) -> TaskGroup {
    TaskGroup {
        name: name.into(),
        instances: Some(instances),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        container: Container {
            image: "registry.test/demo:1".into(),
            resources: Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) },
            ..Default::default()
        },
        ..Default::default()
    }
}

pub async fn submit(client: &Client, name: &str, framework: Option<&str>, groups: Vec<TaskGroup>) -> Api<Job> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let spec = JobSpec { framework: framework.map(String::from), task_groups: groups, ..Default::default() };
    jobs.create(&PostParams::default(), &Job::new(name, spec)).await.unwrap();
    jobs
}

/// The names of Job `job`'s placements, sorted.
pub async fn placements(client: &Client, job: &str) -> Result<Vec<String>, String> {
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels(&format!("{}={job}", berth_api::LABEL_JOB));
    let mut names: Vec<String> =
        api.list(&lp).await.map_err(|e| e.to_string())?.items.into_iter().filter_map(|p| p.metadata.name).collect();
    names.sort();
    Ok(names)
}

/// Waits until Job `job`'s placements are exactly `want`.
pub async fn placed(client: &Client, job: &str, want: &[&str]) {
    server::eventually(client, &format!("{job}'s placements to be {want:?}"), async || {
        let names = placements(client, job).await?;
        if names == want {
            return Ok(());
        }
        let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
        let status = jobs.get(job).await.map_err(|e| e.to_string())?.status;
        let agent = Api::<Agent>::all(client.clone()).get("a1").await.map_err(|e| e.to_string())?.status;
        Err(format!("{names:?}; job status {status:?}; agent a1 {agent:?}"))
    })
    .await;
}

/// Plays the agent: placement `name` runs, then ends in `phase` with `exit`.
pub async fn finish(client: &Client, name: &str, phase: Phase, exit: i32) {
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    let now = berth_api::now_rfc3339();
    let running = json!({ "status": { "phase": "Running", "startedAt": now } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&running)).await.unwrap();
    let reason = if phase == Phase::Failed { Some("Error") } else { None };
    let ended = json!({ "status": { "phase": phase, "exitCode": exit, "reason": reason, "finishedAt": now } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&ended)).await.unwrap();
}

/// Plays the agent: placement `name` runs.
pub async fn run(client: &Client, name: &str) {
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    let running = json!({ "status": { "phase": "Running", "startedAt": berth_api::now_rfc3339() } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&running)).await.unwrap();
}

/// Plays the agent: placement `name` is stopped as its `spec.kill` asks,
/// once asked; returns the reason asked.
pub async fn stop_as_asked(client: &Client, name: &str) -> String {
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    let kill = server::eventually(client, &format!("{name} to be asked to stop"), async || {
        let p = api.get(name).await.map_err(|e| e.to_string())?;
        p.spec.kill.clone().ok_or(format!("{:?}", p.spec.kill))
    })
    .await;
    let now = berth_api::now_rfc3339();
    let killed = json!({ "status": { "phase": "Killed", "reason": kill.reason, "finishedAt": now, "exitCode": 137 } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&killed)).await.unwrap();
    kill.reason
}

/// Job `name` once `check` accepts it.
pub async fn job_when(client: &Client, name: &str, what: &str, check: impl Fn(&Job) -> bool) -> Job {
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    server::eventually(client, what, async || {
        let j = jobs.get(name).await.map_err(|e| e.to_string())?;
        if check(&j) { Ok(j) } else { Err(format!("{:?}", j.status)) }
    })
    .await
}

pub fn condition<'a>(j: &'a Job, type_: &str) -> Option<&'a Condition> {
    berth_api::condition::find(&j.status.as_ref()?.conditions, type_)
}

pub fn group_phase(j: &Job, i: usize) -> Option<String> {
    j.status.as_ref()?.groups.get(i)?.phase.clone()
}
