//! resourceVersion semantics of reads and writes: which state get, list and
//! watch serve for each `resourceVersion`/`resourceVersionMatch`, paged
//! lists as one snapshot, 410 past compaction, 504 for the future,
//! `generation`, and deletion with finalizers.

mod common;

use std::time::Duration;

use berth_api::Job;
use berth_apiserver::Storage;
use common::{Server, api_error, job};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent, WatchParams};
use serde_json::{Value, json};

const JOBS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/jobs";
const LIMIT: Duration = Duration::from_secs(10);

fn rv_of(j: &Job) -> u64 {
    j.metadata.resource_version.as_deref().and_then(|r| r.parse().ok()).expect("resourceVersion")
}

fn names(list: &kube::core::ObjectList<Job>) -> Vec<String> {
    list.items.iter().map(|j| j.metadata.name.clone().unwrap_or_default()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_serve_the_state_each_resource_version_asks_for() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let a = jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("a");
    jobs.create(&PostParams::default(), &job("b", "1Mi")).await.expect("b");
    let rv = rv_of(&a).to_string();

    let latest = jobs.list(&ListParams::default()).await.expect("latest");
    assert_eq!(names(&latest), ["a", "b"]);
    let any = jobs.list(&ListParams::default().match_any()).await.expect("any");
    assert_eq!(names(&any), ["a", "b"]);
    let newer = jobs.list(&ListParams::default().at(&rv).matching(VersionMatch::NotOlderThan)).await.expect("nto");
    assert_eq!(names(&newer), ["a", "b"], "NotOlderThan serves the latest state");
    let exact = jobs.list(&ListParams::default().at(&rv).matching(VersionMatch::Exact)).await.expect("exact");
    assert_eq!(names(&exact), ["a"], "Exact serves the state at that revision");
    assert_eq!(exact.metadata.resource_version.as_deref(), Some(rv.as_str()));

    let future = (rv_of(&a) + 1000).to_string();
    for q in [format!("resourceVersion={future}"), format!("resourceVersion={future}&resourceVersionMatch=Exact")] {
        let (code, _, body) = server.raw("GET", &format!("{JOBS}?{q}"), &[], "").await;
        assert_eq!(code, 504, "{q}: {body}");
        let st: Value = serde_json::from_str(&body).expect("status");
        assert_eq!(st["reason"], "Timeout");
        assert_eq!(st["details"]["causes"][0]["reason"], "ResourceVersionTooLarge", "{body}");
        assert!(st["message"].as_str().unwrap_or("").starts_with("Too large resource version"), "{body}");
    }
    let (code, _, body) = server.raw("GET", &format!("{JOBS}/a?resourceVersion={future}"), &[], "").await;
    assert_eq!(code, 504, "get: {body}");
    let (code, _, body) = server.raw("GET", &format!("{JOBS}?watch=true&resourceVersion={future}"), &[], "").await;
    assert_eq!(code, 504, "watch: {body}");
    let got = jobs.get_with("a", &kube::api::GetParams::at(&rv)).await.expect("get not older than");
    assert_eq!(got.metadata.uid, a.metadata.uid);

    let current = server.store.current_revision().await.expect("revision");
    server.store.compact(current).await.expect("compact");
    let err = jobs.list(&ListParams::default().at(&rv).matching(VersionMatch::Exact)).await.expect_err("compacted");
    let st = api_error(err);
    assert_eq!((st.code, st.reason.as_str()), (410, "Expired"), "{st:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_lists_are_one_snapshot_and_expired_tokens_are_410() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    for n in ["a", "b", "c", "d", "e"] {
        jobs.create(&PostParams::default(), &job(n, "1Mi")).await.expect("create");
    }
    let first = jobs.list(&ListParams::default().limit(2)).await.expect("page 1");
    assert_eq!(names(&first), ["a", "b"]);
    let token = first.metadata.continue_.clone().expect("a continue token");
    // Writes between pages are not seen by the rest of the list.
    jobs.delete("c", &DeleteParams::default()).await.expect("delete c");
    jobs.create(&PostParams::default(), &job("cc", "1Mi")).await.expect("create cc");
    jobs.patch("d", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await
        .expect("label d");
    let second = jobs.list(&ListParams::default().limit(2).continue_token(&token)).await.expect("page 2");
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!(second.items[1].metadata.labels, None, "page 2 shows d as it was");
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let token2 = second.metadata.continue_.clone().expect("a second token");
    let third = jobs.list(&ListParams::default().limit(2).continue_token(&token2)).await.expect("page 3");
    assert_eq!(names(&third), ["e"]);
    assert_eq!(third.metadata.continue_.as_deref().unwrap_or(""), "");

    let current = server.store.current_revision().await.expect("revision");
    server.store.compact(current).await.expect("compact");
    let st = api_error(jobs.list(&ListParams::default().limit(2).continue_token(&token2)).await.expect_err("old"));
    assert_eq!((st.code, st.reason.as_str()), (410, "Expired"));
    assert!(st.message.starts_with("The provided continue parameter is too old"), "{st:?}");
    // The 410 carries a token that continues, inconsistently, at the latest revision.
    let url = format!("{JOBS}?limit=2&continue={token2}");
    let (code, _, body) = server.raw("GET", &url, &[], "").await;
    assert_eq!(code, 410, "{body}");
    let st: Value = serde_json::from_str(&body).expect("status");
    let latest = st["metadata"]["continue"].as_str().expect("a continue token in the Status").to_string();
    jobs.create(&PostParams::default(), &job("f", "1Mi")).await.expect("create f");
    let rest = jobs.list(&ListParams::default().limit(2).continue_token(&latest)).await.expect("continue at latest");
    assert_eq!(names(&rest), ["e", "f"], "the remainder, as it is now");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_replays_what_followed_in_order() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let a = jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("a");
    jobs.create(&PostParams::default(), &job("b", "1Mi")).await.expect("b");
    jobs.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"v": "2"}}})))
        .await
        .expect("label a");
    jobs.delete("b", &DeleteParams::default()).await.expect("delete b");
    let mut stream = jobs.watch(&WatchParams::default(), &rv_of(&a).to_string()).await.expect("watch").boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(LIMIT, stream.try_next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("no event in time; saw {seen:?}")).expect("ok").expect("open");
        seen.push(match ev {
            WatchEvent::Added(j) => format!("ADDED {}", j.metadata.name.unwrap_or_default()),
            WatchEvent::Modified(j) => format!("MODIFIED {}", j.metadata.name.unwrap_or_default()),
            WatchEvent::Deleted(j) => format!("DELETED {}", j.metadata.name.unwrap_or_default()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED b", "MODIFIED a", "DELETED b"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_moves_with_the_spec_only() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created = jobs.create(&PostParams::default(), &job("a", "1Mi")).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let labelled =
        jobs.patch("a", &pp, &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}))).await.expect("label");
    assert_eq!(labelled.metadata.generation, Some(1), "metadata changes keep the generation");
    let status = json!({"status": {"phase": "Running"}});
    let with_status = jobs.patch_status("a", &pp, &Patch::Merge(status)).await.expect("status");
    assert_eq!(with_status.metadata.generation, Some(1), "status changes keep the generation");
    let spec = json!({"spec": {"priority": 5}});
    let respecced = jobs.patch("a", &pp, &Patch::Merge(spec.clone())).await.expect("spec");
    assert_eq!(respecced.metadata.generation, Some(2), "a spec change moves it");
    let again = jobs.patch("a", &pp, &Patch::Merge(spec)).await.expect("same spec");
    assert_eq!(again.metadata.generation, Some(2), "a no-op keeps it");
    assert_eq!(again.metadata.resource_version, respecced.metadata.resource_version, "and writes nothing");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_being_deleted_only_lose_finalizers_and_go_with_the_last() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let mut held = job("held", "1Mi");
    held.metadata.finalizers = Some(vec!["a.test/one".into(), "a.test/two".into()]);
    jobs.create(&PostParams::default(), &held).await.expect("create");
    let (code, _, body) = server.raw("DELETE", &format!("{JOBS}/held"), &[], "").await;
    assert_eq!(code, 202, "{body}");
    let marked = jobs.get("held").await.expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));

    let pp = PatchParams::default();
    let add = json!({"metadata": {"finalizers": ["a.test/one", "a.test/two", "a.test/three"]}});
    let st = api_error(jobs.patch("held", &pp, &Patch::Merge(add)).await.expect_err("no new finalizers"));
    assert_eq!(st.code, 422, "{st:?}");
    assert!(st.message.contains("metadata.finalizers") && st.message.contains("a.test/three"), "{st:?}");
    let spec = json!({"spec": {"priority": 3}});
    let changed = jobs.patch("held", &pp, &Patch::Merge(spec)).await.expect("other changes are allowed");
    assert!(changed.metadata.deletion_timestamp.is_some());

    let one = json!({"metadata": {"finalizers": ["a.test/two"]}});
    jobs.patch("held", &pp, &Patch::Merge(one)).await.expect("drop one");
    jobs.get("held").await.expect("one finalizer still holds it");
    let none = json!({"metadata": {"finalizers": []}});
    jobs.patch("held", &pp, &Patch::Merge(none)).await.expect("drop the last");
    assert_eq!(api_error(jobs.get("held").await.expect_err("gone")).code, 404);
    server.stop().await;
}
