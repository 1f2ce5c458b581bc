//! The API server on etcd (`berth apiserver --store etcd://…`): the real
//! binary against Debian's etcd, driven by real kubectl and raw HTTP.
//! Each test starts its own etcd on free loopback ports.

use std::time::Duration;

use berth_e2e::apiserver::Apiserver;
use berth_e2e::http::{Watch, request};
use berth_e2e::{Etcd, output_text};
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

fn lease(name: &str, holder: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "default"}, "spec": {"holderIdentity": holder}})
}

fn rv(obj: &Value) -> String {
    obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default().to_string()
}

#[test]
fn kubectl_works_against_an_apiserver_on_etcd_and_data_lives_in_etcd() {
    let etcd = Etcd::start();
    let store = format!("etcd://{}/berth", etcd.endpoint());
    let dir = tempfile::Builder::new().prefix("berth-etcd-api-").tempdir().expect("tempdir");
    let server = Apiserver::start(&dir.path().join("one"), &["--store", &store]);
    let manifest =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: default\ndata:\n  token: czNjcmV0\n";
    let out = berth_e2e::run_with_stdin(
        std::process::Command::new("kubectl").arg("--kubeconfig").arg(&server.kubeconfig).args(["apply", "-f", "-"]),
        manifest,
    );
    assert!(out.status.success(), "kubectl apply: {}\n{}", output_text(&out), server.log_text());
    let out = server.kubectl(&["get", "secret", "creds", "-o", "jsonpath={.data.token}"]);
    assert!(out.status.success(), "kubectl get: {}", output_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "czNjcmV0", "base64 of s3cret");
    let out = server.kubectl(&["get", "crd", "-o", "name"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("jobs.berth.dev"), "CRDs are served: {}", output_text(&out));
    drop(server);

    // Another server with another data directory on the same etcd sees the same objects.
    let server = Apiserver::start(&dir.path().join("two"), &["--store", &store]);
    let out = server.kubectl(&["get", "secret", "creds", "-o", "jsonpath={.data.token}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "czNjcmV0", "{}", output_text(&out));
    let out = server.kubectl(&["delete", "secret", "creds"]);
    assert!(out.status.success(), "kubectl delete: {}", output_text(&out));
    let out = server.kubectl(&["get", "secret", "creds"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn a_watch_on_one_apiserver_sees_writes_made_through_another() {
    let etcd = Etcd::start();
    let store = format!("etcd://{}", etcd.endpoint());
    let dir = tempfile::Builder::new().prefix("berth-etcd-pair-").tempdir().expect("tempdir");
    let a = Apiserver::start(&dir.path().join("a"), &["--store", &store]);
    let b = Apiserver::start(&dir.path().join("b"), &["--store", &store]);

    let list = request(&b.addr, "GET", LEASES, None).expect("list on b");
    assert_eq!(list.status, 200, "{}", list.body);
    let from = rv(&list.json());
    let mut watch = Watch::start(&b.addr, &format!("{LEASES}?watch=true&resourceVersion={from}")).expect("watch on b");

    let created = request(&a.addr, "POST", LEASES, Some(&lease("shared", "a"))).expect("create on a");
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let is = |ty: &'static str| {
        move |ev: &Value| ev["type"] == ty && ev.pointer("/object/metadata/name") == Some(&json!("shared"))
    };
    let added = watch.until(Duration::from_secs(30), is("ADDED")).unwrap_or_else(|seen| {
        panic!("b's watch did not see the create made through a; saw {seen:#?}\n{}\n{}", a.log_text(), b.log_text())
    });
    assert_eq!(rv(&added["object"]), rv(&created), "one resourceVersion (etcd's revision) on both servers");

    let got = request(&b.addr, "GET", &format!("{LEASES}/shared"), None).expect("get on b");
    assert_eq!(got.status, 200, "{}", got.body);
    let mut obj = got.json();
    obj["spec"]["holderIdentity"] = json!("b");
    let updated = request(&b.addr, "PUT", &format!("{LEASES}/shared"), Some(&obj)).expect("update on b");
    assert_eq!(updated.status, 200, "{}", updated.body);
    // a's copy is stale now: compare-and-swap on etcd refuses it.
    let mut stale = created.clone();
    stale["spec"]["holderIdentity"] = json!("a-again");
    let refused = request(&a.addr, "PUT", &format!("{LEASES}/shared"), Some(&stale)).expect("stale update on a");
    assert_eq!(refused.status, 409, "{}", refused.body);

    let modified = watch
        .until(Duration::from_secs(30), is("MODIFIED"))
        .unwrap_or_else(|seen| panic!("no MODIFIED; saw {seen:#?}"));
    assert_eq!(modified.pointer("/object/spec/holderIdentity"), Some(&json!("b")));
    let deleted = request(&a.addr, "DELETE", &format!("{LEASES}/shared"), None).expect("delete on a");
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    watch.until(Duration::from_secs(30), is("DELETED")).unwrap_or_else(|seen| panic!("no DELETED; saw {seen:#?}"));
}

#[test]
fn a_crd_created_through_one_apiserver_is_served_by_another() {
    let etcd = Etcd::start();
    let store = format!("etcd://{}/crds", etcd.endpoint());
    let dir = tempfile::Builder::new().prefix("berth-etcd-crd-").tempdir().expect("tempdir");
    let a = Apiserver::start(&dir.path().join("a"), &["--store", &store]);
    let b = Apiserver::start(&dir.path().join("b"), &["--store", &store]);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    let created = request(&a.addr, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Some(&crd))
        .expect("create the CRD on a");
    assert_eq!(created.status, 201, "{}", created.body);
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let served = berth_e2e::poll::poll(Duration::from_secs(30), || match request(&b.addr, "GET", widgets, None) {
        Ok(a) if a.status == 200 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    served.unwrap_or_else(|last| panic!("b does not serve the CRD created through a: {last}\n{}", b.log_text()));
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}});
    let made = request(&b.addr, "POST", widgets, Some(&widget)).expect("create a widget on b");
    assert_eq!(made.status, 201, "{}", made.body);

    let gone =
        request(&a.addr, "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", None)
            .expect("delete the CRD on a");
    assert!(gone.status == 200 || gone.status == 202, "{}", gone.body);
    let dropped = berth_e2e::poll::poll(Duration::from_secs(30), || match request(&b.addr, "GET", widgets, None) {
        Ok(a) if a.status == 404 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    dropped.unwrap_or_else(|last| panic!("b still serves the CRD deleted through a: {last}\n{}", b.log_text()));
}

#[test]
fn a_watch_from_a_revision_etcd_compacted_ends_with_410_gone() {
    let etcd = Etcd::start();
    let dir = tempfile::Builder::new().prefix("berth-etcd-gone-").tempdir().expect("tempdir");
    let server = Apiserver::start(dir.path(), &["--store", &format!("etcd://{}", etcd.endpoint())]);
    let first = request(&server.addr, "POST", LEASES, Some(&lease("old", "x"))).expect("create");
    assert_eq!(first.status, 201, "{}", first.body);
    let old = rv(&first.json());
    let mut obj = first.json();
    for holder in ["y", "z"] {
        obj["spec"]["holderIdentity"] = json!(holder);
        let a = request(&server.addr, "PUT", &format!("{LEASES}/old"), Some(&obj)).expect("update");
        assert_eq!(a.status, 200, "{}", a.body);
        obj = a.json();
    }
    // Compact etcd itself (its JSON gateway), as another replica's compactor would.
    let compact = request(etcd.endpoint(), "POST", "/v3/kv/compaction", Some(&json!({"revision": rv(&obj)})))
        .expect("compact etcd");
    assert_eq!(compact.status, 200, "{}", compact.body);
    // A server that was running keeps those changes in its watch cache and
    // serves them, as Kubernetes does; a replica started after the
    // compaction has only etcd to ask, and etcd no longer has them.
    let dir2 = tempfile::Builder::new().prefix("berth-etcd-gone-").tempdir().expect("tempdir");
    let late = Apiserver::start(dir2.path(), &["--store", &format!("etcd://{}", etcd.endpoint())]);
    let mut watch = Watch::start(&late.addr, &format!("{LEASES}?watch=true&resourceVersion={old}")).expect("watch");
    let gone = watch.until(Duration::from_secs(30), |ev| ev["type"] == "ERROR");
    let gone = gone.unwrap_or_else(|seen| panic!("no ERROR event for a compacted resourceVersion; saw {seen:#?}"));
    assert_eq!(gone.pointer("/object/code"), Some(&json!(410)), "{gone}");
}
