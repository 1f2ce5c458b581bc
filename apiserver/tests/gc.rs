//! Garbage collection of `ownerReferences`: background, foreground and
//! orphan deletion, dangling and stale references, policies from the body
//! and from the query, and a collector that catches up after a restart.

mod common;

use std::time::Duration;

use berth_api::Job;
use berth_apiserver::{Options, Storage};
use common::{Server, api_error, job};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

fn owner_ref(owner: &Job, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "berth.dev/v1alpha1".into(),
        kind: "Job".into(),
        name: owner.metadata.name.clone().expect("name"),
        uid: owner.metadata.uid.clone().expect("uid"),
        block_owner_deletion: Some(block),
        controller: None,
    }
}

fn owned(name: &str, owners: Vec<OwnerReference>) -> Job {
    let mut j = job(name, "1Mi");
    j.metadata.owner_references = Some(owners);
    j
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    common::eventually(&format!("{name} to be deleted"), LIMIT, || async {
        match api.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(obj)) => Err(format!("{obj:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_a_deleted_owner_are_collected_in_the_background() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    let child = jobs.create(&pp, &owned("child", vec![owner_ref(&owner, false)])).await.expect("child");
    jobs.create(&pp, &owned("grandchild", vec![owner_ref(&child, false)])).await.expect("grandchild");
    let mut secret = Secret::default();
    secret.meta_mut().name = Some("credentials".into());
    secret.meta_mut().owner_references = Some(vec![owner_ref(&owner, false)]);
    secrets.create(&pp, &secret).await.expect("secret");
    jobs.create(&pp, &job("bystander", "1Mi")).await.expect("bystander");

    jobs.delete("owner", &DeleteParams::default()).await.expect("delete owner");
    assert_eq!(
        api_error(jobs.get("owner").await.expect_err("owner")).code,
        404,
        "background deletes the owner at once"
    );
    gone(&jobs, "child").await;
    gone(&jobs, "grandchild").await;
    gone(&secrets, "credentials").await;
    jobs.get("bystander").await.expect("objects without owners stay");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    let mut held = owned("held", vec![owner_ref(&owner, true)]);
    held.metadata.finalizers = Some(vec!["test.berth.dev/hold".into()]);
    jobs.create(&pp, &held).await.expect("held");
    jobs.create(&pp, &owned("free", vec![owner_ref(&owner, false)])).await.expect("free");

    let (code, _, body) = server
        .raw(
            "DELETE",
            "/apis/berth.dev/v1alpha1/namespaces/default/jobs/owner",
            &[("Content-Type", "application/json")],
            r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#,
        )
        .await;
    assert_eq!(code, 202, "{body}");
    let marked = jobs.get("owner").await.expect("the owner stays while dependents go");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.finalizers, Some(vec!["foregroundDeletion".to_string()]));
    gone(&jobs, "free").await;
    common::eventually("the blocking dependent to be marked for deletion", LIMIT, || async {
        let h = jobs.get("held").await.map_err(|e| e.to_string())?;
        h.metadata.deletion_timestamp.clone().ok_or(format!("{:?}", h.metadata))
    })
    .await;
    let still = jobs.get("owner").await.expect("a blocking dependent holds the owner");
    assert!(still.metadata.deletion_timestamp.is_some());

    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    jobs.patch("held", &PatchParams::default(), &release).await.expect("release the dependent");
    gone(&jobs, "held").await;
    gone(&jobs, "owner").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_releases_dependents() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    let other = jobs.create(&pp, &job("other", "1Mi")).await.expect("other owner");
    jobs.create(&pp, &owned("child", vec![owner_ref(&owner, true)])).await.expect("child");
    jobs.create(&pp, &owned("shared", vec![owner_ref(&owner, false), owner_ref(&other, false)])).await.expect("shared");

    jobs.delete("owner", &DeleteParams::orphan()).await.expect("delete owner");
    gone(&jobs, "owner").await;
    let child = jobs.get("child").await.expect("an orphan stays");
    assert_eq!(child.metadata.owner_references, None, "{:?}", child.metadata);
    let shared = jobs.get("shared").await.expect("shared stays");
    assert_eq!(shared.metadata.owner_references, Some(vec![owner_ref(&other, false)]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_to_missing_or_replaced_owners_count_as_gone() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    let mut stale = owner_ref(&owner, false);
    stale.uid = "6d1f9a43-0000-4000-8000-000000000000".into();
    jobs.create(&pp, &owned("stale", vec![stale.clone()])).await.expect("stale");
    jobs.create(&pp, &owned("mixed", vec![stale, owner_ref(&owner, false)])).await.expect("mixed");
    gone(&jobs, "stale").await;
    common::eventually("the stale reference to be dropped", LIMIT, || async {
        let m = jobs.get("mixed").await.map_err(|e| e.to_string())?;
        let refs = m.metadata.owner_references.clone().unwrap_or_default();
        if refs == [owner_ref(&owner, false)] { Ok(()) } else { Err(format!("{refs:?}")) }
    })
    .await;
    jobs.get("owner").await.expect("the live owner is untouched");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletecollection_takes_the_policy_from_the_query() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let mut owner = job("owner", "1Mi");
    owner.metadata.labels = Some([("role".to_string(), "owner".to_string())].into());
    let owner = jobs.create(&pp, &owner).await.expect("owner");
    jobs.create(&pp, &owned("child", vec![owner_ref(&owner, false)])).await.expect("child");
    let base = "/apis/berth.dev/v1alpha1/namespaces/default/jobs";
    let (code, _, body) = server.raw("DELETE", &format!("{base}?propagationPolicy=Sideways"), &[], "").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("propagationPolicy"), "{body}");
    let (code, _, body) = server
        .raw(
            "DELETE",
            &format!("{base}/owner"),
            &[("Content-Type", "application/json")],
            r#"{"propagationPolicy":"Orphan","orphanDependents":true}"#,
        )
        .await;
    assert_eq!(code, 400, "both at once are refused: {body}");
    jobs.get("owner").await.expect("a refused delete deletes nothing");
    let (code, _, body) =
        server.raw("DELETE", &format!("{base}?propagationPolicy=Orphan&labelSelector=role%3Downer"), &[], "").await;
    assert_eq!(code, 200, "{body}");
    gone(&jobs, "owner").await;
    let child = jobs.get("child").await.expect("orphaned, not deleted");
    assert_eq!(child.metadata.owner_references, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_catches_up_after_a_restart() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    jobs.create(&pp, &owned("child", vec![owner_ref(&owner, false)])).await.expect("child");
    let dir = server.stop().await;
    // The owner goes while no server runs: only a re-scan can notice.
    let store = common::eventually("the store to reopen", LIMIT, || async {
        berth_apiserver::Embedded::open(&dir.path().join("store.redb")).map_err(|e| e.to_string())
    })
    .await;
    store.delete("/registry/berth.dev/jobs/default/owner", None).await.expect("delete the owner behind its back");
    drop(store);
    let server = Server::start_in(dir, Options::default()).await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    gone(&jobs, "child").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_goes_down_the_whole_tree_first() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();
    let owner = jobs.create(&pp, &job("owner", "1Mi")).await.expect("owner");
    let child = jobs.create(&pp, &owned("child", vec![owner_ref(&owner, true)])).await.expect("child");
    let mut grandchild = owned("grandchild", vec![owner_ref(&child, true)]);
    grandchild.metadata.finalizers = Some(vec!["test.berth.dev/hold".into()]);
    jobs.create(&pp, &grandchild).await.expect("grandchild");

    jobs.delete("owner", &DeleteParams::foreground()).await.expect("delete owner");
    common::eventually("the child to wait for its own dependents", LIMIT, || async {
        let c = jobs.get("child").await.map_err(|e| e.to_string())?;
        let waiting = c.metadata.deletion_timestamp.is_some()
            && c.metadata.finalizers.as_deref().unwrap_or_default().contains(&"foregroundDeletion".to_string());
        if waiting { Ok(()) } else { Err(format!("{:?}", c.metadata)) }
    })
    .await;
    common::eventually("the grandchild to be marked", LIMIT, || async {
        let g = jobs.get("grandchild").await.map_err(|e| e.to_string())?;
        g.metadata.deletion_timestamp.clone().ok_or(format!("{:?}", g.metadata))
    })
    .await;
    assert!(jobs.get("owner").await.expect("the owner waits").metadata.deletion_timestamp.is_some());

    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    jobs.patch("grandchild", &PatchParams::default(), &release).await.expect("release");
    gone(&jobs, "grandchild").await;
    gone(&jobs, "child").await;
    gone(&jobs, "owner").await;
    server.stop().await;
}
