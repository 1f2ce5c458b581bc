//! Finer API semantics, over kube-rs and raw HTTP: bookmarks, JSON patch,
//! delete preconditions and finalizers, tables, YAML bodies, field
//! validation warnings, and durability across a restart.

mod common;

use std::time::Duration;

use berth_api::Job;
use berth_apiserver::Options;
use common::{Server, api_error, job};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent, WatchParams};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(10);
const JOBS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/jobs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_that_allow_bookmarks_get_them() {
    let opts = Options { bookmark_interval: Duration::from_millis(100), ..Options::default() };
    let server = Server::start_with(opts).await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created = jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("create");
    let rv = created.metadata.resource_version.expect("rv");
    let mut stream =
        jobs.watch(&WatchParams { bookmarks: true, ..Default::default() }, &rv).await.expect("watch").boxed();
    let ev = tokio::time::timeout(LIMIT, stream.try_next()).await.expect("an event in time").expect("ok");
    match ev {
        Some(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_works_and_an_apply_patch_must_name_its_type() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("create");
    let ops = json!([
        {"op": "replace", "path": "/spec/taskGroups/0/image", "value": "other:1"},
        {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
    ]);
    let ctype = [("Content-Type", "application/json-patch+json")];
    let (code, _, body) = server.raw("PATCH", &format!("{JOBS}/a"), &ctype, &ops.to_string()).await;
    assert_eq!(code, 200, "{body}");
    let patched: Job = serde_json::from_str(&body).expect("job");
    assert_eq!(patched.spec.task_groups[0].container.image, "other:1");
    assert_eq!(patched.metadata.generation, Some(2));
    let bad = json!([{"op": "replace", "path": "/spec/taskGroups/0/image", "value": ""}]);
    let (code, _, body) = server.raw("PATCH", &format!("{JOBS}/a"), &ctype, &bad.to_string()).await;
    assert_eq!(code, 422, "an empty image is invalid: {body}");
    let missing = json!([{"op": "test", "path": "/spec/priority", "value": 3}]);
    let (code, _, _) = server.raw("PATCH", &format!("{JOBS}/a"), &ctype, &missing.to_string()).await;
    assert!(code >= 400, "a failing test op is refused");
    let apply = jobs.patch("a", &PatchParams::apply("test"), &Patch::Apply(json!({"spec": {}}))).await;
    let refused = api_error(apply.expect_err("apply without apiVersion and kind"));
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (400, "the applied configuration must set apiVersion and kind")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_honour_preconditions_and_finalizers() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created = jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("create");
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions { uid: Some("nope".into()), resource_version: None }),
        ..Default::default()
    };
    assert_eq!(api_error(jobs.delete("a", &wrong_uid).await.expect_err("uid")).code, 409);
    let stale = DeleteParams {
        preconditions: Some(Preconditions { uid: None, resource_version: Some("1".into()) }),
        ..Default::default()
    };
    assert_eq!(api_error(jobs.delete("a", &stale).await.expect_err("rv")).code, 409);
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    jobs.delete("a", &right).await.expect("delete with preconditions");

    let mut held = job("held", "1Mi");
    held.metadata.finalizers = Some(vec!["berth.dev/cleanup".into()]);
    jobs.create(&PostParams::default(), &held).await.expect("create");
    jobs.delete("held", &DeleteParams::background()).await.expect("delete marks");
    let marked = jobs.get("held").await.expect("still there while finalized");
    assert!(marked.metadata.deletion_timestamp.is_some());
    jobs.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .expect("remove finalizer");
    assert_eq!(api_error(jobs.get("held").await.expect_err("gone")).code, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_tables_yaml_warnings_and_errors() {
    let server = Server::start().await;
    let yaml = "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata: {name: yjob}\nspec:\n  taskGroups:\n  - {name: main, image: img, colour: blue}\n";
    let (code, head, body) = server.raw("POST", JOBS, &[("Content-Type", "application/yaml")], yaml).await;
    assert_eq!(code, 201, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("warning: 299 - \"unknown field \\\"spec.taskgroups[0].colour\\\"\""),
        "{head}"
    );

    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code, _, body) = server.raw("GET", JOBS, &[("Accept", table_accept)], "").await;
    assert_eq!(code, 200);
    let t: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["rows"][0]["cells"][0], "yjob");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let (code, _, body) = server.raw("POST", JOBS, &[("Content-Type", "application/json")], "{\"kind\": ").await;
    assert_eq!(code, 400, "{body}");
    let st: Value = serde_json::from_str(&body).expect("status");
    assert_eq!((st["kind"].as_str(), st["reason"].as_str()), (Some("Status"), Some("BadRequest")));
    let (code, _, _) = server.raw("GET", &format!("{JOBS}?watch=true&sendInitialEvents=true"), &[], "").await;
    assert_eq!(code, 400, "sendInitialEvents without its companions is refused");
    let (code, _, _) = server.raw("GET", "/apis/berth.dev/v1alpha1/nothings", &[], "").await;
    assert_eq!(code, 404);
    let (code, _, body) = server.raw("GET", "/openapi/v2", &[], "").await;
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = server.raw("GET", "/openapi/v3", &[], "").await;
    assert_eq!(code, 200);
    assert!(body.contains("apis/berth.dev/v1alpha1"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_revisions_survive_a_restart() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created = jobs.create(&PostParams::default(), &job("durable", "1Mi")).await.expect("create");
    let dir = server.stop().await;
    // The old server's last tasks may hold the file for a moment after it stops.
    common::eventually("the store to reopen", LIMIT, || async {
        match berth_apiserver::Embedded::open(&dir.path().join("store.redb")) {
            Ok(s) => {
                drop(s);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let server = Server::start_in(dir, Options::default()).await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let got = jobs.get("durable").await.expect("survived");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert_eq!(got.metadata.resource_version, created.metadata.resource_version);
    let next = jobs.create(&PostParams::default(), &job("next", "1Mi")).await.expect("create");
    let rv = |j: &Job| j.metadata.resource_version.as_deref().and_then(|r| r.parse::<u64>().ok()).unwrap_or(0);
    assert!(rv(&next) > rv(&got), "revisions continue after a restart");
    server.stop().await;
}
