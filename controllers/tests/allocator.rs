//! The allocator's applier against a real in-process API server: offers
//! become hold claims in agents' ledgers and Offer objects, two allocators
//! racing on the same capacity cannot both hold it, and a rescind marks
//! the Offer and frees the hold.

use berth_api::framework::Mode;
use berth_api::invariants::{assert_no_overcommit, assert_offers_held};
use berth_api::{Agent, AgentSpec, AgentStatus, ClaimKind, Offer, OfferState, ResourceVec, Resources};
use berth_controllers::allocator::apply::{Applied, apply, offer_name};
use berth_controllers::allocator::{AgentInput, Demand, FrameworkInput, Input, RescindReason, RoundPlan, plan_round};
use jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

const GI: u64 = 1 << 30;

struct Server {
    client: Client,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (stop, rx) = watch::channel(false);
    let stopped = async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).unwrap();
    tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), stopped));
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    Server { client, _stop: stop, _dir: dir }
}

/// Registers agent `name` with `cpu` millicores and `mem_gi` GiB allocatable.
async fn agent(client: &Client, name: &str, cpu: u64, mem_gi: u64) -> Agent {
    let api: Api<Agent> = Api::all(client.clone());
    let mut latest = api.create(&PostParams::default(), &Agent::new(name, AgentSpec::default())).await.unwrap();
    for _ in 0..5 {
        latest.status =
            Some(AgentStatus { allocatable: ResourceVec::new(cpu, mem_gi * GI).to_resources(), ..Default::default() });
        match api.replace_status(name, &PostParams::default(), &latest).await {
            Ok(written) => return written,
            // Written meanwhile (the object is re-read): try again on the new version.
            Err(kube::Error::Api(e)) if e.code == 409 => latest = api.get(name).await.unwrap(),
            Err(e) => panic!("writing agent {name}'s status: {e}"),
        }
    }
    panic!("agent {name}'s status kept changing: {latest:?}");
}

fn view(a: &Agent) -> AgentInput {
    let st = a.status.clone().unwrap_or_default();
    AgentInput {
        name: a.metadata.name.clone().unwrap(),
        allocatable: st.allocatable.to_vec().unwrap(),
        claimed: st.claimed().unwrap(),
        holds: st.claims.iter().filter(|c| c.kind == ClaimKind::Hold).map(|c| c.owner.clone()).collect(),
        schedulable: true,
    }
}

fn framework(id: &str, task: ResourceVec, tasks: u64) -> FrameworkInput {
    FrameworkInput {
        id: id.into(),
        role: "*".into(),
        weight: 1.0,
        priority: 0,
        mode: Mode::Offers,
        allocated: ResourceVec::ZERO,
        demand: Some(Demand { total: ResourceVec::new(task.cpu_millis * tasks, task.memory_bytes * tasks), task }),
        usable: None,
        disconnected: None,
    }
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

async fn agents(client: &Client) -> Vec<Agent> {
    Api::<Agent>::all(client.clone()).list(&Default::default()).await.unwrap().items
}

fn holds(a: &Agent) -> Vec<(String, Resources)> {
    let st = a.status.clone().unwrap_or_default();
    st.claims.into_iter().filter(|c| c.kind == ClaimKind::Hold).map(|c| (c.owner, c.resources)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_is_a_hold_in_the_ledger_and_an_outstanding_offer_object() {
    let s = start().await;
    let a1 = agent(&s.client, "a1", 4000, 8).await;
    let task = ResourceVec::new(1000, GI);
    let input = Input {
        agents: vec![view(&a1)],
        frameworks: vec![framework("default/batch", task, 2), framework("default/web", task, 1)],
        ..Default::default()
    };
    let plan = plan_round(&input, now());
    assert_eq!(plan.offers.len(), 2, "{plan:?}");
    let applied = apply(&s.client, &plan, now()).await.unwrap();
    assert_eq!(applied.made.len(), 2, "{applied:?}");

    let ledger = agents(&s.client).await;
    assert_no_overcommit(&ledger);
    let mut held = holds(&ledger[0]);
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let expect =
        |o: &berth_controllers::allocator::NewOffer| (format!("default/{}", offer_name(o)), o.resources.to_resources());
    let mut want: Vec<_> = plan.offers.iter().map(expect).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(held, want);

    let offers: Api<Offer> = Api::namespaced(s.client.clone(), "default");
    for o in &plan.offers {
        let obj = offers.get(&offer_name(o)).await.unwrap();
        assert_eq!(obj.spec.agent, "a1");
        assert_eq!(format!("default/{}", obj.spec.framework), o.framework);
        assert_eq!(obj.spec.expires_at.as_deref(), Some("2026-01-01T00:00:30Z"));
        assert_eq!(obj.status.and_then(|s| s.state), Some(OfferState::Outstanding));
    }

    assert_offers_held(&agents(&s.client).await, &offers.list(&Default::default()).await.unwrap().items);

    // Applying the same plan again changes nothing: no second hold, no error.
    let again = apply(&s.client, &plan, now()).await.unwrap();
    assert_eq!(again.made.len(), 2);
    assert_eq!(holds(&agents(&s.client).await[0]).len(), 2);

    // The next round sees the holds and the open offers: the frameworks'
    // demand is covered, and a newcomer gets only what no offer holds.
    let open = plan
        .offers
        .iter()
        .map(|o| berth_controllers::allocator::OutstandingOffer {
            id: format!("default/{}", offer_name(o)),
            framework: o.framework.clone(),
            agent: o.agent.clone(),
            resources: o.resources,
            expires_at: o.expires_at,
        })
        .collect();
    let mut next = Input { agents: vec![view(&agents(&s.client).await[0])], offers: open, ..input };
    next.frameworks.push(framework("default/late", task, 4));
    let plan2 = plan_round(&next, now());
    assert_eq!(plan2.offers.len(), 1, "{plan2:?}");
    assert_eq!(
        (plan2.offers[0].framework.as_str(), plan2.offers[0].resources),
        ("default/late", ResourceVec::new(1000, GI))
    );
    assert_eq!(plan2.idle["default/batch"].reason, berth_controllers::allocator::IdleReason::OffersOutstanding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_allocators_racing_for_the_same_capacity_cannot_both_hold_it() {
    let s = start().await;
    let a1 = agent(&s.client, "a1", 2000, 4).await;
    let task = ResourceVec::new(2000, 4 * GI);
    // Two allocators plan from the same snapshot, each for its own framework.
    let plan_for = |fw: &str| {
        let input = Input { agents: vec![view(&a1)], frameworks: vec![framework(fw, task, 1)], ..Default::default() };
        plan_round(&input, now())
    };
    let (p1, p2) = (plan_for("default/one"), plan_for("default/two"));
    assert_eq!((p1.offers.len(), p2.offers.len()), (1, 1));
    let (r1, r2) = tokio::join!(apply(&s.client, &p1, now()), apply(&s.client, &p2, now()));
    let (r1, r2): (Applied, Applied) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.made.len() + r2.made.len(), 1, "exactly one wins: {r1:?} {r2:?}");
    assert_eq!(r1.refused.len() + r2.refused.len(), 1);
    let ledger = agents(&s.client).await;
    assert_no_overcommit(&ledger);
    assert_eq!(holds(&ledger[0]).len(), 1);
    let offers: Api<Offer> = Api::namespaced(s.client.clone(), "default");
    let made = offers.list(&Default::default()).await.unwrap().items;
    assert_eq!(made.len(), 1, "the loser creates no Offer");
    assert_offers_held(&ledger, &made);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescinded_offer_is_marked_and_its_hold_released() {
    let s = start().await;
    let a1 = agent(&s.client, "a1", 2000, 4).await;
    let task = ResourceVec::new(1000, GI);
    let input =
        Input { agents: vec![view(&a1)], frameworks: vec![framework("default/f", task, 1)], ..Default::default() };
    let plan = plan_round(&input, now());
    let first = plan.clone();
    let made = apply(&s.client, &plan, now()).await.unwrap().made;
    assert_eq!(made.len(), 1);

    // Past expiresAt, the next round rescinds it.
    let later = now() + SignedDuration::from_secs(31);
    let outstanding = berth_controllers::allocator::OutstandingOffer {
        id: made[0].clone(),
        framework: "default/f".into(),
        agent: "a1".into(),
        resources: plan.offers[0].resources,
        expires_at: plan.offers[0].expires_at,
    };
    let input = Input { agents: vec![view(&agents(&s.client).await[0])], offers: vec![outstanding], ..input };
    let plan = plan_round(&input, later);
    assert_eq!(plan.rescinds, [(made[0].clone(), RescindReason::Expired)]);
    let applied = apply(&s.client, &RoundPlan { offers: vec![], ..plan }, later).await.unwrap();
    assert_eq!(applied.rescinded, made);

    let offers: Api<Offer> = Api::namespaced(s.client.clone(), "default");
    let st = offers.get(made[0].split('/').nth(1).unwrap()).await.unwrap().status.unwrap();
    assert_eq!((st.state, st.reason.as_deref()), (Some(OfferState::Rescinded), Some("Expired")));
    assert_eq!(st.closed_at.as_deref(), Some("2026-01-01T00:00:31Z"));
    assert!(holds(&agents(&s.client).await[0]).is_empty(), "the hold is released");

    // A stale allocator re-applying the first plan does not bring it back.
    let stale = apply(&s.client, &first, now()).await.unwrap();
    assert_eq!((stale.made.len(), stale.refused.len()), (0, 1), "{stale:?}");
    let st = offers.get(made[0].split('/').nth(1).unwrap()).await.unwrap().status.unwrap();
    assert_eq!(st.state, Some(OfferState::Rescinded));
    assert!(holds(&agents(&s.client).await[0]).is_empty(), "no hold is left behind");
}
