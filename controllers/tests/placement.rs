//! Where the batch controller puts tasks when there are several agents,
//! against a real in-process API server and agents with the fake runtime:
//! constraints spread instances, gangs wait whole, and a Job that cannot be
//! placed says why, naming the constraint. No agent is ever overcommitted.

mod server;

use std::sync::Arc;

use berth_agent::fake::Fake;
use berth_agent::supervisor::container_id;
use berth_api::{Agent, Condition, Container, Job, JobSpec, Placement, Resources, TaskGroup};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

struct System {
    client: Client,
    fakes: Vec<Arc<Fake>>,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

/// An API server, the controllers, and `n` agents (`agent-1`…, each on its
/// own hostname `host-1`…) that hold their containers until released.
async fn start(n: usize, cpu: &str, memory: &str) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    server::controllers(&client, &stopped);

    let mut fakes = Vec::new();
    for i in 1..=n {
        let fake = Arc::new(Fake::new(true));
        let config = server::agent_config(&format!("agent-{i}"), dir.path(), cpu, memory, Some(format!("host-{i}")));
        let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
        fakes.push(fake);
    }
    let sys = System { client, fakes, _stop: stop, _dir: dir };
    let agents: Api<Agent> = Api::all(sys.client.clone());
    server::eventually(&sys.client, "every agent to be ready", async || {
        let list = agents.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ready = list.iter().filter(|a| a.status.as_ref().is_some_and(|s| s.is_ready())).count();
        if ready == n { Ok(()) } else { Err(format!("{ready}/{n} ready")) }
    })
    .await;
    sys
}

fn job(name: &str, instances: u32, cpu: &str, constraints: &[&[&str]], gang: bool) -> Job {
    Job::new(
        name,
        JobSpec {
            task_groups: vec![TaskGroup {
                name: "main".into(),
                instances: Some(instances),
                constraints: constraints.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect(),
                gang,
                container: Container {
                    image: "registry.test/demo:1".into(),
                    resources: Resources { cpu: Some(cpu.into()), memory: Some("64Mi".into()) },
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

/// The Job's `Scheduled` condition once its reason is `reason`.
async fn scheduled(api: &Api<Job>, name: &str, reason: &str) -> Result<Condition, String> {
    let j = api.get(name).await.map_err(|e| e.to_string())?;
    let conds = j.status.map(|s| s.conditions).unwrap_or_default();
    match berth_api::condition::find(&conds, "Scheduled") {
        Some(c) if c.reason == reason => Ok(c.clone()),
        other => Err(format!("{other:?}")),
    }
}

/// The agent of each of Job `name`'s placements, by placement name.
async fn agents_of(sys: &System, name: &str) -> Result<Vec<(String, String)>, String> {
    let api: Api<Placement> = Api::namespaced(sys.client.clone(), "default");
    let lp = ListParams::default().labels(&format!("{}={name}", berth_api::LABEL_JOB));
    let mut ps: Vec<(String, String)> = api
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), p.spec.agent))
        .collect();
    ps.sort();
    Ok(ps)
}

#[tokio::test]
async fn unique_hostname_puts_each_instance_on_its_own_agent() {
    let sys = start(3, "2", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    // Binpack alone would stack all three on one agent: each has room for all.
    jobs.create(&PostParams::default(), &job("web", 3, "100m", &[&["hostname", "UNIQUE"]], false)).await.unwrap();
    server::eventually(&sys.client, "all instances placed", async || scheduled(&jobs, "web", "Placed").await).await;
    let placed = agents_of(&sys, "web").await.unwrap();
    let mut agents: Vec<&str> = placed.iter().map(|(_, a)| a.as_str()).collect();
    agents.sort();
    assert_eq!(agents, ["agent-1", "agent-2", "agent-3"], "{placed:?}");
}

#[tokio::test]
async fn a_job_its_constraint_cannot_place_says_so_in_its_condition_and_events() {
    let sys = start(3, "2", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("four", 4, "100m", &[&["hostname", "UNIQUE"]], false)).await.unwrap();
    // Until the controllers' cache has seen every agent ready the reasons may
    // differ; what the user is left with is this.
    let want = "0/3 agents fit: 3 excluded by UNIQUE hostname";
    let c = server::eventually(&sys.client, "an Unschedulable condition naming UNIQUE hostname", async || {
        let c = scheduled(&jobs, "four", "Unschedulable").await?;
        if c.message == want { Ok(c) } else { Err(format!("{c:?}")) }
    })
    .await;
    assert_eq!(agents_of(&sys, "four").await.unwrap().len(), 3, "the three that fit are placed");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(sys.client.clone(), "default");
    let lp = ListParams::default().fields("involvedObject.kind=Job,involvedObject.name=four");
    server::eventually(&sys.client, "a FailedScheduling event naming the constraint", async || {
        let seen: Vec<(String, String)> = events
            .list(&lp)
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect();
        let want = ("FailedScheduling".to_string(), c.message.clone());
        if seen.contains(&want) { Ok(()) } else { Err(format!("{seen:?}")) }
    })
    .await;
}

/// A constraint the planner cannot read is refused by the API server (422
/// naming the field) before any controller sees it; a Job that got past
/// another server is stalled by the controller the same way
/// (`job_status::tests::an_invalid_constraint_stalls_the_job_naming_the_field`).
#[tokio::test]
async fn a_bad_constraint_is_refused_naming_the_field() {
    let sys = start(1, "2", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    let refused = jobs.create(&PostParams::default(), &job("near", 1, "100m", &[&["rack", "NEAR", "r1"]], false)).await;
    let Err(kube::Error::Api(status)) = refused else { panic!("accepted: {refused:?}") };
    assert_eq!(status.code, 422, "{status:?}");
    let field = status.details.as_ref().and_then(|d| d.causes.first()).map(|c| c.field.clone());
    assert_eq!(field.as_deref(), Some("spec.taskGroups[0].constraints[0]"), "{status:?}");
    assert!(jobs.get_opt("near").await.unwrap().is_none(), "nothing is stored");
    assert!(agents_of(&sys, "near").await.unwrap().is_empty(), "nothing is placed");
}

#[tokio::test]
async fn a_gang_waits_whole_instead_of_half_placing() {
    let sys = start(2, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("blocker", 1, "600m", &[], false)).await.unwrap();
    server::eventually(&sys.client, "the blocker to be placed", async || scheduled(&jobs, "blocker", "Placed").await)
        .await;

    jobs.create(&PostParams::default(), &job("gang", 2, "600m", &[], true)).await.unwrap();
    let want = "gang of 2: only 1 fit: 0/2 agents fit: 2 insufficient cpu (need 600m, most free 400m)";
    server::eventually(&sys.client, "the gang to wait, saying why", async || {
        let c = scheduled(&jobs, "gang", "Unschedulable").await?;
        if c.message == want { Ok(()) } else { Err(format!("{c:?}")) }
    })
    .await;
    assert!(agents_of(&sys, "gang").await.unwrap().is_empty(), "no half gang runs");
    let agents: Api<Agent> = Api::all(sys.client.clone());
    for a in agents.list(&ListParams::default()).await.unwrap().items {
        let claims = a.status.map(|s| s.claims).unwrap_or_default();
        assert!(claims.iter().all(|c| !c.owner.starts_with("default/gang-")), "the gang holds nothing: {claims:?}");
    }

    let blocker = Api::<Placement>::namespaced(sys.client.clone(), "default").get("blocker-main-0-0").await.unwrap();
    for fake in &sys.fakes {
        fake.release(&container_id(&blocker), 0);
    }
    let placed = server::eventually(&sys.client, "the whole gang to be placed", async || {
        scheduled(&jobs, "gang", "Placed").await?;
        agents_of(&sys, "gang").await
    })
    .await;
    let mut on: Vec<&str> = placed.iter().map(|(_, a)| a.as_str()).collect();
    on.sort();
    assert_eq!(on, ["agent-1", "agent-2"], "{placed:?}");
}

#[tokio::test]
async fn a_constraint_of_the_wrong_shape_is_refused_and_nothing_is_stored() {
    let sys = start(0, "1", "1Gi").await;
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    let err = jobs.create(&PostParams::default(), &job("short", 1, "100m", &[&["rack"]], false)).await.unwrap_err();
    let kube::Error::Api(status) = err else { panic!("not a Status: {err:?}") };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec.taskGroups[0].constraints[0]"), "{}", status.message);
    assert!(jobs.get_opt("short").await.unwrap().is_none(), "nothing is stored");
}

#[tokio::test]
async fn constraints_match_the_labels_of_agents() {
    let sys = start(3, "2", "1Gi").await;
    let agents: Api<Agent> = Api::all(sys.client.clone());
    for (agent, rack) in [("agent-1", "r1"), ("agent-2", "r2"), ("agent-3", "r1")] {
        let patch = serde_json::json!({"metadata": {"labels": {"rack": rack}}});
        agents.patch(agent, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    }
    let jobs: Api<Job> = Api::namespaced(sys.client.clone(), "default");
    // Labels reach the controllers' cache a little later than this test
    // writes them: until then no agent has a rack, and nothing is placed.
    let mut j = job("racked", 4, "100m", &[&["rack", "LIKE", "r1"], &["hostname", "MAX_PER", "2"]], false);
    j.spec.strategy = berth_api::constraint::Strategy::Spread;
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let placed = server::eventually(&sys.client, "all four placed on r1 agents, two each", async || {
        let placed = agents_of(&sys, "racked").await?;
        let on = |a: &str| placed.iter().filter(|(_, x)| x == a).count();
        if (on("agent-1"), on("agent-3")) == (2, 2) { Ok(placed) } else { Err(format!("{placed:?}")) }
    })
    .await;
    assert!(placed.iter().all(|(_, a)| a != "agent-2"), "r2 is not LIKE r1: {placed:?}");
}
