//! Framework failover, running: two external frameworks renew their Leases
//! and each runs a task on an agent whose containers keep running (fake
//! runtime, hold). The test stops renewing both: their open offers are
//! rescinded (`FrameworkDisconnected`), they are offered nothing and say
//! `Connected=False`. `fa` stays away past its failover timeout (2 s): its
//! placement is deleted, its container killed, and an Event says so. `fb`
//! renews again before its timeout (30 s, so a slow machine cannot reach
//! it first): its task runs on untouched and it is offered again. No agent is overcommitted and every outstanding offer
//! is held at every poll (see `support`).

mod server;
#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_agent::fake::{Call, Fake};
use berth_agent::supervisor::container_id;
use berth_api::framework::{CONDITION_CONNECTED, FrameworkSpec, Mode, Scheduler};
use berth_api::{Condition, Framework, OfferState, Phase};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use support::{accept, eventually, offered_condition, offers, open, phase, placement, res, state};

/// How long a renewal holds the Lease.
const LEASE_SECONDS: i32 = 1;

/// Renews Lease `framework-<fw>` every 250 ms while `on` is true, as a scheduler does.
fn renew(client: &Client, fw: &str, on: Arc<AtomicBool>) {
    let api: Api<Lease> = Api::namespaced(client.clone(), "default");
    let name = format!("framework-{fw}");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if on.load(Ordering::SeqCst) {
                let patch = json!({"spec": {"renewTime": MicroTime(jiff::Timestamp::now())}});
                let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
            }
        }
    });
}

/// Framework `name` (1 CPU / 1Gi offers) with its Lease, renewed while `on`.
async fn framework(client: &Client, name: &str, failover: u32, on: Arc<AtomicBool>) {
    let spec = LeaseSpec {
        holder_identity: Some(format!("{name}-scheduler")),
        lease_duration_seconds: Some(LEASE_SECONDS),
        renew_time: Some(MicroTime(jiff::Timestamp::now())),
        ..Default::default()
    };
    let lease = Lease {
        metadata: kube::api::ObjectMeta { name: Some(format!("framework-{name}")), ..Default::default() },
        spec: Some(spec),
    };
    Api::<Lease>::namespaced(client.clone(), "default").create(&PostParams::default(), &lease).await.unwrap();
    renew(client, name, on);
    let spec = FrameworkSpec {
        mode: Mode::Offers,
        scheduler: Scheduler::External,
        offer_unit: Some(res("1", "1Gi")),
        failover_timeout_seconds: Some(failover),
        ..Default::default()
    };
    Api::<Framework>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &Framework::new(name, spec))
        .await
        .unwrap();
}

/// `fw`'s `Connected` condition once its reason is `reason`.
async fn connected(client: &Client, fw: &str, reason: &str) -> Result<Condition, String> {
    let f = Api::<Framework>::namespaced(client.clone(), "default").get(fw).await.map_err(|e| e.to_string())?;
    let conds = f.status.map(|s| s.conditions).unwrap_or_default();
    match berth_api::condition::find(&conds, CONDITION_CONNECTED) {
        Some(c) if c.reason == reason => Ok(c.clone()),
        other => Err(format!("{fw}: {other:?}")),
    }
}

/// Names of `fw`'s offers, all states.
async fn offer_names(client: &Client, fw: &str) -> BTreeSet<String> {
    offers(client).await.into_iter().filter(|o| o.spec.framework == fw).map(|o| o.name_any()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_framework_loses_its_offers_then_its_tasks_unless_it_reconnects_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _stop, stopped) = server::start(dir.path()).await;
    let c = &c;
    let (on_a, on_b) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(true)));
    framework(c, "fa", 2, on_a.clone()).await;
    framework(c, "fb", 30, on_b.clone()).await;
    server::controllers(c, &stopped);
    let fake = Arc::new(Fake::new(true));
    let config = server::agent_config("agent-1", dir.path(), "4", "8Gi", None);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(c.clone(), fake.clone(), config, logs, stopped.wait()));

    // Connected: each accepts an offer with a task that keeps running.
    for fw in ["fa", "fb"] {
        let o = eventually(c, &format!("{fw} to be offered and connected"), async || {
            connected(c, fw, "LeaseHeld").await?;
            let all = offers(c).await;
            open(&all).into_iter().find(|o| o.spec.framework == fw).cloned().ok_or(format!("{} offers", all.len()))
        })
        .await;
        accept(c, &format!("{fw}-task"), &o.name_any(), "agent-1", res("1", "1Gi"), Some(fw)).await;
    }
    for fw in ["fa", "fb"] {
        let name = format!("{fw}-task");
        eventually(c, &format!("{name} to run and {fw} to hold another open offer"), async || {
            let (p, why) = phase(&placement(c, &name).await);
            let all = offers(c).await;
            let more = open(&all).into_iter().any(|o| o.spec.framework == fw);
            if p == Phase::Running && more { Ok(()) } else { Err(format!("{p:?} {why}; open offer: {more}")) }
        })
        .await;
    }
    let fa_container = container_id(&placement(c, "fa-task").await);
    let fb_container = container_id(&placement(c, "fb-task").await);

    // Both stop renewing: offers rescinded, none made, Connected=False.
    on_a.store(false, Ordering::SeqCst);
    on_b.store(false, Ordering::SeqCst);
    let mut seen = Vec::new();
    for fw in ["fa", "fb"] {
        let cond = eventually(c, &format!("{fw} to be disconnected with its offers rescinded"), async || {
            let cond = connected(c, fw, "LeaseExpired").await?;
            let (_, offered) = offered_condition(c, fw).await?;
            let all = offers(c).await;
            let mine: Vec<_> = all.iter().filter(|o| o.spec.framework == fw).collect();
            let still_open = mine.iter().filter(|o| state(o) == OfferState::Outstanding).count();
            let rescinded = mine
                .iter()
                .any(|o| o.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("FrameworkDisconnected"));
            if offered.reason == "Disconnected" && still_open == 0 && rescinded {
                Ok(cond)
            } else {
                Err(format!("Offered {offered:?}; {still_open} open; rescinded for disconnection: {rescinded}"))
            }
        })
        .await;
        assert!(cond.message.contains(&format!("lease framework-{fw} expired at")), "{cond:?}");
        seen.push(offer_names(c, fw).await);
    }

    // fb comes back before its 30 s timeout; fa does not.
    assert_eq!(offer_names(c, "fb").await, seen[1], "fb was offered something while disconnected");
    on_b.store(true, Ordering::SeqCst);
    eventually(c, "fa's task to be killed after its failover timeout", async || {
        let cond = connected(c, "fa", "FailedOver").await?;
        let gone = Api::<berth_api::Placement>::namespaced(c.clone(), "default").get_opt("fa-task").await;
        let gone = gone.map_err(|e| e.to_string())?.is_none();
        let killed = fake.calls().iter().any(|call| matches!(call, Call::Kill(id, _) if *id == fa_container));
        if gone && killed {
            Ok(cond)
        } else {
            Err(format!("{cond:?}; placement gone {gone}; container killed {killed}"))
        }
    })
    .await;
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let said = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.involved_object.name.as_deref() == Some("fa") && e.reason.as_deref() == Some("FailedOver"));
    let said = said.and_then(|e| e.message).unwrap_or_default();
    assert_eq!(said, "failover timeout of 2s passed: killed 1 tasks");
    assert_eq!(offer_names(c, "fa").await, seen[0], "fa was offered something while disconnected");

    eventually(c, "fb to be connected and offered again", async || {
        connected(c, "fb", "LeaseHeld").await?;
        let all = offers(c).await;
        let again = open(&all).into_iter().any(|o| o.spec.framework == "fb");
        if again { Ok(()) } else { Err("no open offer for fb".into()) }
    })
    .await;
    let (p, why) = phase(&placement(c, "fb-task").await);
    assert_eq!(p, Phase::Running, "fb's task keeps running: {why}");
    assert!(!fake.calls().iter().any(|call| matches!(call, Call::Kill(id, _) if *id == fb_container)));
}
