//! The harness of the offers tests: a real in-process API server with the
//! controllers, one node agent on the fake runtime (`agent-1`) and one agent
//! registered by the test (`a2`, where nothing runs), and polling that checks
//! on every poll that no agent is overcommitted and every outstanding offer
//! is held.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_agent::fake::Fake;
use berth_api::framework::{CONDITION_OFFERED, FrameworkSpec, Mode, Scheduler};
use berth_api::invariants::assert_offers_held;
use berth_api::job::EnvVar;
use berth_api::{
    Agent, AgentSpec, AgentStatus, Cluster, ClusterSpec, Condition, Container, Framework, Offer, OfferState, Phase,
    Placement, PlacementSpec, Resources,
};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, VersionMatch};
use serde_json::json;

use crate::server;

pub struct System {
    pub client: Client,
    _stop: server::Stop,
    _dir: tempfile::TempDir,
}

pub fn res(cpu: &str, memory: &str) -> Resources {
    Resources { cpu: Some(cpu.into()), memory: Some(memory.into()) }
}

/// Server, controllers, `agent-1` (node agent, fake runtime) and, when
/// `with_a2`, `a2`; each 4 CPU / 8Gi. The `frameworks` (name, weight) exist
/// before the first allocation round, so they contend from the start.
pub async fn start(cluster: Option<ClusterSpec>, with_a2: bool, frameworks: &[(&str, f64)]) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (client, stop, stopped) = server::start(dir.path()).await;
    if let Some(spec) = cluster {
        Api::<Cluster>::all(client.clone()).create(&PostParams::default(), &Cluster::new("main", spec)).await.unwrap();
    }
    let agents: Api<Agent> = Api::all(client.clone());
    if with_a2 {
        register_a2(&agents).await;
    }
    for (name, weight) in frameworks {
        framework(&client, name, *weight).await;
    }
    server::controllers(&client, &stopped);
    let config = server::agent_config("agent-1", dir.path(), "4", "8Gi", None);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), Arc::new(Fake::new(false)), config, logs, stopped.wait()));
    System { client, _stop: stop, _dir: dir }
}

/// Registers `a2`, ready, with nothing running there.
async fn register_a2(agents: &Api<Agent>) {
    let a2 = agents.create(&PostParams::default(), &Agent::new("a2", AgentSpec::default())).await.unwrap();
    let mut a2 = a2.clone();
    a2.status = Some(AgentStatus {
        allocatable: res("4", "8Gi"),
        conditions: vec![Condition::new("Ready", true, "Heartbeat", "")],
        ..Default::default()
    });
    agents.replace_status("a2", &PostParams::default(), &a2).await.unwrap();
}

/// An external Offers framework in `default` with `weight`, offered in units of 1 CPU / 1Gi.
pub async fn framework(client: &Client, name: &str, weight: f64) {
    let spec = FrameworkSpec {
        weight: Some(weight),
        mode: Mode::Offers,
        scheduler: Scheduler::External,
        offer_unit: Some(res("1", "1Gi")),
        ..Default::default()
    };
    Api::<Framework>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Framework::new(name, spec))
        .await
        .unwrap();
}

/// A placement accepting `offer` on `agent`, exiting 0 at once on the fake runtime.
/// With `framework`, it carries the `berth.dev/framework` label.
pub async fn accept(client: &Client, name: &str, offer: &str, agent: &str, r: Resources, framework: Option<&str>) {
    try_accept(client, name, offer, agent, r, framework).await.unwrap();
}

/// [`accept`], answering what the API server said: a bad accept is refused with 422.
pub async fn try_accept(
    client: &Client,
    name: &str,
    offer: &str,
    agent: &str,
    r: Resources,
    framework: Option<&str>,
) -> Result<Placement, kube::Error> {
    let spec = PlacementSpec {
        agent: agent.into(),
        job: "external".into(),
        task_group: "main".into(),
        offer: Some(offer.into()),
        container: Container {
            image: "registry.test/demo:1".into(),
            env: vec![EnvVar { name: "FAKE_EXIT".into(), value: "0".into() }],
            resources: r,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut p = Placement::new(name, spec);
    if let Some(f) = framework {
        p.metadata.labels = Some([("berth.dev/framework".to_string(), f.to_string())].into());
    }
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &p).await
}

/// Expects `answer` to be the API server's 422 refusal of placement `name`
/// with a cause on `field` saying `says`, and nothing stored under `name`.
pub async fn assert_refused(
    client: &Client,
    name: &str,
    answer: Result<Placement, kube::Error>,
    field: &str,
    says: &str,
) {
    let st = match answer {
        Err(kube::Error::Api(st)) => st,
        other => panic!("{name}: expected a refusal, got {other:?}"),
    };
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{name}: {st:?}");
    let causes = st.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
    assert!(causes.iter().any(|c| c.field == field && c.message.contains(says)), "{name}: {st:?}");
    let stored = Api::<Placement>::namespaced(client.clone(), "default").get_opt(name).await.unwrap();
    assert!(stored.is_none(), "{name} was stored");
}

pub async fn offers(client: &Client) -> Vec<Offer> {
    Api::<Offer>::namespaced(client.clone(), "default").list(&ListParams::default()).await.unwrap().items
}

pub fn state(o: &Offer) -> OfferState {
    o.status.as_ref().and_then(|s| s.state).unwrap_or_default()
}

pub fn open(all: &[Offer]) -> Vec<&Offer> {
    all.iter().filter(|o| state(o) == OfferState::Outstanding && o.spec.decline.is_none()).collect()
}

/// Offered CPU (millicores) per framework among open offers.
pub fn offered_cpu(all: &[Offer]) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for o in open(all) {
        *by.entry(o.spec.framework.clone()).or_default() += o.spec.resources.to_vec().unwrap().cpu_millis;
    }
    by
}

/// Polls `check` for up to 30 s, asserting the invariants on every poll.
/// Offers are read at exactly the agents' revision: one snapshot, so an
/// offer closed (and its hold released) between two reads is not mistaken
/// for an unheld one.
pub async fn eventually<T>(client: &Client, what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let agents: Api<Agent> = Api::all(client.clone());
    let offers_api: Api<Offer> = Api::namespaced(client.clone(), "default");
    server::eventually(client, what, async || {
        let list = agents.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
        let rv = list.metadata.resource_version.clone().unwrap_or_default();
        let at = ListParams::default().at(&rv).matching(VersionMatch::Exact);
        let offered = offers_api.list(&at).await.map_err(|e| e.to_string())?.items;
        assert_offers_held(&list.items, &offered);
        check().await
    })
    .await
}

pub async fn placement(client: &Client, name: &str) -> Placement {
    Api::<Placement>::namespaced(client.clone(), "default").get(name).await.unwrap()
}

pub fn phase(p: &Placement) -> (Phase, String) {
    let st = p.status.clone().unwrap_or_default();
    (st.phase, format!("{:?} {}", st.reason, st.message.unwrap_or_default()))
}

pub async fn offered_condition(client: &Client, fw: &str) -> Result<(Framework, Condition), String> {
    let f = Api::<Framework>::namespaced(client.clone(), "default").get(fw).await.map_err(|e| e.to_string())?;
    let conds = f.status.clone().map(|s| s.conditions).unwrap_or_default();
    let c = berth_api::condition::find(&conds, CONDITION_OFFERED).cloned().ok_or(format!("{:?}", f.status))?;
    Ok((f, c))
}

pub async fn set_spec(client: &Client, fw: &str, patch: serde_json::Value) {
    Api::<Framework>::namespaced(client.clone(), "default")
        .patch(fw, &PatchParams::default(), &Patch::Merge(&json!({"spec": patch})))
        .await
        .unwrap();
}
