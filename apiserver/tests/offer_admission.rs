//! A bad accept of an offer is refused when the Placement is created: 422
//! Invalid with a cause naming the field and why (missing, closed or
//! expired offer, another agent, another or no framework label, more than
//! the offer has left beside the other placements naming it), on dryRun
//! too, and nothing is stored. Good accepts — alone or several that fit
//! together — are created. An accept's `spec.offer` and `spec.agent` never
//! change afterwards.

mod common;

use berth_api::{Container, Offer, OfferSpec, Placement, PlacementSpec, Resources};
use common::{Server, api_error, kubectl::Kubectl};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::Status;
use serde_json::json;

fn res(cpu: &str, memory: &str) -> Resources {
    Resources { cpu: Some(cpu.into()), memory: Some(memory.into()) }
}

/// An Offer of cpu 1, memory 2Gi on agent-1 to framework `fa`, expiring
/// `expires_in` seconds from now, with `status.state` as given.
async fn offer(c: &kube::Client, name: &str, expires_in: i64, state: &str, reason: Option<&str>) {
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(expires_in);
    let spec = OfferSpec {
        framework: "fa".into(),
        agent: "agent-1".into(),
        resources: res("1", "2Gi"),
        ports: Vec::new(),
        expires_at: Some(berth_api::format_time(expires)),
        decline: None,
    };
    let api: Api<Offer> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &Offer::new(name, spec)).await.expect("offer created");
    let status = json!({"status": {"state": state, "reason": reason}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("offer status");
}

fn placement(name: &str, offer: &str, agent: &str, framework: Option<&str>, r: Resources) -> Placement {
    let spec = PlacementSpec {
        agent: agent.into(),
        job: "external".into(),
        task_group: "main".into(),
        offer: Some(offer.into()),
        container: Container { image: "registry.test/demo:1".into(), resources: r, ..Default::default() },
        ..Default::default()
    };
    let mut p = Placement::new(name, spec);
    if let Some(f) = framework {
        p.metadata.labels = Some([("berth.dev/framework".to_string(), f.to_string())].into());
    }
    p
}

fn good(name: &str, offer: &str, r: Resources) -> Placement {
    placement(name, offer, "agent-1", Some("fa"), r)
}

fn placements(c: &kube::Client) -> Api<Placement> {
    Api::namespaced(c.clone(), "default")
}

/// Creates `p` (as a dry run when asked), expects 422 Invalid with a cause
/// on `field` saying `says`, and that nothing named `p` is stored.
async fn refused(c: &kube::Client, p: &Placement, dry_run: bool, field: &str, says: &str) -> Status {
    let api = placements(c);
    let pp = PostParams { dry_run, ..Default::default() };
    let name = p.metadata.name.clone().unwrap_or_default();
    let st = api_error(api.create(&pp, p).await.expect_err(&format!("{name} should be refused")));
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{name}: {st:?}");
    let causes = st.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
    let cause =
        causes.iter().find(|c| c.field == field).unwrap_or_else(|| panic!("{name}: no cause on {field}: {st:?}"));
    assert!(cause.message.contains(says), "{name}: {field} says {:?}, not {says:?}", cause.message);
    assert!(st.message.contains(says), "{name}: the message shows the cause: {}", st.message);
    assert!(api.get_opt(&name).await.expect("get").is_none(), "{name} was stored");
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_that_fit_are_created_and_one_exceeding_what_is_left_is_refused_with_the_numbers() {
    let server = Server::start().await;
    let c = &server.client();
    offer(c, "o1", 60, "Outstanding", None).await;
    let api = placements(c);
    let dry = PostParams { dry_run: true, ..Default::default() };
    api.create(&dry, &good("p1", "o1", res("500m", "1Gi"))).await.expect("a dry run of a good accept passes");
    assert!(api.get_opt("p1").await.expect("get").is_none(), "a dry run stores nothing");
    api.create(&PostParams::default(), &good("p1", "o1", res("500m", "1Gi"))).await.expect("p1 fits");
    let st = refused(
        c,
        &good("p2", "o1", res("1500m", "1Gi")),
        false,
        "spec.resources",
        "\"cpu 1500m, memory 1Gi\": offer o1",
    )
    .await;
    assert!(
        st.message.contains(
            "offer o1 has cpu 1, memory 2Gi of which cpu 500m, memory 1Gi are taken by 1 placement (p1): \
             cpu 1500m is more than the 500m left"
        ),
        "{}",
        st.message
    );
    refused(c, &good("p2", "o1", res("1500m", "1Gi")), true, "spec.resources", "\"cpu 1500m, memory 1Gi\": offer o1")
        .await;
    api.create(&PostParams::default(), &good("p2", "o1", res("500m", "1Gi"))).await.expect("p1 and p2 fit together");
    refused(c, &good("p3", "o1", res("100m", "1Mi")), false, "spec.resources", "taken by 2 placements (p1, p2)").await;
    // A placement that finished no longer takes its share.
    let failed = json!({"status": {"phase": "Failed", "reason": "Error"}});
    api.patch_status("p2", &PatchParams::default(), &Patch::Merge(&failed)).await.expect("p2 failed");
    api.create(&PostParams::default(), &good("p3", "o1", res("500m", "1Gi"))).await.expect("p2's share is free");
    // A placement that names no offer is not an accept.
    let mut plain = good("plain", "o1", res("64", "1Ti"));
    plain.spec.offer = None;
    api.create(&PostParams::default(), &plain).await.expect("no offer, nothing to check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_of_missing_closed_or_expired_offers_are_refused_saying_why() {
    let server = Server::start().await;
    let c = &server.client();
    offer(c, "declined", 60, "Declined", None).await;
    offer(c, "rescinded", 60, "Rescinded", Some("Expired")).await;
    offer(c, "accepted", 60, "Accepted", None).await;
    offer(c, "expired", -5, "Outstanding", None).await;
    for (offer, says) in [
        ("missing", "offer missing not found in namespace default"),
        ("../declined", "not an offer name"),
        ("declined", "offer declined was Declined"),
        ("rescinded", "offer rescinded was Rescinded (Expired)"),
        ("accepted", "offer accepted was already Accepted"),
        ("expired", "offer expired expired at "),
    ] {
        for dry_run in [true, false] {
            refused(c, &good("late", offer, res("100m", "64Mi")), dry_run, "spec.offer", says).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_on_another_agent_or_for_another_framework_are_refused_naming_the_field() {
    let server = Server::start().await;
    let c = &server.client();
    offer(c, "o1", 60, "Outstanding", None).await;
    let r = || res("100m", "64Mi");
    refused(c, &placement("elsewhere", "o1", "agent-2", Some("fa"), r()), false, "spec.agent", "is for agent agent-1")
        .await;
    refused(
        c,
        &placement("theirs", "o1", "agent-1", Some("fb"), r()),
        false,
        "metadata.labels",
        "must name framework fa",
    )
    .await;
    let st =
        refused(c, &placement("unlabelled", "o1", "agent-1", None, r()), false, "metadata.labels", "needs the label")
            .await;
    assert!(st.message.contains("berth.dev/framework: fa"), "{}", st.message);
    // Every problem at once.
    let st =
        refused(c, &placement("all", "o1", "agent-2", None, res("2", "64Mi")), false, "spec.agent", "agent-1").await;
    let fields: Vec<String> = st.details.map(|d| d.causes.into_iter().map(|c| c.field).collect()).unwrap_or_default();
    assert_eq!(fields, ["spec.agent", "metadata.labels", "spec.resources"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepts_offer_and_agent_cannot_be_changed() {
    let server = Server::start().await;
    let c = &server.client();
    offer(c, "o1", 60, "Outstanding", None).await;
    offer(c, "o2", 60, "Outstanding", None).await;
    let api = placements(c);
    api.create(&PostParams::default(), &good("p1", "o1", res("500m", "1Gi"))).await.expect("p1 fits");
    for (patch, field) in
        [(json!({"spec": {"offer": "o2"}}), "spec.offer"), (json!({"spec": {"agent": "agent-2"}}), "spec.agent")]
    {
        let e = api.patch("p1", &PatchParams::default(), &Patch::Merge(&patch)).await.expect_err("immutable");
        let st = api_error(e);
        assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
        let causes = st.details.map(|d| d.causes).unwrap_or_default();
        assert_eq!(causes.first().map(|c| c.field.as_str()), Some(field), "{causes:?}");
    }
    let p1 = api.get("p1").await.expect("p1");
    assert_eq!((p1.spec.offer.as_deref(), p1.spec.agent.as_str()), (Some("o1"), "agent-1"), "nothing changed");
    let mut plain = good("plain", "o1", res("100m", "64Mi"));
    plain.spec.offer = None;
    api.create(&PostParams::default(), &plain).await.expect("plain");
    let e = api.patch("plain", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"offer": "o2"}}))).await;
    assert_eq!(api_error(e.expect_err("an offer is accepted only by creating")).code, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_and_server_side_apply_show_why_an_accept_is_refused() {
    let server = Server::start().await;
    let c = &server.client();
    offer(c, "o1", 60, "Outstanding", None).await;
    let manifest = server.dir.path().join("accept.yaml");
    let yaml = "apiVersion: berth.dev/v1alpha1\nkind: Placement\nmetadata:\n  name: big\n  namespace: default\n  \
                labels: {berth.dev/framework: fa}\nspec:\n  agent: agent-1\n  offer: o1\n  job: external\n  \
                taskGroup: main\n  image: registry.test/demo:1\n  resources: {cpu: \"2\", memory: 1Gi}\n";
    std::fs::write(&manifest, yaml).expect("manifest");
    let out = Kubectl::new(&server).run(&["create", "-f", manifest.to_str().expect("path")]).await;
    assert!(!out.ok, "kubectl create should fail: {out:?}");
    assert!(
        out.stderr.contains("The Placement \"big\" is invalid: spec.resources: Invalid value: \"cpu 2, memory 1Gi\"")
            && out.stderr.contains("cpu 2 is more than the 1 left"),
        "{}",
        out.stderr
    );
    let out = Kubectl::new(&server).run(&["apply", "--server-side", "-f", manifest.to_str().expect("path")]).await;
    assert!(!out.ok && out.stderr.contains("cpu 2 is more than the 1 left"), "server-side apply: {out:?}");
    assert!(placements(c).get_opt("big").await.expect("get").is_none(), "nothing stored");
}
