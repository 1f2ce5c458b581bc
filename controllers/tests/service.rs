//! The `builtin-service` controller and an agent on the fake runtime
//! (containers run until released or killed), against a real in-process
//! API server: instances are kept running, failed ones restart after a
//! backoff, groups scale, and rolling updates stay within their bounds,
//! pause, resume and undo.

mod server;

use std::sync::Arc;

use berth_agent::fake::Fake;
use berth_agent::supervisor::container_id;
use berth_api::framework::{FrameworkSpec, Mode, Scheduler};
use berth_api::job::EnvVar;
use berth_api::retry::RetryPolicy;
use berth_api::rollout::{IntOrPercent, LABEL_TEMPLATE_HASH, REASON_SCALED_DOWN, UpdateStrategy, template_hash};
use berth_api::{Agent, Container, Framework, Job, JobSpec, Phase, Placement, Resources, TaskGroup};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

struct System {
    client: Client,
    fake: Arc<Fake>,
    jobs: Api<Job>,
    placements: Api<Placement>,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

async fn start(mode: Mode) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    let spec = FrameworkSpec { mode, scheduler: Scheduler::BuiltinService, ..Default::default() };
    Api::<Framework>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Framework::new("services", spec))
        .await
        .unwrap();
    server::controllers(&client, &stopped);
    let fake = Arc::new(Fake::new(true));
    let config = server::agent_config("agent-1", dir.path(), "8", "16Gi", None);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
    let agents: Api<Agent> = Api::all(client.clone());
    server::eventually(&client, "the agent to be ready", async || match agents.get_opt("agent-1").await {
        Ok(Some(a)) if a.status.as_ref().is_some_and(|s| s.is_ready()) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    let jobs = Api::namespaced(client.clone(), "default");
    let placements = Api::namespaced(client.clone(), "default");
    System { client, fake, jobs, placements, _stop: stop, _dir: dir }
}

fn container(image: &str) -> Container {
    Container {
        image: image.into(),
        env: vec![EnvVar { name: "FAKE_EXIT".into(), value: "1".into() }],
        resources: Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) },
        ..Default::default()
    }
}

fn service(instances: u32, image: &str, surge: u32, unavailable: u32) -> Job {
    let group = TaskGroup {
        name: "web".into(),
        instances: Some(instances),
        retries: Some(RetryPolicy { limit: None, backoff_seconds: Some(2), max_backoff_seconds: Some(8) }),
        update_strategy: Some(UpdateStrategy {
            max_surge: Some(IntOrPercent::Int(surge)),
            max_unavailable: Some(IntOrPercent::Int(unavailable)),
        }),
        container: container(image),
        ..Default::default()
    };
    Job::new("web", JobSpec { framework: Some("services".into()), task_groups: vec![group], ..Default::default() })
}

/// Reads, changes and writes the Job, again when its status moved meanwhile (409).
async fn edit(sys: &System, change: impl Fn(&mut Job)) {
    server::eventually(&sys.client, "the Job to be edited", async || {
        let mut job = sys.jobs.get("web").await.map_err(|e| e.to_string())?;
        change(&mut job);
        sys.jobs.replace("web", &PostParams::default(), &job).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
}

async fn all(sys: &System) -> Result<Vec<Placement>, String> {
    let lp = ListParams::default().labels("berth.dev/job=web");
    Ok(sys.placements.list(&lp).await.map_err(|e| e.to_string())?.items)
}

fn phase(p: &Placement) -> Phase {
    p.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

fn live(ps: &[Placement]) -> Vec<&Placement> {
    ps.iter().filter(|p| !phase(p).is_terminal()).collect()
}

fn hash(p: &Placement) -> String {
    p.metadata.labels.as_ref().and_then(|l| l.get(LABEL_TEMPLATE_HASH)).cloned().unwrap_or_default()
}

fn summary(ps: &[Placement]) -> String {
    let mut v: Vec<String> = ps
        .iter()
        .map(|p| {
            format!(
                "{}:{:?}:{}:{}",
                p.metadata.name.as_deref().unwrap_or("?"),
                phase(p),
                &hash(p)[..4],
                p.spec.kill.is_some()
            )
        })
        .collect();
    v.sort();
    v.join(" ")
}

/// Waits until exactly `n` instances of template `image` run and nothing else is live.
async fn running(sys: &System, n: usize, image: &str) -> Vec<Placement> {
    let want = template_hash(&container(image));
    server::eventually(&sys.client, &format!("{n} running instances of {image}"), async || {
        let ps = all(sys).await?;
        let l = live(&ps);
        let ok =
            l.len() == n && l.iter().all(|p| phase(p) == Phase::Running && hash(p) == want && p.spec.kill.is_none());
        if ok { Ok(l.into_iter().cloned().collect()) } else { Err(summary(&ps)) }
    })
    .await
}

async fn condition(sys: &System, type_: &str, reason: &str) -> Job {
    server::eventually(&sys.client, &format!("{type_} with reason {reason}"), async || {
        let j = sys.jobs.get("web").await.map_err(|e| e.to_string())?;
        let st = j.status.clone().unwrap_or_default();
        match berth_api::condition::find(&st.conditions, type_) {
            Some(c) if c.reason == reason && c.observed_generation == j.metadata.generation => Ok(j),
            other => Err(format!("{other:?} / {:?}", st.groups)),
        }
    })
    .await
}

#[tokio::test]
async fn a_failed_instance_is_restarted_after_its_backoff() {
    let sys = start(Mode::SharedState).await;
    sys.jobs.create(&PostParams::default(), &service(2, "registry.test/demo:1", 1, 0)).await.unwrap();
    let first = running(&sys, 2, "registry.test/demo:1").await;
    condition(&sys, "Available", "MinimumInstancesAvailable").await;
    let victim = first.iter().find(|p| p.spec.instance == 0).unwrap();
    sys.fake.release(&container_id(victim), 1);

    let job = server::eventually(&sys.client, "the backoff to show", async || {
        let j = sys.jobs.get("web").await.map_err(|e| e.to_string())?;
        let g = j.status.clone().unwrap_or_default().groups;
        let shown = g.first().and_then(|g| g.instances.first()).is_some_and(|i| i.next_attempt_after.is_some());
        if shown { Ok(j) } else { Err(format!("{g:?}")) }
    })
    .await;
    let st = job.status.unwrap();
    let message = st.groups[0].message.clone().unwrap_or_default();
    assert!(message.contains("instance 0 backing off") && message.contains("exit code 1"), "{message}");
    assert_eq!((st.groups[0].instances[0].failures, st.groups[0].instances[0].last_exit_code), (1, Some(1)));

    let replaced = running(&sys, 2, "registry.test/demo:1").await;
    let next = replaced.iter().find(|p| p.spec.instance == 0).unwrap();
    assert_eq!(next.spec.attempt, 1);
    let failed = sys.placements.get(victim.metadata.name.as_deref().unwrap()).await.unwrap();
    let (failed_at, started_at) =
        (failed.status.unwrap().finished_at.unwrap(), next.metadata.creation_timestamp.clone().unwrap());
    let waited = started_at.0.as_second() - failed_at.parse::<jiff::Timestamp>().unwrap().as_second();
    assert!(waited >= 1, "restarted {waited}s after the failure, backoff is 2s");

    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(sys.client.clone(), "default");
    let said = server::eventually(&sys.client, "a Restarting event", async || {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let texts: Vec<String> = list.items.iter().map(|e| format!("{:?}: {:?}", e.reason, e.message)).collect();
        match texts.iter().find(|t| t.contains("Restarting")) {
            Some(t) => Ok(t.clone()),
            None => Err(texts.join("; ")),
        }
    })
    .await;
    assert!(said.contains("instance 0 of web: attempt 1 after exit code 1"), "{said}");
}

#[tokio::test]
async fn scaling_adds_instances_and_stops_the_highest() {
    let sys = start(Mode::SharedState).await;
    sys.jobs.create(&PostParams::default(), &service(2, "registry.test/demo:1", 1, 0)).await.unwrap();
    running(&sys, 2, "registry.test/demo:1").await;
    edit(&sys, |j| j.spec.task_groups[0].instances = Some(4)).await;
    let four = running(&sys, 4, "registry.test/demo:1").await;
    let mut slots: Vec<u32> = four.iter().map(|p| p.spec.instance).collect();
    slots.sort();
    assert_eq!(slots, [0, 1, 2, 3]);

    edit(&sys, |j| j.spec.task_groups[0].instances = Some(1)).await;
    let one = running(&sys, 1, "registry.test/demo:1").await;
    assert_eq!(one[0].spec.instance, 0);
    let ps = all(&sys).await.unwrap();
    let stopped: Vec<&Placement> = ps.iter().filter(|p| p.spec.instance > 0).collect();
    assert_eq!(stopped.len(), 3, "{}", summary(&ps));
    for p in stopped {
        assert_eq!(p.status.as_ref().and_then(|s| s.reason.as_deref()), Some(REASON_SCALED_DOWN), "{}", summary(&ps));
    }
    condition(&sys, "Ready", "Available").await;
}

/// Patches the group's image.
async fn set_image(sys: &System, image: &str) {
    edit(sys, |j| j.spec.task_groups[0].container.image = image.into()).await;
}

#[tokio::test]
async fn a_rollout_waits_for_new_instances_and_never_exceeds_its_surge() {
    let sys = start(Mode::SharedState).await;
    sys.jobs.create(&PostParams::default(), &service(3, "registry.test/demo:1", 1, 0)).await.unwrap();
    running(&sys, 3, "registry.test/demo:1").await;
    // Pulls of a `slow` image wait until opened: the new instance is not ready.
    set_image(&sys, "registry.test/slow:2").await;
    let new = template_hash(&container("registry.test/slow:2"));
    server::eventually(&sys.client, "one surge instance waiting for its image", async || {
        let ps = all(&sys).await?;
        let l = live(&ps);
        assert!(l.len() <= 4, "more than instances + maxSurge: {}", summary(&ps));
        let waiting = l.iter().filter(|p| hash(p) == new).count();
        let old_kept =
            l.iter().filter(|p| hash(p) != new && p.spec.kill.is_none() && phase(p) == Phase::Running).count();
        if waiting == 1 && old_kept == 3 { Ok(()) } else { Err(summary(&ps)) }
    })
    .await;
    let j = condition(&sys, "Progressing", "Updating").await;
    assert_eq!(j.status.as_ref().unwrap().phase.as_deref(), Some("Updating"));

    sys.fake.open_pulls();
    server::eventually(&sys.client, "the rollout to finish within its bounds", async || {
        let ps = all(&sys).await?;
        let l = live(&ps);
        assert!(l.len() <= 4, "more than instances + maxSurge: {}", summary(&ps));
        let serving = l.iter().filter(|p| phase(p) == Phase::Running && p.spec.kill.is_none()).count();
        assert!(serving >= 3, "fewer than instances - maxUnavailable serve: {}", summary(&ps));
        let done = l.len() == 3 && l.iter().all(|p| hash(p) == new && phase(p) == Phase::Running);
        if done { Ok(()) } else { Err(summary(&ps)) }
    })
    .await;
    let j = condition(&sys, "Progressing", "NewRevisionAvailable").await;
    let st = j.status.unwrap();
    assert_eq!((st.revision, st.revisions.len(), st.available), (Some(2), 2, Some(3)));
    assert_eq!(st.phase.as_deref(), Some("Running"));
}

#[tokio::test]
async fn a_paused_rollout_starts_nothing_new_until_resumed_and_undo_rolls_back() {
    let sys = start(Mode::SharedState).await;
    sys.jobs.create(&PostParams::default(), &service(2, "registry.test/demo:1", 1, 0)).await.unwrap();
    running(&sys, 2, "registry.test/demo:1").await;
    condition(&sys, "Progressing", "NewRevisionAvailable").await;
    sys.jobs
        .patch("web", &PatchParams::default(), &Patch::Merge(&json!({ "spec": { "paused": true } })))
        .await
        .unwrap();
    set_image(&sys, "registry.test/demo:2").await;
    let j = condition(&sys, "Progressing", "Paused").await;
    assert_eq!(j.status.as_ref().unwrap().phase.as_deref(), Some("Paused"));
    let ps = all(&sys).await.unwrap();
    let new = template_hash(&container("registry.test/demo:2"));
    assert!(ps.iter().all(|p| hash(p) != new), "nothing of the new template while paused: {}", summary(&ps));

    sys.jobs
        .patch("web", &PatchParams::default(), &Patch::Merge(&json!({ "spec": { "paused": false } })))
        .await
        .unwrap();
    running(&sys, 2, "registry.test/demo:2").await;
    let j = condition(&sys, "Progressing", "NewRevisionAvailable").await;
    assert_eq!(j.status.as_ref().unwrap().revision, Some(2));

    // Undo as `berth rollout undo` does: the previous revision's templates, back in the spec.
    let job = sys.jobs.get("web").await.unwrap();
    let previous = job.status.clone().unwrap().revisions[0].clone();
    assert_eq!(previous.templates[0].container.image, "registry.test/demo:1");
    edit(&sys, |j| j.spec.task_groups[0].container = previous.templates[0].container.clone()).await;
    running(&sys, 2, "registry.test/demo:1").await;
    let j = condition(&sys, "Progressing", "NewRevisionAvailable").await;
    let st = j.status.unwrap();
    let numbers: Vec<u32> = st.revisions.iter().map(|r| r.revision).collect();
    assert_eq!((st.revision, numbers), (Some(3), vec![2, 3]), "the undone template is the newest revision");
}

#[tokio::test]
async fn a_service_of_an_offers_framework_says_services_use_shared_state() {
    let sys = start(Mode::Offers).await;
    sys.jobs.create(&PostParams::default(), &service(1, "registry.test/demo:1", 1, 0)).await.unwrap();
    let j = condition(&sys, "Stalled", "UnsupportedMode").await;
    let c = berth_api::condition::find(&j.status.unwrap().conditions, "Stalled").cloned().unwrap();
    assert!(c.message.contains("SharedState"), "{c:?}");
    assert!(all(&sys).await.unwrap().is_empty());
}
