//! The batch controller and an agent with the fake runtime, against a real
//! in-process API server: Jobs are claimed, placed, run and reported, and
//! no agent is ever overcommitted. (Real containers: see `e2e/`.)

mod server;

use std::sync::Arc;

use berth_agent::fake::{Call, Fake};
use berth_agent::supervisor::container_id;
use berth_api::job::EnvVar;
use berth_api::{
    Agent, Cluster, ClusterSpec, Condition, Container, Job, JobSpec, Phase, Placement, Resources, TaskGroup,
};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

struct System {
    client: Client,
    fake: Arc<Fake>,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

async fn start(hold: bool, cpu: &str, memory: &str) -> System {
    start_in(None, hold, cpu, memory).await
}

/// As [`start`], in a `Cluster` with `spec` that exists before the controllers start.
async fn start_in(cluster: Option<ClusterSpec>, hold: bool, cpu: &str, memory: &str) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    if let Some(spec) = cluster {
        Api::<Cluster>::all(client.clone()).create(&PostParams::default(), &Cluster::new("main", spec)).await.unwrap();
    }
    server::controllers(&client, &stopped);

    let fake = Arc::new(Fake::new(hold));
    let config = server::agent_config("agent-1", dir.path(), cpu, memory, None);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
    let sys = System { client, fake, _stop: stop, _dir: dir };
    let agents: Api<Agent> = Api::all(sys.client.clone());
    server::eventually(&sys.client, "the agent to be ready", async || match agents.get_opt("agent-1").await {
        Ok(Some(a)) if a.status.as_ref().is_some_and(|s| s.is_ready()) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    sys
}

fn job(name: &str, instances: u32, cpu: &str, memory: &str, exit: i32) -> Job {
    Job::new(
        name,
        JobSpec {
            task_groups: vec![TaskGroup {
                name: "main".into(),
                instances: Some(instances),
                container: Container {
                    image: "registry.test/demo:1".into(),
                    env: vec![EnvVar { name: "FAKE_EXIT".into(), value: exit.to_string() }],
                    resources: Resources { cpu: Some(cpu.into()), memory: Some(memory.into()) },
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

async fn condition(api: &Api<Job>, name: &str, type_: &str) -> Result<Condition, String> {
    let j = api.get(name).await.map_err(|e| e.to_string())?;
    let conds = j.status.map(|s| s.conditions).unwrap_or_default();
    berth_api::condition::find(&conds, type_).cloned().ok_or_else(|| format!("no {type_} condition yet: {conds:?}"))
}

async fn true_condition(api: &Api<Job>, name: &str, type_: &str) -> Result<Condition, String> {
    let c = condition(api, name, type_).await?;
    if c.is_true() { Ok(c) } else { Err(format!("{c:?}")) }
}

#[tokio::test]
async fn a_job_runs_to_complete_and_frees_its_claims() {
    let sys = start(false, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("ok", 2, "250m", "128Mi", 0)).await.unwrap();
    let complete =
        server::eventually(&sys.client, "Complete", async || true_condition(&jobs, "ok", "Complete").await).await;
    assert_eq!(complete.message, "2/2 tasks succeeded");
    let reasons = server::eventually(&sys.client, "Scheduled and Completed events", async || {
        let seen = events_of(&sys, "ok").await?;
        let reasons: Vec<String> = seen.iter().map(|(_, r, _)| r.clone()).collect();
        if reasons.contains(&"Completed".to_string()) { Ok(reasons) } else { Err(format!("{seen:?}")) }
    })
    .await;
    assert_eq!(reasons, ["Scheduled", "Completed"], "each decision once, in order");
    let j = jobs.get("ok").await.unwrap();
    assert_eq!(j.status.as_ref().unwrap().observed_generation, j.metadata.generation);
    let agents: Api<Agent> = Api::all(sys.client.clone());
    server::eventually(&sys.client, "the ledger to be empty", async || {
        let a = agents.get("agent-1").await.map_err(|e| e.to_string())?;
        let claims = a.status.map(|s| s.claims).unwrap_or_default();
        if claims.is_empty() { Ok(()) } else { Err(format!("{claims:?}")) }
    })
    .await;
}

#[tokio::test]
async fn a_failing_task_fails_the_job_with_its_exit_code() {
    let sys = start(false, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("bad", 1, "100m", "64Mi", 3)).await.unwrap();
    let failed = server::eventually(&sys.client, "Failed", async || true_condition(&jobs, "bad", "Failed").await).await;
    assert!(failed.message.contains("exit code 3 (Error)"), "{}", failed.message);
}

#[tokio::test]
async fn a_job_too_big_for_any_agent_says_why() {
    let sys = start(false, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("huge", 1, "100m", "2Gi", 0)).await.unwrap();
    let c = server::eventually(&sys.client, "an Unschedulable condition", async || {
        let c = condition(&jobs, "huge", "Scheduled").await?;
        if c.reason == "Unschedulable" { Ok(c) } else { Err(format!("{c:?}")) }
    })
    .await;
    assert_eq!(c.message, "0/1 agents fit: 1 insufficient memory (need 2Gi, most free 1Gi)");
    let seen =
        server::eventually(&sys.client, "a FailedScheduling event", async || events_of(&sys, "huge").await).await;
    assert_eq!(seen, [("Warning".to_string(), "FailedScheduling".to_string(), c.message.clone())]);
}

/// The Events about Job `name` once one is recorded: (type, reason, message), oldest first.
async fn events_of(sys: &System, name: &str) -> Result<Vec<(String, String, String)>, String> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(sys.client.clone(), "default");
    let lp = ListParams::default().fields(&format!("involvedObject.kind=Job,involvedObject.name={name}"));
    let mut list = api.list(&lp).await.map_err(|e| e.to_string())?.items;
    list.sort_by_key(|e| e.metadata.name.clone());
    let seen: Vec<_> = list
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect();
    if seen.is_empty() { Err("no events yet".into()) } else { Ok(seen) }
}

#[tokio::test]
async fn tasks_that_do_not_fit_together_wait_and_never_overcommit() {
    let sys = start(true, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("a", 1, "600m", "64Mi", 0)).await.unwrap();
    jobs.create(&PostParams::default(), &job("b", 1, "600m", "64Mi", 0)).await.unwrap();
    let placements: Api<Placement> = Api::namespaced(sys.client.clone(), "default");
    let first = server::eventually(&sys.client, "exactly one placement, running", async || {
        let ps = placements.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let running = ps.iter().filter(|p| p.status.as_ref().is_some_and(|s| s.phase == Phase::Running)).count();
        match ps.as_slice() {
            [p] if running == 1 => Ok(p.clone()),
            _ => Err(format!("{} placements, {running} running", ps.len())),
        }
    })
    .await;
    let waiting = if first.spec.job == "a" { "b" } else { "a" };
    server::eventually(&sys.client, "the other job to be unschedulable", async || {
        let c = condition(&jobs, waiting, "Scheduled").await?;
        if c.reason == "Unschedulable" && c.message.contains("insufficient cpu") {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;

    sys.fake.release(&container_id(&first), 0);
    server::eventually(&sys.client, "the other job to run and both to complete", async || {
        if let Some(p) = placements.get_opt(&format!("{waiting}-main-0-0")).await.map_err(|e| e.to_string())? {
            sys.fake.release(&container_id(&p), 0);
        }
        true_condition(&jobs, "a", "Complete").await?;
        true_condition(&jobs, "b", "Complete").await
    })
    .await;
}

#[tokio::test]
async fn deleting_a_job_stops_its_running_tasks_and_frees_their_claims() {
    let sys = start(true, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("doomed", 1, "500m", "64Mi", 0)).await.unwrap();
    let placements: Api<Placement> = Api::namespaced(sys.client.clone(), "default");
    let running = server::eventually(&sys.client, "the task to run", async || {
        let p = placements.get("doomed-main-0-0").await.map_err(|e| e.to_string())?;
        if p.status.as_ref().is_some_and(|s| s.phase == Phase::Running) {
            Ok(p)
        } else {
            Err(format!("{:?}", p.status))
        }
    })
    .await;
    jobs.delete("doomed", &DeleteParams::default()).await.unwrap();

    let id = container_id(&running);
    server::eventually(&sys.client, "the container to be killed and removed", async || {
        let calls = sys.fake.calls();
        let killed = calls.iter().any(|c| matches!(c, Call::Kill(k, _) if *k == id));
        let removed = calls.iter().any(|c| matches!(c, Call::Remove(r) if *r == id));
        if killed && removed { Ok(()) } else { Err(format!("{calls:?}")) }
    })
    .await;
    let agents: Api<Agent> = Api::all(sys.client.clone());
    server::eventually(&sys.client, "the placement and its claim to be gone", async || {
        let left = placements.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        let claims =
            agents.get("agent-1").await.map_err(|e| e.to_string())?.status.map(|s| s.claims).unwrap_or_default();
        if left == 0 && claims.is_empty() { Ok(()) } else { Err(format!("{left} placements, claims {claims:?}")) }
    })
    .await;
}

#[tokio::test]
async fn only_agents_the_cluster_selects_take_placements() {
    let spec = ClusterSpec { agent_selector: [("pool".to_string(), "batch".to_string())].into(), ..Default::default() };
    let sys = start_in(Some(spec), false, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("picky", 1, "250m", "128Mi", 0)).await.unwrap();
    let c = server::eventually(&sys.client, "the job to say why it waits", async || {
        let c = condition(&jobs, "picky", "Scheduled").await?;
        if c.is_true() { Err(format!("placed on an agent the cluster does not select: {c:?}")) } else { Ok(c) }
    })
    .await;
    assert_eq!(c.message, "0/1 agents fit: 1 outside the cluster's agentSelector");
    let placements: Api<Placement> = Api::namespaced(sys.client.clone(), "default");
    assert!(placements.list(&ListParams::default()).await.unwrap().items.is_empty(), "a placement was made");

    let agents: Api<Agent> = Api::all(sys.client.clone());
    let label = serde_json::json!({"metadata": {"labels": {"pool": "batch"}}});
    agents.patch("agent-1", &PatchParams::default(), &Patch::Merge(&label)).await.unwrap();
    server::eventually(&sys.client, "Complete once the agent is selected", async || {
        true_condition(&jobs, "picky", "Complete").await
    })
    .await;
}
