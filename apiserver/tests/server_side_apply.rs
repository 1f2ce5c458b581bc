//! Server-side apply and managed fields, through the real `kubectl` (1.32)
//! and kube-rs: creating and updating by apply, conflicts between managers
//! and forcing them, removing fields a manager stops applying, moving from
//! client-side apply, `kubectl diff`, and `--show-managed-fields`.

mod common;

use berth_api::Job;
use common::kubectl::Kubectl;
use common::{Server, api_error};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const JOB: &str = "apiVersion: berth.dev/v1alpha1
kind: Job
metadata: {name: hello, namespace: default}
spec:
  priority: 5
  taskGroups:
  - name: main
    image: localhost:5000/berth/demo:latest
    command: [\"/bin/sh\", \"-c\", \"echo hello\"]
    resources: {cpu: 100m, memory: 32Mi}
";

const GET: [&str; 3] = ["get", "jobs.berth.dev", "hello"];

async fn field(k: &Kubectl, path: &str) -> String {
    k.ok(&[&GET[..], &["-o", &format!("jsonpath={{{path}}}")]].concat()).await
}

/// The live object's managedFields entries as (manager, operation, fieldsV1).
async fn managers(k: &Kubectl) -> Vec<(String, String, Value)> {
    let out = k.ok(&[&GET[..], &["-o", "json", "--show-managed-fields"]].concat()).await;
    let obj: Value = serde_json::from_str(&out).expect("json");
    let entries = obj.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    entries.iter().map(|e| (s(e, "manager"), s(e, "operation"), e["fieldsV1"].clone())).collect()
}

fn owner<'a>(ms: &'a [(String, String, Value)], manager: &str) -> Option<&'a Value> {
    ms.iter().find(|(m, _, _)| m == manager).map(|(_, _, f)| f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_then_updates_a_job_and_shows_its_managers() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let out = k.ok(&["apply", "--server-side", "-f", &k.file("job.yaml", JOB)]).await;
    assert!(out.contains("job.berth.dev/hello serverside-applied"), "{out}");
    let changed = k.file("job2.yaml", &JOB.replace("memory: 32Mi", "memory: 64Mi"));
    assert!(k.ok(&["apply", "--server-side", "-f", &changed]).await.contains("serverside-applied"));
    assert_eq!(field(&k, ".spec.taskGroups[0].resources.memory").await, "64Mi");
    assert_eq!(field(&k, ".metadata.generation").await, "2");

    let yaml = k.ok(&[&GET[..], &["-o", "yaml", "--show-managed-fields"]].concat()).await;
    for line in ["manager: kubectl", "operation: Apply", "fieldsType: FieldsV1", "f:taskGroups: {}", "f:priority: {}"] {
        assert!(yaml.contains(line), "{line:?} missing from\n{yaml}");
    }
    assert!(yaml.contains("apiVersion: berth.dev/v1alpha1") && yaml.contains("time: \""), "{yaml}");
    let plain = k.ok(&[&GET[..], &["-o", "yaml"]].concat()).await;
    assert!(!plain.contains("managedFields"), "kubectl hides managed fields unless asked: {plain}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_manager_conflicts_on_an_owned_field_until_it_forces() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", &k.file("job.yaml", JOB)]).await;
    let rv = field(&k, ".metadata.resourceVersion").await;
    let other = k.file("job7.yaml", &JOB.replace("priority: 5", "priority: 7"));
    let out = k.run(&["apply", "--server-side", "--field-manager=ci", "-f", &other]).await;
    assert!(!out.ok, "{out:?}");
    let expected = "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using berth.dev/v1alpha1: .spec.priority";
    assert!(out.stderr.contains(expected), "{out:?}");
    assert!(out.stderr.contains("--force-conflicts"), "kubectl explains the way out: {out:?}");
    assert_eq!(field(&k, ".spec.priority").await, "5", "nothing is written on a conflict");
    assert_eq!(field(&k, ".metadata.resourceVersion").await, rv);

    k.ok(&["apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-f", &other]).await;
    assert_eq!(field(&k, ".spec.priority").await, "7");
    let ms = managers(&k).await;
    assert_eq!(owner(&ms, "ci").and_then(|f| f.pointer("/f:spec/f:priority")), Some(&json!({})), "{ms:?}");
    // (kubectl 1.32 also hands the client-side apply fields over to its manager.)
    let csa = owner(&ms, "kubectl-client-side-apply").and_then(|f| f.pointer("/f:spec/f:priority"));
    assert!(csa.is_none(), "the old manager lost the field: {ms:?}");

    // Between two appliers the message names the manager without a version.
    let third = k.file("job9.yaml", &JOB.replace("priority: 5", "priority: 9"));
    let out = k.run(&["apply", "--server-side", "--field-manager=cd", "-f", &third]).await;
    assert!(out.stderr.contains("Apply failed with 1 conflict: conflict with \"ci\": .spec.priority"), "{out:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_dropped_from_the_applied_file_is_removed() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "--server-side", "-f", &k.file("job.yaml", JOB)]).await;
    assert_eq!(field(&k, ".spec.priority").await, "5");
    let without = k.file("job-np.yaml", &JOB.replace("  priority: 5\n", ""));
    k.ok(&["apply", "--server-side", "-f", &without]).await;
    assert_eq!(field(&k, ".spec.priority").await, "", "nobody else owns it, so it goes");
    assert_eq!(field(&k, ".spec.taskGroups[0].name").await, "main");

    // A field another manager also set stays when one applier lets go.
    k.ok(&["apply", "--server-side", "--field-manager=ci", "-f", &k.file("ci.yaml", JOB)]).await;
    k.ok(&["apply", "--server-side", "-f", &k.file("again.yaml", JOB)]).await;
    k.ok(&["apply", "--server-side", "-f", &without]).await;
    assert_eq!(field(&k, ".spec.priority").await, "5", "ci still applies it");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_then_server_side_apply_migrates_without_conflicts() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", &k.file("job.yaml", JOB)]).await;
    assert!(owner(&managers(&k).await, "kubectl-client-side-apply").is_some());
    let changed = JOB.replace("memory: 32Mi", "memory: 64Mi").replace("priority: 5", "priority: 6");
    let out = k.ok(&["apply", "--server-side", "-f", &k.file("job2.yaml", &changed)]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(field(&k, ".spec.priority").await, "6");
    let ms = managers(&k).await;
    let ssa = owner(&ms, "kubectl").expect("kubectl applies now");
    assert!(ssa.pointer("/f:spec/f:priority").is_some() && ssa.pointer("/f:spec/f:taskGroups").is_some(), "{ms:?}");
    let csa_spec = owner(&ms, "kubectl-client-side-apply").and_then(|f| f.pointer("/f:spec"));
    assert!(csa_spec.is_none_or(|s| s.get("f:priority").is_none()), "{ms:?}");

    // Back to client-side apply: the annotation followed, so a removal is seen.
    let last = field(&k, ".metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration").await;
    assert!(last.contains("64Mi"), "{last}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_diff_shows_a_change_exits_1_and_writes_nothing() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "--server-side", "-f", &k.file("job.yaml", JOB)]).await;
    let rv = field(&k, ".metadata.resourceVersion").await;
    let changed = k.file("job2.yaml", &JOB.replace("memory: 32Mi", "memory: 64Mi"));
    for extra in [&[][..], &["--server-side"][..]] {
        let out = k.run(&[&["diff", "-f", &changed][..], extra].concat()).await;
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.contains("-      memory: 32Mi") && out.stdout.contains("+      memory: 64Mi"), "{out:?}");
        assert!(!out.stdout.contains("managedFields"), "{out:?}");
    }
    let same = k.run(&["diff", "--server-side", "-f", &k.file("same.yaml", JOB)]).await;
    assert_eq!((same.code, same.stdout.as_str()), (Some(0), ""), "{same:?}");
    assert_eq!(field(&k, ".metadata.resourceVersion").await, rv, "a dry run writes nothing");
    assert_eq!(field(&k, ".spec.taskGroups[0].resources.memory").await, "32Mi");
    let new = k.run(&["diff", "-f", &k.file("new.yaml", &JOB.replace("name: hello", "name: fresh"))]).await;
    assert_eq!(new.code, Some(1), "{new:?}");
    assert!(k.run(&["get", "jobs.berth.dev", "fresh"]).await.stderr.contains("NotFound"));
    server.stop().await;
}

fn job_config(priority: i32, image: &str) -> Value {
    json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": "hello"},
        "spec": {"priority": priority, "taskGroups": [{"name": "main", "image": image, "resources": {"memory": "8Mi"}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_applies_with_a_field_manager_and_sees_conflicts() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let created =
        jobs.patch("hello", &PatchParams::apply("mgr"), &Patch::Apply(job_config(1, "demo:1"))).await.expect("create");
    assert_eq!(created.spec.priority, Some(1));
    let entries = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].manager.as_deref(), entries[0].operation.as_deref()), (Some("mgr"), Some("Apply")));
    let again =
        jobs.patch("hello", &PatchParams::apply("mgr"), &Patch::Apply(job_config(1, "demo:1"))).await.expect("noop");
    assert_eq!(again.metadata.resource_version, created.metadata.resource_version, "reapplying changes nothing");

    let err = jobs.patch("hello", &PatchParams::apply("other"), &Patch::Apply(job_config(2, "demo:2"))).await;
    let status = api_error(err.expect_err("conflict"));
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"mgr\":\n- .spec.priority\n- .spec.taskGroups"
    );
    let causes = status.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes.len(), 2);
    assert_eq!((causes[0].reason.as_str(), causes[0].field.as_str()), ("FieldManagerConflict", ".spec.priority"));
    assert_eq!(causes[0].message, "conflict with \"mgr\"");

    let dry = PatchParams { dry_run: true, ..PatchParams::apply("other").force() };
    let preview = jobs.patch("hello", &dry, &Patch::Apply(job_config(2, "demo:2"))).await.expect("dry run");
    assert_eq!(preview.spec.priority, Some(2));
    assert_eq!(jobs.get("hello").await.expect("get").spec.priority, Some(1), "a dry run writes nothing");
    let forced =
        jobs.patch("hello", &PatchParams::apply("other").force(), &Patch::Apply(job_config(2, "demo:2"))).await;
    let forced = forced.expect("forced");
    assert_eq!(forced.spec.priority, Some(2));
    let managers: Vec<_> =
        forced.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|e| e.manager).collect();
    assert_eq!(managers, ["other"], "mgr lost every field it owned");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_commands_record_their_own_managers() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["create", "-f", &k.file("job.yaml", JOB)]).await;
    k.ok(&["label", "jobs.berth.dev", "hello", "team=a"]).await;
    k.ok(&["patch", "jobs.berth.dev", "hello", "--type=merge", "-p", "{\"spec\": {\"priority\": 6}}"]).await;
    let edit = k.command(&["edit", "jobs.berth.dev", "hello"]).env("KUBE_EDITOR", "sed -i s/32Mi/48Mi/").output().await;
    let edit = edit.expect("kubectl edit runs");
    assert!(edit.status.success(), "{edit:?}");
    let ms = managers(&k).await;
    let owns = |m: &str, path: &str| owner(&ms, m).and_then(|f| f.pointer(path)).is_some();
    assert!(owns("kubectl-create", "/f:spec"), "the creator keeps what nobody changed: {ms:?}");
    assert!(owns("kubectl-label", "/f:metadata/f:labels/f:team"), "{ms:?}");
    assert!(owns("kubectl-patch", "/f:spec/f:priority"), "{ms:?}");
    assert!(owns("kubectl-edit", "/f:spec/f:taskGroups"), "{ms:?}");
    assert!(!owns("kubectl-create", "/f:spec/f:taskGroups"), "edit took the list over: {ms:?}");
    assert!(!owns("kubectl-create", "/f:spec/f:priority"), "patch took priority over: {ms:?}");
    assert!(ms.iter().all(|(_, op, _)| op == "Update"), "{ms:?}");
    server.stop().await;
}
