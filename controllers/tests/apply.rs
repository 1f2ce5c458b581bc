//! The plan applier against a real in-process API server: when another
//! scheduler takes an agent's room between planning and claiming, a gang
//! gives back what it already claimed elsewhere; other tasks keep theirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::condition::Condition;
use berth_api::invariants::assert_no_overcommit;
use berth_api::{Agent, AgentSpec, AgentStatus, Claim, ClaimKind, ResourceVec, Resources};
use berth_controllers::scheduler::apply::apply;
use berth_controllers::scheduler::plan::{Demand, Plan};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::watch;

struct Store {
    agents: Api<Agent>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// An API server with two ready agents of 1 CPU each; returns them as a
/// scheduler would have cached them.
async fn start() -> (Store, Vec<Arc<Agent>>) {
    let dir = tempfile::tempdir().unwrap();
    let (stop, mut rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).unwrap();
    let stopped = async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), stopped));
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let agents: Api<Agent> = Api::all(client);
    let mut cached = Vec::new();
    for name in ["agent-1", "agent-2"] {
        let created = agents.create(&PostParams::default(), &Agent::new(name, AgentSpec::default())).await.unwrap();
        let mut a = created.clone();
        let one_cpu = Resources { cpu: Some("1".into()), memory: Some("1Gi".into()) };
        a.status = Some(AgentStatus {
            allocatable: one_cpu.clone(),
            capacity: one_cpu,
            conditions: vec![Condition::new("Ready", true, "AgentReady", "")],
            ..Default::default()
        });
        cached.push(Arc::new(agents.replace_status(name, &PostParams::default(), &a).await.unwrap()));
    }
    (Store { agents, _stop: stop, _dir: dir }, cached)
}

/// Another scheduler claims 600m of `agent` behind our cache's back.
async fn someone_else_claims(store: &Store, agent: &str) {
    let mut a = store.agents.get(agent).await.unwrap();
    a.status.as_mut().unwrap().claims.push(Claim {
        kind: ClaimKind::Placement,
        owner: "default/other".into(),
        uid: String::new(),
        resources: Resources { cpu: Some("600m".into()), memory: Some("64Mi".into()) },
        ports: Vec::new(),
        created_at: None,
    });
    store.agents.replace_status(agent, &PostParams::default(), &a).await.unwrap();
}

/// A plan putting `g-0` on agent-1 and `g-1` on agent-2, 600m each.
fn plan() -> Plan {
    let d = |p: &str| Demand::new(p, ResourceVec::new(600, 64 << 20), 0);
    Plan {
        assignments: BTreeMap::from([("agent-1".into(), vec![d("g-0")]), ("agent-2".into(), vec![d("g-1")])]),
        unplaced: vec![],
    }
}

async fn owners(store: &Store, agent: &str) -> Vec<String> {
    let a = store.agents.get(agent).await.unwrap();
    a.status.unwrap_or_default().claims.into_iter().map(|c| c.owner).collect()
}

#[tokio::test]
async fn a_gang_that_loses_a_race_on_one_agent_releases_its_claims_on_the_others() {
    let (store, cached) = start().await;
    someone_else_claims(&store, "agent-2").await;
    let gang: BTreeMap<String, String> = [("g-0", "main"), ("g-1", "main")].map(|(p, g)| (p.into(), g.into())).into();

    let applied = apply(&store.agents, &cached, "default", &plan(), vec![], &gang, "t").await.unwrap();

    assert!(applied.bound.is_empty(), "no instance of a broken gang may get a placement: {:?}", applied.bound);
    assert_eq!(
        applied.conflict.as_deref(),
        Some("gang main: agent agent-2 filled up while claiming; released its claims, retrying")
    );
    assert!(owners(&store, "agent-1").await.is_empty(), "agent-1's claim was released");
    assert_eq!(owners(&store, "agent-2").await, ["default/other"]);
    assert_no_overcommit(&store.agents.list(&ListParams::default()).await.unwrap().items);
}

#[tokio::test]
async fn tasks_outside_a_gang_keep_what_they_claimed() {
    let (store, cached) = start().await;
    someone_else_claims(&store, "agent-2").await;

    let applied = apply(&store.agents, &cached, "default", &plan(), vec![], &BTreeMap::new(), "t").await.unwrap();

    assert_eq!(applied.bound, [("g-0".to_string(), "agent-1".to_string())]);
    assert_eq!(applied.conflict.as_deref(), Some("agent agent-2 filled up while placing; retrying"));
    assert_eq!(owners(&store, "agent-1").await, ["default/g-0"]);
    assert_no_overcommit(&store.agents.list(&ListParams::default()).await.unwrap().items);
}

#[tokio::test]
async fn a_gang_member_held_from_an_earlier_round_is_released_too() {
    let (store, cached) = start().await;
    // An earlier round claimed g-0 on agent-1, then stopped before creating its placement.
    let one = vec![Demand::new("g-0", ResourceVec::new(600, 64 << 20), 0)];
    let earlier = Plan { assignments: BTreeMap::from([("agent-1".into(), one)]), unplaced: vec![] };
    apply(&store.agents, &cached, "default", &earlier, vec![], &BTreeMap::new(), "t").await.unwrap();
    someone_else_claims(&store, "agent-2").await;
    let gang: BTreeMap<String, String> = [("g-0", "main"), ("g-1", "main")].map(|(p, g)| (p.into(), g.into())).into();
    let rest = Plan {
        assignments: BTreeMap::from([("agent-2".into(), plan().assignments["agent-2"].clone())]),
        unplaced: vec![],
    };

    let held = vec![("g-0".to_string(), "agent-1".to_string())];
    let applied = apply(&store.agents, &cached, "default", &rest, held, &gang, "t").await.unwrap();

    assert!(applied.bound.is_empty(), "{:?}", applied.bound);
    assert!(owners(&store, "agent-1").await.is_empty(), "the held claim was released with the gang");
}
