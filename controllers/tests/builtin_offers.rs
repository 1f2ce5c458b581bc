//! The built-in batch scheduler in `Offers` mode, running: a Job under a
//! `mode: Offers, scheduler: builtin-batch` Framework is placed through
//! offers and completes; a UNIQUE hostname constraint over two agents
//! places two of three instances and explains the third (and the framework
//! is offered nothing it cannot use); a gang that does not fit is not
//! partly placed and holds nothing; and an Offers builtin framework shares
//! agents with a SharedState one. Two node agents on the fake runtime
//! (`agent-1`, `agent-2`, 4 CPU / 8Gi each, hostnames `host-1`, `host-2`);
//! no agent is overcommitted and every outstanding offer is held at every
//! poll (see `support::eventually`).

mod server;
// Its polling and offer helpers; its one-agent `start` is not used here.
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use berth_agent::fake::Fake;
use berth_agent::supervisor::container_id;
use berth_api::framework::{FrameworkSpec, Mode, Scheduler};
use berth_api::job::EnvVar;
use berth_api::{Agent, Condition, Container, Framework, Job, JobSpec, OfferState, Phase, Placement, TaskGroup};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use support::{eventually, offered_condition, offers, open, res, state};

struct System {
    client: Client,
    fakes: Vec<Arc<Fake>>,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

/// Server, controllers, Framework `fw` (Offers, builtin-batch) and two
/// agents whose containers run until released (`hold`) or exit at once.
async fn start(hold: bool) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    framework(&client, "fw", Mode::Offers).await;
    server::controllers(&client, &stopped);
    let mut fakes = Vec::new();
    for i in 1..=2 {
        let fake = Arc::new(Fake::new(hold));
        let config = server::agent_config(&format!("agent-{i}"), dir.path(), "4", "8Gi", Some(format!("host-{i}")));
        let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
        fakes.push(fake);
    }
    let agents: Api<Agent> = Api::all(client.clone());
    eventually(&client, "both agents ready", async || {
        let list = agents.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let ready = list.iter().filter(|a| a.status.as_ref().is_some_and(|s| s.is_ready())).count();
        if ready == 2 { Ok(()) } else { Err(format!("{ready} ready")) }
    })
    .await;
    System { client, fakes, _stop: stop, _dir: dir }
}

async fn framework(client: &Client, name: &str, mode: Mode) {
    let spec = FrameworkSpec { mode, scheduler: Scheduler::BuiltinBatch, ..Default::default() };
    Api::<Framework>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Framework::new(name, spec))
        .await
        .unwrap();
}

fn group(instances: u32, cpu: &str, constraints: &[&[&str]], gang: bool) -> TaskGroup {
    TaskGroup {
        name: "main".into(),
        instances: Some(instances),
        constraints: constraints.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect(),
        gang,
        container: Container {
            image: "registry.test/demo:1".into(),
            env: vec![EnvVar { name: "FAKE_EXIT".into(), value: "0".into() }],
            resources: res(cpu, "1Gi"),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn submit(client: &Client, name: &str, framework: Option<&str>, g: TaskGroup) {
    let spec = JobSpec { framework: framework.map(String::from), task_groups: vec![g], ..Default::default() };
    Api::<Job>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Job::new(name, spec))
        .await
        .unwrap();
}

async fn placements_of(client: &Client, job: &str) -> Result<Vec<Placement>, String> {
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    let list = api.list(&ListParams::default().labels(&format!("berth.dev/job={job}"))).await;
    Ok(list.map_err(|e| e.to_string())?.items)
}

async fn condition(client: &Client, job: &str, type_: &str) -> Result<Condition, String> {
    let j = Api::<Job>::namespaced(client.clone(), "default").get(job).await.map_err(|e| e.to_string())?;
    let conds = j.status.map(|s| s.conditions).unwrap_or_default();
    berth_api::condition::find(&conds, type_).cloned().ok_or(format!("no {type_} yet: {conds:?}"))
}

async fn complete(client: &Client, job: &str) {
    eventually(client, &format!("{job} to complete"), async || match condition(client, job, "Complete").await {
        Ok(c) if c.is_true() => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
}

fn phase(p: &Placement) -> Phase {
    p.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_under_an_offers_builtin_framework_completes_through_offers() {
    let s = start(true).await;
    let c = &s.client;
    submit(c, "work", Some("fw"), group(3, "1", &[], false)).await;
    let running = eventually(c, "3 placements running, each through an offer", async || {
        let ps = placements_of(c, "work").await?;
        let all = offers(c).await;
        let through_offer = |p: &Placement| {
            let offer = all.iter().find(|o| Some(o.name_any()) == p.spec.offer);
            p.labels().get("berth.dev/framework").map(String::as_str) == Some("fw")
                && offer.is_some_and(|o| state(o) == OfferState::Accepted && o.spec.agent == p.spec.agent)
        };
        let ok = ps.len() == 3 && ps.iter().all(|p| phase(p) == Phase::Running && through_offer(p));
        if ok { Ok(ps) } else { Err(format!("{:?}", ps.iter().map(|p| (&p.spec.offer, phase(p))).collect::<Vec<_>>())) }
    })
    .await;
    eventually(c, "fw's status to show what its tasks hold", async || {
        let (f, _) = offered_condition(c, "fw").await?;
        let held = f.status.as_ref().and_then(|s| s.allocated.clone()).and_then(|r| r.to_vec().ok());
        if held.is_some_and(|r| r.cpu_millis == 3000) { Ok(()) } else { Err(format!("{:?}", f.status)) }
    })
    .await;
    for p in &running {
        for fake in &s.fakes {
            fake.release(&container_id(p), 0);
        }
    }
    complete(c, "work").await;
    let cond = eventually(c, "fw to be suppressed with nothing pending", async || {
        let (_, cond) = offered_condition(c, "fw").await?;
        let open_now = open(&offers(c).await).len();
        if cond.reason == "Suppressed" && open_now == 0 { Ok(cond) } else { Err(format!("{cond:?}, {open_now} open")) }
    })
    .await;
    assert!(!cond.is_true());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_hostname_job_over_two_agents_places_two_and_explains_the_third() {
    let s = start(true).await;
    let c = &s.client;
    submit(c, "uniq", Some("fw"), group(3, "500m", &[&["hostname", "UNIQUE"]], false)).await;
    let why = eventually(c, "two placed on distinct agents, the third explained", async || {
        let ps = placements_of(c, "uniq").await?;
        let agents: std::collections::BTreeSet<_> = ps.iter().map(|p| p.spec.agent.clone()).collect();
        let sched = condition(c, "uniq", "Scheduled").await?;
        if ps.len() == 2 && agents.len() == 2 && sched.reason == "Unschedulable" {
            Ok(sched.message)
        } else {
            Err(format!("{} placements on {agents:?}; {sched:?}", ps.len()))
        }
    })
    .await;
    assert!(why.contains("0/2 agents fit") && why.contains("2 excluded by UNIQUE hostname"), "{why}");
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    eventually(c, "a FailedScheduling event", async || {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let found = list.iter().any(|e| {
            e.involved_object.name.as_deref() == Some("uniq")
                && e.reason.as_deref() == Some("FailedScheduling")
                && e.message.as_deref().is_some_and(|m| m.contains("UNIQUE hostname"))
        });
        if found { Ok(()) } else { Err(format!("{:?}", list.iter().map(|e| &e.reason).collect::<Vec<_>>())) }
    })
    .await;
    // Nothing is offered that the third instance cannot use, and the framework says why.
    let cond = eventually(c, "fw told its constraints rule out every agent", async || {
        let (_, cond) = offered_condition(c, "fw").await?;
        let open_now = open(&offers(c).await).len();
        if cond.reason == "NoUsableAgent" && open_now == 0 {
            Ok(cond)
        } else {
            Err(format!("{cond:?}, {open_now} open"))
        }
    })
    .await;
    assert!(cond.message.contains("constraints rule out all 2"), "{cond:?}");
    assert_eq!(placements_of(c, "uniq").await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_that_does_not_fit_is_not_partly_placed_and_holds_nothing() {
    let s = start(false).await;
    let c = &s.client;
    // Three tasks of 3 CPU, one per 4-CPU agent at most: two fit, the gang does not.
    submit(c, "gang", Some("fw"), group(3, "3", &[], true)).await;
    let declined = eventually(c, "the gang's offers declined and the Job explained", async || {
        let ps = placements_of(c, "gang").await?;
        assert!(ps.is_empty(), "part of a gang was placed: {:?}", ps.iter().map(|p| p.name_any()).collect::<Vec<_>>());
        let all = offers(c).await;
        assert!(all.iter().all(|o| state(o) != OfferState::Accepted), "an offer was accepted for part of the gang");
        let declined = all.iter().filter(|o| state(o) == OfferState::Declined).count();
        let sched = condition(c, "gang", "Scheduled").await?;
        if declined >= 2 && sched.reason == "Unschedulable" && sched.message.starts_with("gang of 3: only 2 fit") {
            Ok(declined)
        } else {
            Err(format!("{declined} declined; {sched:?}"))
        }
    })
    .await;
    assert!(declined >= 2);
    // Nothing is held for it: a shared-state Job needing both agents runs to completion meanwhile.
    submit(c, "beside", None, group(2, "3", &[], false)).await;
    complete(c, "beside").await;
    assert!(placements_of(c, "gang").await.unwrap().is_empty(), "the gang was partly placed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offers_builtin_framework_and_a_shared_state_one_share_agents_without_overcommit() {
    let s = start(false).await;
    let c = &s.client;
    framework(c, "shared", Mode::SharedState).await;
    submit(c, "via-offers", Some("fw"), group(10, "1", &[], false)).await;
    submit(c, "via-ledger", Some("shared"), group(10, "1", &[], false)).await;
    complete(c, "via-offers").await;
    complete(c, "via-ledger").await;
    let offered = placements_of(c, "via-offers").await.unwrap();
    assert!(offered.iter().all(|p| p.spec.offer.is_some()), "every offers-mode placement names its offer");
    let claimed = placements_of(c, "via-ledger").await.unwrap();
    assert!(claimed.iter().all(|p| p.spec.offer.is_none()), "shared-state placements name no offer");
}
