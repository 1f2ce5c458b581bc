//! Managed fields over kube-rs and raw HTTP: the `Update` entries writes
//! record (per manager, per subresource), what clients may do to them,
//! server-side apply on `/status` and on built-in kinds, the request
//! checks apply makes, and `dryRun` on every write verb.

mod common;

use berth_api::Job;
use common::{Server, api_error};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_record_update_managers_and_clients_may_clear_them() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let pp = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    let created = jobs.create(&pp, &common::job("hello", "1Mi")).await.expect("create");
    let entry = &created.metadata.managed_fields.clone().unwrap_or_default()[0];
    assert_eq!((entry.manager.as_deref(), entry.operation.as_deref()), (Some("creator"), Some("Update")));
    assert_eq!(entry.api_version.as_deref(), Some("berth.dev/v1alpha1"));
    let fields = serde_json::to_value(&entry.fields_v1).expect("json");
    assert!(fields.pointer("/f:spec/f:taskGroups").is_some(), "{fields}");

    let status = Patch::Merge(json!({"status": {"phase": "Running"}}));
    let pp = PatchParams { field_manager: Some("berth-controller".into()), ..Default::default() };
    let patched = jobs.patch_status("hello", &pp, &status).await.expect("status");
    let entries = patched.metadata.managed_fields.unwrap_or_default();
    let by_status = entries.iter().find(|e| e.manager.as_deref() == Some("berth-controller")).expect("status entry");
    assert_eq!(by_status.subresource.as_deref(), Some("status"));
    let fields = serde_json::to_value(&by_status.fields_v1).expect("json");
    assert!(fields.pointer("/f:status/f:phase").is_some() && fields.get("f:spec").is_none(), "{fields}");

    // `[]` keeps them (clients unaware of the field cannot drop it); `[{}]` clears them.
    let keep = Patch::Merge(json!({"metadata": {"managedFields": []}}));
    let kept = jobs.patch("hello", &PatchParams::default(), &keep).await.expect("keep");
    assert_eq!(kept.metadata.managed_fields.unwrap_or_default().len(), 2);
    let clear = Patch::Merge(json!({"metadata": {"managedFields": [{}]}}));
    let cleared = jobs.patch("hello", &PatchParams::default(), &clear).await.expect("clear");
    assert_eq!(cleared.metadata.managed_fields, None);
    let bogus = json!({"metadata": {"managedFields": [{"manager": "x", "operation": "Bogus", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]}});
    let err = api_error(jobs.patch("hello", &PatchParams::default(), &Patch::Merge(bogus)).await.expect_err("bogus"));
    assert_eq!(err.code, 422);
    assert!(err.message.contains("metadata.managedFields[0].operation"), "{}", err.message);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_needs_a_field_manager_and_a_matching_type() {
    let server = Server::start().await;
    let path = "/apis/berth.dev/v1alpha1/namespaces/default/jobs/hello";
    let ctype = [("Content-Type", "application/apply-patch+yaml")];
    let body = "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata: {name: hello}\nspec: {taskGroups: [{name: m, image: i}]}\n";
    let (code, _, text) = server.raw("PATCH", path, &ctype, body).await;
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains(
            "PatchOptions.meta.k8s.io \\\"\\\" is invalid: fieldManager: Required value: is required for apply patch"
        ),
        "{text}"
    );
    let wrong = body.replace("v1alpha1\n", "v9\n");
    let (code, _, text) = server.raw("PATCH", &format!("{path}?fieldManager=m"), &ctype, &wrong).await;
    assert_eq!(code, 400, "{text}");
    let managed = body.replace("{name: hello}", "{name: hello, managedFields: [{manager: x}]}");
    let (code, _, text) = server.raw("PATCH", &format!("{path}?fieldManager=m"), &ctype, &managed).await;
    assert!(code == 400 && text.contains("metadata.managedFields must be nil"), "{text}");
    let merge = [("Content-Type", "application/merge-patch+json")];
    let (code, _, text) = server.raw("PATCH", &format!("{path}?force=true"), &merge, "{}").await;
    assert!(code == 422 && text.contains("force: Forbidden"), "{text}");
    let (code, _, text) = server.raw("PATCH", &format!("{path}?fieldManager=m&dryRun=All"), &ctype, body).await;
    assert_eq!(code, 201, "{text}");
    let (code, _, _) = server.raw("GET", path, &[], "").await;
    assert_eq!(code, 404, "a dry-run apply creates nothing");
    let (code, _, text) = server.raw("PATCH", &format!("{path}?fieldManager=m"), &ctype, body).await;
    assert_eq!(code, 201, "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_field_manager_the_user_agent_names_the_manager() {
    let server = Server::start().await;
    let body = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": "hello"},
        "spec": {"taskGroups": [{"name": "m", "image": "i"}]}});
    let headers = [("Content-Type", "application/json"), ("User-Agent", "berth-ctl/0.1 (linux)")];
    let (code, _, text) =
        server.raw("POST", "/apis/berth.dev/v1alpha1/namespaces/default/jobs", &headers, &body.to_string()).await;
    assert_eq!(code, 201, "{text}");
    let obj: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(obj.pointer("/metadata/managedFields/0/manager"), Some(&json!("berth-ctl")), "{obj}");
    server.stop().await;
}

fn status_config(phase: &str) -> Value {
    json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": "hello"}, "status": {"phase": phase}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_applied_through_its_subresource_only() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.create(&PostParams::default(), &common::job("hello", "1Mi")).await.expect("create");
    let applied = jobs.patch_status("hello", &PatchParams::apply("ctl"), &Patch::Apply(status_config("Running"))).await;
    let applied = applied.expect("status apply");
    assert_eq!(applied.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    let entry =
        applied.metadata.managed_fields.unwrap_or_default().into_iter().find(|e| e.manager.as_deref() == Some("ctl"));
    let entry = entry.expect("ctl entry");
    assert_eq!((entry.operation.as_deref(), entry.subresource.as_deref()), (Some("Apply"), Some("status")));
    let fields = serde_json::to_value(&entry.fields_v1).expect("json");
    assert_eq!(fields, json!({"f:status": {"f:phase": {}}}));
    // Applying status on the main resource changes nothing there.
    let main = jobs.patch("hello", &PatchParams::apply("ctl"), &Patch::Apply(status_config("Failed"))).await;
    assert_eq!(main.expect("main apply").status.and_then(|s| s.phase).as_deref(), Some("Running"));
    // Another manager's status change conflicts with ctl's.
    let other =
        jobs.patch_status("hello", &PatchParams::apply("other"), &Patch::Apply(status_config("Complete"))).await;
    let status = api_error(other.expect_err("conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"ctl\" with subresource \"status\": .status.phase"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_kinds_are_applied_with_maps_merged_by_key() {
    let server = Server::start().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let secret = |data: Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reg"}, "data": data});
    let ssa = PatchParams::apply("ops");
    secrets.patch("reg", &ssa, &Patch::Apply(secret(json!({"a": "YQ==", "b": "Yg=="})))).await.expect("create");
    let merge = Patch::Merge(json!({"data": {"c": "Yw=="}}));
    secrets
        .patch("reg", &PatchParams { field_manager: Some("edit".into()), ..Default::default() }, &merge)
        .await
        .expect("edit");
    let after = secrets.patch("reg", &ssa, &Patch::Apply(secret(json!({"a": "YQ=="})))).await.expect("drop b");
    let mut keys: Vec<String> = after.data.unwrap_or_default().into_keys().collect();
    keys.sort();
    assert_eq!(keys, ["a", "c"], "b is gone, c belongs to someone else");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_on_any_verb() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let dry = PostParams { dry_run: true, ..Default::default() };
    jobs.create(&dry, &common::job("ghost", "1Mi")).await.expect("dry create");
    assert!(jobs.get_opt("ghost").await.expect("get").is_none(), "create");
    let created = jobs.create(&PostParams::default(), &common::job("hello", "1Mi")).await.expect("create");
    let rv = created.metadata.resource_version.clone();
    let mut changed = created.clone();
    changed.spec.priority = Some(9);
    let replaced = jobs.replace("hello", &dry, &changed).await.expect("dry replace");
    assert_eq!(replaced.spec.priority, Some(9));
    let dry_patch = PatchParams { dry_run: true, ..Default::default() };
    jobs.patch("hello", &dry_patch, &Patch::Merge(json!({"spec": {"priority": 8}}))).await.expect("dry merge");
    jobs.patch_status("hello", &dry_patch, &Patch::Merge(json!({"status": {"phase": "Running"}})))
        .await
        .expect("dry status");
    let dry_apply = PatchParams { dry_run: true, ..PatchParams::apply("m") };
    let config = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": "hello"}, "spec": {"priority": 7}});
    jobs.patch("hello", &dry_apply, &Patch::Apply(config)).await.expect("dry apply");
    let dry_delete = DeleteParams { dry_run: true, ..Default::default() };
    jobs.delete("hello", &dry_delete).await.expect("dry delete");
    jobs.delete_collection(&dry_delete, &ListParams::default()).await.expect("dry delete collection");
    let now = jobs.get("hello").await.expect("still there");
    assert_eq!(now.metadata.resource_version, rv, "nothing was written");
    assert_eq!(now.spec.priority, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crds_the_server_starts_with_are_owned_by_it() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let server = Server::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let crd = crds.get("jobs.berth.dev").await.expect("crd");
    let entries = crd.metadata.managed_fields.unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].manager.as_deref(), Some("berth-apiserver"));
    let fields = serde_json::to_value(&entries[0].fields_v1).expect("json");
    assert!(fields.pointer("/f:spec/f:versions").is_some() && fields.get("f:status").is_none(), "{fields}");
    // A restart puts the given CRDs back (a replace): the label goes, and with it ops' only field.
    let ssa = PatchParams::apply("ops").force();
    let label = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "jobs.berth.dev", "labels": {"team": "a"}}});
    let labelled = crds.patch("jobs.berth.dev", &ssa, &Patch::Apply(label)).await.expect("label");
    let ops =
        labelled.metadata.managed_fields.unwrap_or_default().into_iter().find(|e| e.manager.as_deref() == Some("ops"));
    assert!(ops.is_some(), "the applier owns the label");
    let dir = server.stop().await;
    let server = Server::start_in(dir, berth_apiserver::Options::default()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let crd = crds.get("jobs.berth.dev").await.expect("crd");
    let managers: Vec<_> =
        crd.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|e| e.manager).collect();
    assert_eq!(managers, ["berth-apiserver"]);
    assert_eq!(crd.metadata.labels, None);
    server.stop().await;
}
