//! The offers protocol, running: two external frameworks with weights 1 and
//! 2 share agents by weighted DRF; one accepts with a placement that runs
//! and completes, the other declines and is not offered those agents again
//! while its refusal lasts; an over-sized accept and one naming another
//! framework's offer are refused at create (422), naming why; an unanswered
//! offer expires, is rescinded, and an accept of it is refused; a
//! SharedState Job and an Offers framework share an agent. No agent is
//! overcommitted and every outstanding offer is held at every poll (see
//! `support`).

mod server;
mod support;

use berth_api::cluster::ClusterSpec;
use berth_api::job::EnvVar;
use berth_api::{Container, Job, JobSpec, OfferState, Phase, TaskGroup};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_frameworks_are_offered_and_accept_runs_and_decline_filters() {
    let s = start(None, true, &[("fa", 1.0), ("fb", 2.0)]).await;
    let c = &s.client;

    let by = eventually(c, "all 8 CPUs offered", async || {
        let by = offered_cpu(&offers(c).await);
        if by.values().sum::<u64>() == 8000 { Ok(by) } else { Err(format!("{by:?}")) }
    })
    .await;
    assert!(by["fb"] > by["fa"] && by["fa"] > 0, "weight 2 should be offered more than weight 1: {by:?}");
    eventually(c, "both frameworks' status", async || {
        let ((fa, ca), (fb, cb)) = (offered_condition(c, "fa").await?, offered_condition(c, "fb").await?);
        let (sa, sb) = (fa.status.clone().unwrap_or_default(), fb.status.clone().unwrap_or_default());
        let ok = ca.is_true()
            && cb.is_true()
            && sb.dominant_share > sa.dominant_share
            && sa.offers_outstanding.is_some_and(|n| n > 0);
        if ok { Ok(()) } else { Err(format!("fa {sa:?} / fb {sb:?}")) }
    })
    .await;

    // Accept: a placement naming an offer on agent-1 runs and completes.
    let all = offers(c).await;
    let on_agent1 = open(&all).into_iter().filter(|o| o.spec.agent == "agent-1").cloned().collect::<Vec<_>>();
    let o1 = on_agent1.iter().find(|o| o.spec.framework == "fa").unwrap_or(&on_agent1[0]).clone();
    let accepter = o1.spec.framework.clone();
    let decliner = if accepter == "fa" { "fb" } else { "fa" };
    accept(c, "run-1", &o1.name_any(), "agent-1", res("1", "1Gi"), Some(&accepter)).await;
    eventually(c, "run-1 to succeed and its offer to be accepted", async || {
        let (phase, why) = phase(&placement(c, "run-1").await);
        let o = offers(c).await.into_iter().find(|o| o.name_any() == o1.name_any()).unwrap();
        if phase == Phase::Succeeded && state(&o) == OfferState::Accepted {
            Ok(())
        } else {
            Err(format!("{phase:?} {why} {:?}", o.status))
        }
    })
    .await;

    // Refusals at create: over-sized, and naming another framework's offer.
    let all = offers(c).await;
    let o2 = open(&all).into_iter().find(|o| o.spec.agent == "a2").expect("an open offer on a2").clone();
    let (mine, other) = (o2.spec.framework.as_str(), if o2.spec.framework == "fa" { "fb" } else { "fa" });
    let too_big = try_accept(c, "too-big", &o2.name_any(), "a2", res("64", "1Gi"), Some(mine)).await;
    assert_refused(c, "too-big", too_big, "spec.resources", "cpu 64 is more than").await;
    let not_mine = try_accept(c, "not-mine", &o2.name_any(), "a2", res("1", "1Gi"), Some(other)).await;
    assert_refused(c, "not-mine", not_mine, "metadata.labels", &format!("must name framework {mine}")).await;
    let still = offers(c).await.into_iter().find(|o| o.name_any() == o2.name_any()).unwrap();
    assert_eq!(state(&still), OfferState::Outstanding, "a refused accept leaves the offer open");

    // Decline: with the accepter suppressed, the decliner declines all its
    // offers and is then told it is filtered, not re-offered those agents.
    set_spec(c, &accepter, json!({"suppressed": true})).await;
    let api: Api<berth_api::Offer> = Api::namespaced(c.clone(), "default");
    let decline = json!({"spec": {"decline": {"refuseSeconds": 60}}});
    let mut declined = std::collections::BTreeSet::new();
    let cond = eventually(c, "the decliner to be filtered", async || {
        for o in open(&offers(c).await).into_iter().filter(|o| o.spec.framework == decliner) {
            api.patch(&o.name_any(), &PatchParams::default(), &Patch::Merge(&decline))
                .await
                .map_err(|e| e.to_string())?;
            declined.insert(o.spec.agent.clone());
        }
        let (_, cond) = offered_condition(c, decliner).await?;
        let mine = offers(c).await.into_iter().filter(|o| o.spec.framework == decliner).collect::<Vec<_>>();
        let open_now = open(&mine).len();
        let unrecorded = mine.iter().filter(|o| o.spec.decline.is_some() && state(o) != OfferState::Declined).count();
        if !cond.is_true() && cond.reason == "Declined" && open_now == 0 && unrecorded == 0 {
            Ok(cond)
        } else {
            Err(format!("{cond:?}, {open_now} open, {unrecorded} declines unrecorded"))
        }
    })
    .await;
    assert!(cond.message.contains("declined"), "{cond:?}");
    for o in offers(c).await.iter().filter(|o| o.spec.framework == decliner && o.spec.decline.is_some()) {
        let st = o.status.clone().unwrap_or_default();
        assert_eq!((st.refuse_seconds, st.closed_at.is_some()), (Some(60), true), "{st:?}");
    }
    let reoffered: Vec<_> = open(&offers(c).await)
        .into_iter()
        .filter(|o| o.spec.framework == decliner && declined.contains(&o.spec.agent))
        .map(|o| o.name_any())
        .collect();
    assert!(reoffered.is_empty(), "re-offered declined agents within refuseSeconds: {reoffered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_offer_expires_is_rescinded_and_cannot_be_accepted() {
    let cluster = ClusterSpec { offer_timeout_seconds: Some(1), ..Default::default() };
    let s = start(Some(cluster), true, &[("fa", 1.0)]).await;
    let c = &s.client;
    let expired = eventually(c, "an offer on a2 rescinded as expired", async || {
        let all = offers(c).await;
        let found = all.iter().find(|o| {
            o.spec.agent == "a2"
                && state(o) == OfferState::Rescinded
                && o.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Expired")
        });
        found.cloned().ok_or(format!("{:?}", all.iter().map(|o| (o.name_any(), state(o))).collect::<Vec<_>>()))
    })
    .await;
    let late = try_accept(c, "late", &expired.name_any(), "a2", res("1", "1Gi"), Some("fa")).await;
    assert_refused(c, "late", late, "spec.offer", "was Rescinded (Expired)").await;
    eventually(c, "a2 offered again", async || {
        let all = offers(c).await;
        let again = open(&all).into_iter().any(|o| o.spec.agent == "a2");
        if again { Ok(()) } else { Err(format!("{} offers, none open on a2", all.len())) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_state_job_and_an_offers_framework_share_an_agent() {
    let cluster = ClusterSpec { offer_timeout_seconds: Some(2), ..Default::default() };
    let s = start(Some(cluster), false, &[("fa", 1.0)]).await;
    let c = &s.client;
    eventually(c, "fa to hold all of agent-1 in offers", async || {
        let by = offered_cpu(&offers(c).await);
        if by.get("fa") == Some(&4000) { Ok(()) } else { Err(format!("{by:?}")) }
    })
    .await;
    let container = Container {
        image: "registry.test/demo:1".into(),
        env: vec![EnvVar { name: "FAKE_EXIT".into(), value: "0".into() }],
        resources: res("1", "1Gi"),
        ..Default::default()
    };
    let group = TaskGroup { name: "main".into(), instances: Some(6), container, ..Default::default() };
    let job = Job::new("batch", JobSpec { task_groups: vec![group], ..Default::default() });
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    jobs.create(&PostParams::default(), &job).await.unwrap();
    // fa's offers expire every 2 s; the Job claims what they free between
    // rounds, and no capacity is ever both held and claimed.
    eventually(c, "the Job to complete beside fa's offers", async || {
        let j = jobs.get("batch").await.map_err(|e| e.to_string())?;
        let conds = j.status.clone().map(|s| s.conditions).unwrap_or_default();
        let done = berth_api::condition::find(&conds, "Complete").is_some_and(|c| c.is_true());
        if done { Ok(()) } else { Err(format!("{conds:?}")) }
    })
    .await;
}
