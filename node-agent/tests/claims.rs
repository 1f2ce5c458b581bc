//! The claim gate against a real in-process API server and the agent on the
//! fake runtime: a placement runs only once the agent's ledger holds a claim
//! for it; one never claimed ends `Failed`/`Unclaimed` after the agent's
//! claim wait; one that ends while it waits is never started; one that would
//! overcommit the agent is refused even when the ledger says it fits. And,
//! once claimed, a pull that fails shows `ImagePullBackOff` until it succeeds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent::AgentConfig;
use berth_agent::fake::{Call, Fake};
use berth_agent::supervisor::container_id;
use berth_api::{Agent, Claim, ClaimKind, Container, Phase, Placement, PlacementSpec, Resources};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

const AGENT: &str = "agent-1";

struct System {
    client: Client,
    fake: Arc<Fake>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// An API server and one agent (fake runtime, containers held until
/// released) whose placements wait `claim_wait` for their claims.
async fn start(claim_wait: Duration) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).unwrap();
    tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), stopped()));
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();

    let fake = Arc::new(Fake::new(true));
    let config = AgentConfig {
        name: AGENT.into(),
        data_dir: dir.path().join(AGENT),
        policy: Default::default(),
        cpu: Some("2".into()),
        memory: Some("1Gi".into()),
        ports: Vec::new(),
        hostname: None,
        endpoint: "http://127.0.0.1:1".into(),
        heartbeat: Duration::from_secs(3600),
        kill_grace: Duration::from_secs(1),
        claim_wait,
        log_max_bytes: berth_agent::rotate::DEFAULT_MAX_BYTES,
        log_max_files: berth_agent::rotate::DEFAULT_MAX_FILES,
        images: Default::default(),
    };
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped()));
    let agents: Api<Agent> = Api::all(client.clone());
    eventually("the agent to be ready", async || match agents.get_opt(AGENT).await {
        Ok(Some(a)) if a.status.as_ref().is_some_and(|s| s.is_ready()) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    System { client, fake, _stop: tx, _dir: dir }
}

/// Polls `check` until it returns `Ok`; panics with the last observation after 30 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("timed out waiting for {what}; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn placements(sys: &System) -> Api<Placement> {
    Api::namespaced(sys.client.clone(), "default")
}

async fn create(sys: &System, name: &str) -> Placement {
    create_with(sys, name, "100m").await
}

async fn create_with(sys: &System, name: &str, cpu: &str) -> Placement {
    create_full(sys, name, "registry.test/demo:1", cpu).await
}

async fn create_with_image(sys: &System, name: &str, image: &str) -> Placement {
    create_full(sys, name, image, "100m").await
}

async fn create_full(sys: &System, name: &str, image: &str, cpu: &str) -> Placement {
    let spec = PlacementSpec {
        agent: AGENT.into(),
        job: "by-hand".into(),
        task_group: "main".into(),
        container: Container {
            image: image.into(),
            resources: Resources { cpu: Some(cpu.into()), memory: Some("64Mi".into()) },
            ..Default::default()
        },
        ..Default::default()
    };
    placements(sys).create(&PostParams::default(), &Placement::new(name, spec)).await.unwrap()
}

/// Adds a placement claim for `p` to the agent's ledger, as a scheduler does.
async fn claim(sys: &System, p: &Placement) {
    claim_as(sys, p, &p.spec.container.resources).await
}

/// Adds a placement claim for `p` holding `resources` (a wrong ledger's, when they are not `p`'s).
async fn claim_as(sys: &System, p: &Placement, resources: &Resources) {
    let agents: Api<Agent> = Api::all(sys.client.clone());
    eventually("the claim to be written", async || {
        let mut a = agents.get(AGENT).await.map_err(|e| e.to_string())?;
        let status = a.status.get_or_insert_with(Default::default);
        status.claims.push(Claim {
            kind: ClaimKind::Placement,
            owner: format!("default/{}", p.name_any()),
            uid: p.uid().unwrap_or_default(),
            resources: resources.clone(),
            ports: Vec::new(),
            created_at: Some(berth_api::now_rfc3339()),
        });
        status.allocated = status.claimed().unwrap().to_resources();
        agents.replace_status(AGENT, &PostParams::default(), &a).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
}

/// The placement's phase, reason and message.
async fn phase(sys: &System, name: &str) -> (Phase, String, String) {
    let st = placements(sys).get(name).await.unwrap().status.unwrap_or_default();
    (st.phase, st.reason.unwrap_or_default(), st.message.unwrap_or_default())
}

async fn running(sys: &System, name: &str) {
    eventually(&format!("{name} to run"), async || match phase(sys, name).await {
        (Phase::Running, ..) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
}

/// What the fake runtime was asked to start for `p`.
fn touched(sys: &System, p: &Placement) -> Vec<Call> {
    let id = container_id(p);
    sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Start(s) if *s == id)).collect()
}

/// A claimed placement created after `p`: once it runs, the agent has seen `p`
/// (the watch delivers placements in the order they were written).
async fn seen_after(sys: &System, name: &str) {
    let sentinel = create(sys, name).await;
    claim(sys, &sentinel).await;
    running(sys, name).await;
}

#[tokio::test]
async fn a_placement_with_no_claim_is_never_started_and_ends_unclaimed() {
    let sys = start(Duration::from_secs(1)).await;
    let p = create(&sys, "by-hand").await;
    let (phase, reason, message) =
        eventually("the placement to fail Unclaimed", async || match phase(&sys, "by-hand").await {
            st @ (Phase::Failed, ..) => Ok(st),
            other => Err(format!("{other:?}")),
        })
        .await;
    assert_eq!((phase, reason.as_str()), (Phase::Failed, "Unclaimed"), "{message}");
    assert!(message.contains(&format!("no claim for it in agent {AGENT}'s ledger")), "{message}");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it: {:?}", sys.fake.calls());
    assert!(sys.fake.calls().is_empty(), "not even pulled: {:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_placement_starts_once_its_claim_appears() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create(&sys, "late").await;
    seen_after(&sys, "sentinel").await;
    assert_eq!(phase(&sys, "late").await.0, Phase::Pending, "it waits for its claim");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it yet");

    claim(&sys, &p).await;
    running(&sys, "late").await;
    assert_eq!(touched(&sys, &p), [Call::Start(container_id(&p))]);
}

#[tokio::test]
async fn a_placement_that_fails_while_waiting_is_never_started() {
    let sys = start(Duration::from_secs(5)).await;
    let p = create(&sys, "refused").await;
    seen_after(&sys, "sentinel").await;
    // As the allocator refuses a placement its offer cannot cover.
    let refusal = serde_json::json!({"status": {"phase": "Failed", "reason": "OfferRefused", "message": "refused"}});
    placements(&sys).patch_status("refused", &PatchParams::default(), &Patch::Merge(&refusal)).await.unwrap();

    // An unclaimed placement created after the refusal fails once its wait
    // is over; by then the refused one's wait is over too.
    create(&sys, "later").await;
    eventually("the later placement to fail Unclaimed", async || match phase(&sys, "later").await {
        (Phase::Failed, r, _) if r == "Unclaimed" => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    let (phase, reason, _) = phase(&sys, "refused").await;
    assert_eq!((phase, reason.as_str()), (Phase::Failed, "OfferRefused"), "the refusal is kept");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it: {:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_placement_that_would_overcommit_the_agent_fails_even_when_the_ledger_says_it_fits() {
    let sys = start(Duration::from_secs(30)).await;
    let first = create_with(&sys, "first", "1500m").await;
    claim(&sys, &first).await;
    running(&sys, "first").await;

    // A wrong ledger: the claim holds less than the placement needs.
    let second = create_with(&sys, "second", "1500m").await;
    claim_as(&sys, &second, &Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) }).await;
    let (ended, reason, message) =
        eventually("the placement to fail Overcommitted", async || match phase(&sys, "second").await {
            st @ (Phase::Failed, ..) => Ok(st),
            other => Err(format!("{other:?}")),
        })
        .await;
    assert_eq!((ended, reason.as_str()), (Phase::Failed, "Overcommitted"), "{message}");
    assert!(message.contains("cpu 3 of 2"), "the message says what is short: {message}");
    assert_eq!(touched(&sys, &second), [], "nothing was started for it: {:?}", sys.fake.calls());
    assert_eq!(phase(&sys, "first").await.0, Phase::Running, "the first keeps running");
}

#[tokio::test]
async fn a_pull_that_fails_twice_backs_off_then_runs_with_the_backoff_reason_cleared() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create_with_image(&sys, "flaky", "registry.test/flaky:1").await;
    claim(&sys, &p).await;
    let message = eventually("the pull to back off", async || match phase(&sys, "flaky").await {
        (Phase::Staging, reason, message) if reason == "ImagePullBackOff" => Ok(message),
        other => Err(format!("{other:?}")),
    })
    .await;
    assert!(message.contains("failed") && message.contains("attempt"), "{message}");
    running(&sys, "flaky").await;
    let (_, reason, message) = phase(&sys, "flaky").await;
    assert_eq!((reason.as_str(), message.as_str()), ("", ""), "the backoff reason outlived the pull");
    let pulls = sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Pull(_))).count();
    assert_eq!(pulls, 3, "{:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_running_placement_marked_lost_is_killed_at_once_and_not_reported_on() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create(&sys, "replaced").await;
    claim(&sys, &p).await;
    running(&sys, "replaced").await;

    // The node-lifecycle controller judged the agent lost and the task was replaced elsewhere.
    let lost = serde_json::json!({"status": {"phase": "Lost", "reason": berth_api::placement::REASON_AGENT_LOST}});
    placements(&sys).patch_status("replaced", &PatchParams::default(), &Patch::Merge(&lost)).await.unwrap();
    let id = container_id(&p);
    eventually("the container to be killed and removed", async || {
        let calls = sys.fake.calls();
        match calls.contains(&Call::Remove(id.clone())) {
            true => Ok(calls),
            false => Err(format!("{calls:?}")),
        }
    })
    .await;
    let kills: Vec<Call> = sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Kill(k, _) if *k == id)).collect();
    assert_eq!(kills, [Call::Kill(id.clone(), libc::SIGKILL)], "SIGKILL at once, no grace period");
    seen_after(&sys, "after").await;
    let (phase, reason, _) = phase(&sys, "replaced").await;
    assert_eq!((phase, reason.as_str()), (Phase::Lost, berth_api::placement::REASON_AGENT_LOST));
}
