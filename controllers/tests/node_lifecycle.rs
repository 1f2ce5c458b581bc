//! Node loss against a real in-process API server, with two agents on fake
//! runtimes: agent-1 stops (its Lease is no longer renewed); within the TTL
//! it is `Ready=False`, its placement `Lost`, and the Job's next attempt
//! runs on agent-2 — neither failed nor retried. (Real processes, kill -9
//! and a network partition: `e2e/tests/node_loss.rs`.)

mod server;

use std::sync::Arc;
use std::time::Duration;

use berth_agent::fake::Fake;
use berth_api::placement::{FINALIZER_AGENT, REASON_AGENT_LOST};
use berth_api::{Agent, Container, Job, JobSpec, Phase, Placement, Resources, TaskGroup};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::watch;

const TTL: Duration = Duration::from_secs(2);

fn job() -> Job {
    let container = Container {
        image: "registry.test/demo:1".into(),
        resources: Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) },
        ..Default::default()
    };
    let group = TaskGroup { name: "main".into(), instances: Some(1), container, ..Default::default() };
    Job::new("lost", JobSpec { task_groups: vec![group], ..Default::default() })
}

async fn phase(api: &Api<Placement>, name: &str) -> Result<(Phase, String, String), String> {
    let p = api.get(name).await.map_err(|e| e.to_string())?;
    let st = p.status.unwrap_or_default();
    Ok((st.phase, st.reason.unwrap_or_default(), p.spec.agent))
}

#[tokio::test]
async fn a_stopped_agents_task_is_lost_and_its_next_attempt_runs_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _stop, stopped) = server::start(dir.path()).await;
    server::controllers_with(&client, &stopped, berth_controllers::Settings { agent_ttl: TTL });

    // agent-1 has a stop of its own: stopping it ends its Lease renewals.
    let (stop_1, rx_1) = watch::channel(false);
    for name in ["agent-1", "agent-2"] {
        let config = server::agent_config(name, dir.path(), "1", "1Gi", Some(name.into()));
        let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(Fake::new(true));
        let mut rx = if name == "agent-1" { rx_1.clone() } else { stopped.0.clone() };
        let stop = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(berth_agent::run(client.clone(), fake, config, logs, stop));
    }
    let agents: Api<Agent> = Api::all(client.clone());
    server::eventually(&client, "both agents ready", async || {
        let list = agents.list(&Default::default()).await.map_err(|e| e.to_string())?;
        let ready = list.items.iter().filter(|a| a.status.as_ref().is_some_and(|s| s.is_ready())).count();
        if ready == 2 { Ok(()) } else { Err(format!("{ready}/2 ready")) }
    })
    .await;
    let cordon = |on: bool| serde_json::json!({"spec": {"unschedulable": on}});
    agents.patch("agent-2", &PatchParams::default(), &Patch::Merge(&cordon(true))).await.unwrap();

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(&PostParams::default(), &job()).await.unwrap();
    let placements: Api<Placement> = Api::namespaced(client.clone(), "default");
    server::eventually(&client, "attempt 0 running on agent-1", async || {
        match phase(&placements, "lost-main-0-0").await? {
            (Phase::Running, _, agent) if agent == "agent-1" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    agents.patch("agent-2", &PatchParams::default(), &Patch::Merge(&cordon(false))).await.unwrap();
    // The agent's finalizer (kept until it has removed the container): a Lost placement is freed of it.
    let finalizer = serde_json::json!({"metadata": {"finalizers": [FINALIZER_AGENT]}});
    placements.patch("lost-main-0-0", &PatchParams::default(), &Patch::Merge(&finalizer)).await.unwrap();

    stop_1.send_replace(true);
    server::eventually(&client, "attempt 0 Lost, attempt 1 running on agent-2", async || {
        let first = phase(&placements, "lost-main-0-0").await?;
        let next = phase(&placements, "lost-main-0-1").await?;
        match (&first, &next) {
            ((Phase::Lost, reason, _), (Phase::Running, _, agent))
                if reason == REASON_AGENT_LOST && agent == "agent-2" =>
            {
                Ok(())
            }
            _ => Err(format!("{first:?} then {next:?}")),
        }
    })
    .await;
    let a = agents.get("agent-1").await.unwrap();
    let ready = berth_api::condition::find(&a.status.unwrap().conditions, "Ready").cloned().unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "AgentLost"), "{}", ready.message);
    let lost = placements.get("lost-main-0-0").await.unwrap();
    assert!(lost.metadata.finalizers.unwrap_or_default().is_empty(), "the agent's finalizer is removed");
    let next = placements.get("lost-main-0-1").await.unwrap();
    assert_eq!(next.spec.attempt, 1);
    let status = server::eventually(&client, "the Job to count the next attempt running", async || {
        let status = jobs.get("lost").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
        if status.tasks.running == 1 { Ok(status) } else { Err(format!("{:?}", status.tasks)) }
    })
    .await;
    assert_eq!(status.tasks.failed, 0, "{status:?}");
    assert!(berth_api::condition::find(&status.conditions, "Failed").is_none(), "{:?}", status.conditions);
}
