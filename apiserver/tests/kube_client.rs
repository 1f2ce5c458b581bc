//! kube-rs against the in-process server: the calls Berth's controllers
//! and agent make, and the watcher they run on.

mod common;

use std::time::Duration;

use berth_api::{Condition, Job, JobStatus, Placement, PlacementSpec};
use berth_apiserver::Storage;
use common::{Server, api_error, job};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_through_create_get_list_patch_replace_and_delete() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created = jobs.create(&PostParams::default(), &job("hello", "32Mi")).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let again = jobs.create(&PostParams::default(), &job("hello", "32Mi")).await.expect_err("duplicate");
    assert_eq!(api_error(again).code, 409);

    let got = jobs.get("hello").await.expect("get");
    assert_eq!(got.spec, created.spec);
    let listed = jobs.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some_and(|rv| !rv.is_empty()));

    // Labels are metadata: no new generation.
    let labelled = jobs
        .patch("hello", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})))
        .await
        .expect("merge patch");
    assert_eq!(labelled.metadata.generation, Some(1));
    // The spec moves generation.
    let bigger = json!({"spec": {"taskGroups": [{"name": "main", "image": "img", "resources": {"memory": "64Mi"}}]}});
    let patched = jobs.patch("hello", &PatchParams::default(), &Patch::Merge(bigger)).await.expect("spec patch");
    assert_eq!(patched.metadata.generation, Some(2));

    // A replace with a stale resourceVersion conflicts.
    let mut stale = created.clone();
    stale.spec.priority = Some(5);
    let conflict = jobs.replace("hello", &PostParams::default(), &stale).await.expect_err("stale");
    let status = api_error(conflict);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let mut fresh = jobs.get("hello").await.expect("get");
    fresh.spec.priority = Some(5);
    let replaced = jobs.replace("hello", &PostParams::default(), &fresh).await.expect("replace");
    assert_eq!(replaced.metadata.generation, Some(3));
    assert_eq!(replaced.spec.priority, Some(5));

    // Status only through /status; spec unchanged there, generation too.
    let mut with_status = replaced.clone();
    with_status.status = Some(JobStatus { phase: Some("Running".into()), ..Default::default() });
    let ignored = jobs.replace("hello", &PostParams::default(), &with_status).await.expect("replace ignoring status");
    assert!(ignored.status.is_none(), "PUT on the main resource must not change status: {:?}", ignored.status);
    let mut with_status = ignored.clone();
    with_status.status = Some(JobStatus { phase: Some("Running".into()), ..Default::default() });
    with_status.spec.priority = Some(9);
    let status_written =
        jobs.replace_status("hello", &PostParams::default(), &with_status).await.expect("replace_status");
    assert_eq!(status_written.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
    assert_eq!(status_written.spec.priority, Some(5), "PUT on /status must not change the spec");
    assert_eq!(status_written.metadata.generation, Some(3));
    let complete = json!({"status": {"phase": "Complete", "conditions": [
        {"type": "Complete", "status": "True", "reason": "AllSucceeded", "message": "done"}]}});
    let patched =
        jobs.patch_status("hello", &PatchParams::default(), &Patch::Merge(complete)).await.expect("patch_status");
    let conds: Vec<Condition> = patched.status.map(|s| s.conditions).unwrap_or_default();
    assert_eq!(conds.first().map(|c| c.type_.as_str()), Some("Complete"));

    jobs.delete("hello", &DeleteParams::default()).await.expect("delete");
    let gone = jobs.get("hello").await.expect_err("deleted");
    assert_eq!(api_error(gone).code, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_get_422_naming_the_field_and_are_not_stored() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let err = jobs.create(&PostParams::default(), &job("bad", "12x")).await.expect_err("invalid");
    let status = api_error(err);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let causes = status.details.expect("details").causes;
    assert_eq!(causes[0].field, "spec.taskGroups[0].resources.memory");
    assert_eq!(causes[0].reason, "FieldValueInvalid");
    assert!(jobs.list(&ListParams::default()).await.expect("list").items.is_empty());

    let in_missing_ns: Api<Job> = Api::namespaced(server.client(), "nope");
    let mut j = job("x", "1Mi");
    j.metadata.namespace = Some("nope".into());
    let err = in_missing_ns.create(&PostParams::default(), &j).await.expect_err("missing namespace");
    let status = api_error(err);
    assert_eq!(status.code, 404);
    assert!(status.message.contains("namespaces \"nope\" not found"), "{}", status.message);

    let dry = PostParams { dry_run: true, ..Default::default() };
    jobs.create(&dry, &job("dry", "1Mi")).await.expect("dry run create");
    assert_eq!(api_error(jobs.get("dry").await.expect_err("not stored")).code, 404);
    server.stop().await;
}

fn placement(name: &str, agent: &str, job: &str) -> Placement {
    let mut p = Placement::new(
        name,
        PlacementSpec {
            agent: agent.into(),
            job: job.into(),
            task_group: "main".into(),
            container: berth_api::Container { image: "img".into(), ..Default::default() },
            ..Default::default()
        },
    );
    p.metadata.labels = Some([("berth.dev/job".to_string(), job.to_string())].into());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placements_are_selected_by_agent_and_labels_and_paged() {
    let server = Server::start().await;
    let api: Api<Placement> = Api::namespaced(server.client(), "default");
    for (n, agent, job) in
        [("p1", "a1", "j1"), ("p2", "a2", "j1"), ("p3", "a1", "j2"), ("p4", "a1", "j2"), ("p5", "a3", "j3")]
    {
        api.create(&PostParams::default(), &placement(n, agent, job)).await.expect("create");
    }
    let names =
        |l: kube::core::ObjectList<Placement>| l.items.into_iter().filter_map(|p| p.metadata.name).collect::<Vec<_>>();
    let on_a1 = api.list(&ListParams::default().fields("spec.agent=a1")).await.expect("field selector");
    assert_eq!(names(on_a1), ["p1", "p3", "p4"]);
    let j2_on_a1 =
        api.list(&ListParams::default().fields("spec.agent=a1").labels("berth.dev/job=j2")).await.expect("both");
    assert_eq!(names(j2_on_a1), ["p3", "p4"]);
    let not_j1 = api.list(&ListParams::default().labels("berth.dev/job notin (j1)")).await.expect("notin");
    assert_eq!(names(not_j1), ["p3", "p4", "p5"]);
    let bad = api.list(&ListParams::default().fields("spec.image=img")).await.expect_err("unselectable field");
    assert_eq!(api_error(bad).code, 400);

    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = api.list(&lp).await.expect("page");
        let token = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        seen.extend(names(page));
        match token {
            Some(t) => lp = lp.continue_token(&t),
            None => break,
        }
    }
    assert_eq!(seen, ["p1", "p2", "p3", "p4", "p5"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_sees_added_modified_and_deleted() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.create(&PostParams::default(), &job("before", "1Mi")).await.expect("create");
    let mut events = watcher(jobs.clone(), watcher::Config::default()).boxed();
    let mut log = Vec::new();
    let mut next = async || -> watcher::Event<Job> {
        let ev = tokio::time::timeout(LIMIT, events.try_next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("no watcher event within {LIMIT:?}; saw {log:?}"));
        let ev = ev.expect("watcher error").expect("watcher ended");
        log.push(format!("{ev:?}").chars().take(80).collect::<String>());
        ev
    };
    assert!(matches!(next().await, watcher::Event::Init));
    assert!(matches!(next().await, watcher::Event::InitApply(j) if j.metadata.name.as_deref() == Some("before")));
    assert!(matches!(next().await, watcher::Event::InitDone));
    jobs.create(&PostParams::default(), &job("during", "1Mi")).await.expect("create");
    assert!(matches!(next().await, watcher::Event::Apply(j) if j.metadata.name.as_deref() == Some("during")));
    jobs.patch("during", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await
        .expect("patch");
    assert!(matches!(next().await, watcher::Event::Apply(j) if j.metadata.labels.is_some()));
    jobs.delete("during", &DeleteParams::default()).await.expect("delete");
    assert!(matches!(next().await, watcher::Event::Delete(j) if j.metadata.name.as_deref() == Some("during")));
    drop(events);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_end_with_the_initial_events_bookmark() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.create(&PostParams::default(), &job("one", "1Mi")).await.expect("create");
    let mut events = watcher(jobs.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut kinds = Vec::new();
    while !kinds.contains(&"InitDone") {
        let ev = tokio::time::timeout(LIMIT, events.try_next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("stuck after {kinds:?}")).expect("watcher error").expect("ended");
        kinds.push(match ev {
            watcher::Event::Init => "Init",
            watcher::Event::InitApply(_) => "InitApply",
            watcher::Event::InitDone => "InitDone",
            watcher::Event::Apply(_) => "Apply",
            watcher::Event::Delete(_) => "Delete",
        });
    }
    assert_eq!(kinds, ["Init", "InitApply", "InitDone"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_revision_gets_410_and_the_watcher_relists() {
    // A watch cache window of 3 changes: the writes below push the watcher out of it.
    let server = Server::start_with(berth_apiserver::Options { watch_cache_events: 3, ..Default::default() }).await;
    let client = server.client();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let first = jobs.create(&PostParams::default(), &job("first", "1Mi")).await.expect("create");
    let old_rv = first.metadata.resource_version.clone().expect("rv");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");

    // A watcher whose watches end every second, so it resumes from its last revision.
    let mut events = watcher(jobs.clone(), watcher::Config::default().timeout(1)).boxed();
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(LIMIT, events.next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("no InitDone; saw {seen:?}")).expect("stream");
        let done = matches!(ev, Ok(watcher::Event::InitDone));
        seen.push(format!("{ev:?}").chars().take(60).collect::<String>());
        if done {
            break;
        }
    }

    // Writes elsewhere move the watch cache's window, and storage history is
    // compacted, past everything the watcher saw.
    for i in 0..5 {
        let lease =
            Lease { metadata: kube::api::ObjectMeta { name: Some(format!("l{i}")), ..Default::default() }, spec: None };
        leases.create(&PostParams::default(), &lease).await.expect("lease");
    }
    let now = server.store.current_revision().await.expect("rev");
    server.store.compact(now).await.expect("compact");

    // A raw watch from before the window: a 200 stream with one ERROR 410 event.
    let mut raw = jobs.watch(&WatchParams::default(), &old_rv).await.expect("watch starts").boxed();
    match tokio::time::timeout(LIMIT, raw.try_next()).await.expect("an event").expect("stream ok") {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected an ERROR 410 event, got {other:?}"),
    }

    // The watcher's next resume hits 410, it relists, and keeps delivering.
    let mut relisted = false;
    let mut log = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !relisted {
        let ev = tokio::time::timeout_at(deadline, events.next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("the watcher did not relist; saw {log:?}")).expect("stream");
        log.push(format!("{ev:?}").chars().take(100).collect::<String>());
        relisted = matches!(ev, Ok(watcher::Event::Init));
    }
    assert!(log.iter().any(|l| l.contains("410")), "the watcher saw the 410 first: {log:?}");
    jobs.create(&PostParams::default(), &job("after", "1Mi")).await.expect("create");
    loop {
        let ev = tokio::time::timeout_at(deadline + LIMIT, events.next()).await;
        let ev = ev.unwrap_or_else(|_| panic!("`after` never arrived; saw {log:?}")).expect("stream");
        log.push(format!("{ev:?}").chars().take(100).collect::<String>());
        if let Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j)) = &ev
            && j.metadata.name.as_deref() == Some("after")
        {
            break;
        }
    }
    drop(events);
    drop(raw);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_kinds_and_crds_created_later_are_served() {
    let server = Server::start().await;
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<_> = namespaces
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()) && names.contains(&"kube-system".to_string()), "{names:?}");
    let ns = Namespace {
        metadata: kube::api::ObjectMeta { name: Some("team-a".into()), ..Default::default() },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await.expect("create namespace");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "team-a");
    let lease =
        Lease { metadata: kube::api::ObjectMeta { name: Some("leader".into()), ..Default::default() }, spec: None };
    leases.create(&PostParams::default(), &lease).await.expect("create lease");
    assert!(leases.get("leader").await.is_ok());

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let widget: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]}
    }))
    .expect("crd");
    crds.create(&PostParams::default(), &widget).await.expect("create crd");
    let established = crds.get("widgets.example.com").await.expect("get crd");
    let conds = established.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(conds.iter().any(|c| c.type_ == "Established" && c.status == "True"), "{conds:?}");

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk));
    let mut w = DynamicObject::new("w1", &ApiResource::from_gvk(&gvk));
    w.data = json!({"spec": {"size": 3}});
    widgets.create(&PostParams::default(), &w).await.expect("create widget");
    w.metadata.name = Some("w0".into());
    w.data = json!({"spec": {"size": 0}});
    let err = widgets.create(&PostParams::default(), &w).await.expect_err("size 0 is invalid");
    assert_eq!(api_error(err).code, 422);
    crds.delete("widgets.example.com", &DeleteParams::default()).await.expect("delete crd");
    let gone = widgets.get("w1").await.expect_err("the kind is no longer served");
    assert_eq!(api_error(gone).code, 404);
    server.stop().await;
}
