//! Host ports through the whole shared-state path, against a real
//! in-process API server and an agent on the fake runtime: the scheduler
//! gives each task distinct ports from the agent's ranges, the agent passes
//! them as `PORT0…` and reports them in `status.ports`, and a task for which
//! no ports are left waits, saying so. (Real containers: `e2e/tests/ports.rs`.)

mod server;

use std::sync::Arc;

use berth_agent::fake::Fake;
use berth_agent::supervisor::container_id;
use berth_api::framework::{FrameworkSpec, Mode, Scheduler};
use berth_api::ports::PortRequest;
use berth_api::{Agent, Container, Framework, Job, JobSpec, Offer, OfferState, Phase, Placement, Resources, TaskGroup};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

fn job(name: &str, instances: u32, ports: &[Option<&str>]) -> Job {
    let ports = ports.iter().map(|n| PortRequest { name: n.map(str::to_string) }).collect();
    let container = Container {
        image: "registry.test/demo:1".into(),
        resources: Resources { cpu: Some("100m".into()), memory: Some("16Mi".into()) },
        ports,
        ..Default::default()
    };
    let group = TaskGroup { name: "web".into(), instances: Some(instances), container, ..Default::default() };
    Job::new(name, JobSpec { task_groups: vec![group], ..Default::default() })
}

struct System {
    client: Client,
    fake: Arc<Fake>,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

/// Server, controllers (and, if `framework`, an `Offers` builtin-batch
/// Framework of that name) and one agent with ports 31000-31003 whose
/// containers run until released.
async fn start(framework: Option<&str>) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    if let Some(name) = framework {
        let spec = FrameworkSpec { mode: Mode::Offers, scheduler: Scheduler::BuiltinBatch, ..Default::default() };
        let api: Api<Framework> = Api::namespaced(client.clone(), "default");
        api.create(&PostParams::default(), &Framework::new(name, spec)).await.unwrap();
    }
    server::controllers(&client, &stopped);
    let fake = Arc::new(Fake::new(true));
    let mut config = server::agent_config("agent-1", dir.path(), "4", "4Gi", None);
    config.ports = berth_api::ports::parse("31000-31003").unwrap();
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
    let agents: Api<Agent> = Api::all(client.clone());
    server::eventually(&client, "the agent to report its ports", async || match agents.get_opt("agent-1").await {
        Ok(Some(a)) if a.status.as_ref().is_some_and(|s| s.is_ready() && !s.ports.is_empty()) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    System { client, fake, _stop: stop, _dir: dir }
}

/// Waits until two placements run, then checks they hold the agent's four
/// ports between them, two each, and that each container's environment says
/// which (`PORT0`, `PORT1`, `PORT`, `PORT_ADMIN`).
async fn two_running_with_distinct_ports(sys: &System) -> Vec<Placement> {
    let (client, fake) = (&sys.client, &sys.fake);
    let placements: Api<Placement> = Api::namespaced(client.clone(), "default");
    let running = server::eventually(client, "two placements running with ports", async || {
        let ps = placements.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let running: Vec<Placement> =
            ps.iter().filter(|p| p.status.as_ref().is_some_and(|s| s.phase == Phase::Running)).cloned().collect();
        if running.len() == 2 { Ok(running) } else { Err(format!("{ps:?}")) }
    })
    .await;
    let mut given: Vec<u16> = running.iter().flat_map(|p| p.status.as_ref().unwrap().ports.clone()).collect();
    given.sort_unstable();
    assert_eq!(given, [31000, 31001, 31002, 31003], "each task its own two ports");
    for p in &running {
        let ports = &p.status.as_ref().unwrap().ports;
        let env = fake.env_of(&container_id(p)).expect("started");
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.parse::<u16>().unwrap());
        assert_eq!((var("PORT0"), var("PORT1")), (Some(ports[0]), Some(ports[1])), "{env:?}");
        assert_eq!((var("PORT"), var("PORT_ADMIN")), (Some(ports[0]), Some(ports[1])), "{env:?}");
    }
    running
}

#[tokio::test]
async fn tasks_get_distinct_ports_in_env_and_status_and_one_with_none_left_waits_saying_so() {
    let sys = start(None).await;
    let (client, fake) = (&sys.client, &sys.fake);
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(&PostParams::default(), &job("web", 3, &[None, Some("admin")])).await.unwrap();
    let running = two_running_with_distinct_ports(&sys).await;
    let placements: Api<Placement> = Api::namespaced(client.clone(), "default");

    let c = server::eventually(client, "the third instance to wait for ports", async || {
        let j = jobs.get("web").await.map_err(|e| e.to_string())?;
        let conds = j.status.map(|s| s.conditions).unwrap_or_default();
        match berth_api::condition::find(&conds, "Scheduled") {
            Some(c) if c.reason == "Unschedulable" => Ok(c.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(c.message, "0/1 agents fit: 1 insufficient ports (need 2, most free 0)");

    // When one ends, its ports go to the waiting instance.
    fake.release(&container_id(&running[0]), 0);
    let freed = running[0].status.as_ref().unwrap().ports.clone();
    server::eventually(client, "the third instance to run on the freed ports", async || {
        let p = placements.get_opt("web-web-2-0").await.map_err(|e| e.to_string())?;
        match p.as_ref().and_then(|p| p.status.as_ref()) {
            Some(s) if s.phase == Phase::Running && s.ports == freed => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn through_offers_each_accepting_placement_gets_its_ports_from_the_offer() {
    let sys = start(Some("fw")).await;
    let client = &sys.client;
    let offers: Api<Offer> = Api::namespaced(client.clone(), "default");
    let mut web = job("web", 3, &[None, Some("admin")]);
    web.spec.framework = Some("fw".into());
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(&PostParams::default(), &web).await.unwrap();
    let running = two_running_with_distinct_ports(&sys).await;
    for p in &running {
        assert!(p.spec.offer.is_some(), "placed through an offer: {:?}", p.spec);
    }
    // The accepted offers held the free ports; their accepts gave them out.
    let list = offers.list(&ListParams::default()).await.unwrap().items;
    let accepted: Vec<&Offer> =
        list.iter().filter(|o| o.status.as_ref().and_then(|s| s.state) == Some(OfferState::Accepted)).collect();
    let held = berth_api::ports::normalize(accepted.iter().flat_map(|o| o.spec.ports.clone()).collect());
    assert_eq!(held, berth_api::ports::parse("31000-31003").unwrap(), "{list:?}");
    // The third instance fits no offer: later offers hold no ports, and it is not placed.
    let placements: Api<Placement> = Api::namespaced(client.clone(), "default");
    let third = placements.list(&ListParams::default()).await.unwrap().items.len();
    assert_eq!(third, 2, "only two placements while no ports are free");
}
