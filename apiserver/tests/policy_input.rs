//! Invariant 7 for the allocation policy and the offer protocol: a Cluster,
//! Framework or Offer with a value its schema refuses gets a 422 Status
//! naming the field, and nothing is stored; manifests written before the
//! policy fields existed still apply.

mod common;

use common::Server;
use serde_json::{Value, json};

const JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];
const CLUSTERS: &str = "/apis/berth.dev/v1alpha1/clusters";
const FRAMEWORKS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/frameworks";
const OFFERS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/offers";

fn obj(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "berth.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// The names stored under `path`.
async fn stored(server: &Server, path: &str) -> Vec<String> {
    let (code, _, body) = server.raw("GET", path, &[], "").await;
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("list");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").into())
        .collect()
}

/// POSTs `body` and asserts a 422 whose causes name `field`.
async fn refused(server: &Server, path: &str, body: Value, field: &str) {
    let (code, _, resp) = server.raw("POST", path, &JSON, &body.to_string()).await;
    assert_eq!(code, 422, "{body} -> {resp}");
    let st: Value = serde_json::from_str(&resp).expect("Status");
    assert_eq!(st["reason"], "Invalid", "{resp}");
    let fields: Vec<&str> =
        st["details"]["causes"].as_array().expect("causes").iter().filter_map(|c| c["field"].as_str()).collect();
    assert!(fields.contains(&field), "{body}: causes name {fields:?}, not {field}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policy_values_are_refused_naming_the_field() {
    let server = Server::start().await;
    let role = |extra: Value| {
        let mut r = json!({"name": "prod"});
        r.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        obj("Cluster", "c", json!({"roles": [r]}))
    };
    refused(&server, CLUSTERS, role(json!({"weight": 0})), "spec.roles[0].weight").await;
    refused(&server, CLUSTERS, role(json!({"weight": -2})), "spec.roles[0].weight").await;
    refused(&server, CLUSTERS, role(json!({"limit": {"cpu": "lots"}})), "spec.roles[0].limit.cpu").await;
    refused(&server, CLUSTERS, role(json!({"name": ""})), "spec.roles[0].name").await;
    refused(
        &server,
        CLUSTERS,
        obj("Cluster", "c", json!({"allocation": {"policy": "Fair"}})),
        "spec.allocation.policy",
    )
    .await;
    refused(&server, CLUSTERS, obj("Cluster", "c", json!({"offerTimeoutSeconds": 0})), "spec.offerTimeoutSeconds")
        .await;
    refused(&server, CLUSTERS, obj("Cluster", "c", json!({"refuseSeconds": -1})), "spec.refuseSeconds").await;
    assert!(stored(&server, CLUSTERS).await.is_empty());

    refused(&server, FRAMEWORKS, obj("Framework", "f", json!({"weight": 0})), "spec.weight").await;
    refused(&server, FRAMEWORKS, obj("Framework", "f", json!({"mode": "Push"})), "spec.mode").await;
    refused(&server, FRAMEWORKS, obj("Framework", "f", json!({"priority": "high"})), "spec.priority").await;
    assert!(stored(&server, FRAMEWORKS).await.is_empty());

    let offer = |spec: Value| obj("Offer", "o", spec);
    refused(&server, OFFERS, offer(json!({"framework": "", "agent": "a", "resources": {}})), "spec.framework").await;
    refused(&server, OFFERS, offer(json!({"framework": "f", "resources": {}})), "spec.agent").await;
    let decline = json!({"framework": "f", "agent": "a", "resources": {}, "decline": {"refuseSeconds": -5}});
    refused(&server, OFFERS, offer(decline), "spec.decline.refuseSeconds").await;
    assert!(stored(&server, OFFERS).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_manifests_old_and_new_apply_and_defaults_fill_in() {
    let server = Server::start().await;
    let old = obj("Cluster", "old", json!({"agentSelector": {"pool": "a"}}));
    let new = obj(
        "Cluster",
        "new",
        json!({"allocation": {"policy": "StrictPriority"}, "offerTimeoutSeconds": 10, "refuseSeconds": 60,
               "roles": [{"name": "prod", "weight": 2.5, "guarantee": {"cpu": "4", "memory": "8Gi"}, "limit": {"cpu": 16}}]}),
    );
    for c in [old, new] {
        let (code, _, resp) = server.raw("POST", CLUSTERS, &JSON, &c.to_string()).await;
        assert_eq!(code, 201, "{resp}");
    }
    let (_, _, body) = server.raw("GET", &format!("{CLUSTERS}/old"), &[], "").await;
    let old: Value = serde_json::from_str(&body).expect("cluster");
    assert_eq!(old["spec"]["allocation"]["policy"], "DRF", "the default policy fills in: {body}");

    let fw = obj(
        "Framework",
        "f",
        json!({"role": "prod", "weight": 2, "priority": 5, "mode": "Offers", "failoverTimeoutSeconds": 600}),
    );
    let (code, _, resp) = server.raw("POST", FRAMEWORKS, &JSON, &fw.to_string()).await;
    assert_eq!(code, 201, "{resp}");
    let offer = obj(
        "Offer",
        "o",
        json!({"framework": "f", "agent": "a", "resources": {"cpu": "1"}, "expiresAt": "2026-01-01T00:00:30Z"}),
    );
    let (code, _, resp) = server.raw("POST", OFFERS, &JSON, &offer.to_string()).await;
    assert_eq!(code, 201, "{resp}");
    assert_eq!(stored(&server, OFFERS).await, ["o"]);
    server.stop().await;
}
