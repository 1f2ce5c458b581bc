//! The real `kubectl` (1.32) against the in-process server.

mod common;

use std::process::Stdio;

use berth_api::Job;
use common::Server;
use common::kubectl::{Kubectl, LIMIT};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const JOB: &str = "apiVersion: berth.dev/v1alpha1
kind: Job
metadata: {name: hello, namespace: default}
spec:
  taskGroups:
  - name: main
    image: localhost:5000/berth/demo:latest
    command: [\"/bin/sh\", \"-c\", \"echo hello\"]
    resources: {cpu: 100m, memory: 32Mi}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_describe_and_delete_a_job() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let job = k.file("job.yaml", JOB);
    assert!(k.ok(&["apply", "-f", &job]).await.contains("job.berth.dev/hello created"));
    assert!(k.ok(&["apply", "-f", &job]).await.contains("job.berth.dev/hello unchanged"));
    let changed = k.file("job2.yaml", &JOB.replace("memory: 32Mi", "memory: 64Mi"));
    assert!(k.ok(&["apply", "-f", &changed]).await.contains("job.berth.dev/hello configured"));
    let generation = k.ok(&["get", "jobs.berth.dev", "hello", "-o", "jsonpath={.metadata.generation}"]).await;
    assert_eq!(generation, "2");

    let table = k.ok(&["get", "jobs.berth.dev"]).await;
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "STATUS", "SUCCEEDED", "RUNNING", "FAILED", "AGE"] {
        assert!(header.contains(col), "missing column {col} in {table:?}");
    }
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("hello ")), "{table}");
    let wide_ns = k.ok(&["get", "bj", "-A"]).await;
    assert!(wide_ns.lines().next().is_some_and(|h| h.starts_with("NAMESPACE")), "{wide_ns}");

    let yaml = k.ok(&["get", "bj", "hello", "-o", "yaml"]).await;
    assert!(yaml.contains("memory: 64Mi") && yaml.contains("resourceVersion:"), "{yaml}");
    let described = k.ok(&["describe", "jobs.berth.dev", "hello"]).await;
    assert!(described.contains("Task Groups") && described.contains("localhost:5000/berth/demo:latest"), "{described}");
    let explained = k.ok(&["explain", "jobs.berth.dev.spec.taskGroups.resources"]).await;
    assert!(explained.contains("memory"), "{explained}");

    assert!(k.ok(&["delete", "-f", &job]).await.contains("job.berth.dev \"hello\" deleted"));
    let after = k.run(&["get", "bj"]).await;
    assert!(after.ok && after.stderr.contains("No resources found"), "{after:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_refused_naming_the_field_and_nothing_is_stored() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let bad_memory = k.file("bad1.yaml", &JOB.replace("memory: 32Mi", "memory: 12x"));
    let out = k.run(&["apply", "-f", &bad_memory]).await;
    assert!(!out.ok, "{out:?}");
    assert!(out.stderr.contains("spec.taskGroups[0].resources.memory: Invalid value: \"12x\""), "{out:?}");
    let no_image = k.file("bad2.yaml", &JOB.replace("    image: localhost:5000/berth/demo:latest\n", ""));
    let out = k.run(&["apply", "-f", &no_image]).await;
    assert!(!out.ok && out.stderr.contains("spec.taskGroups[0].image: Required value"), "{out:?}");
    let typo = k.file("bad3.yaml", &JOB.replace("    image:", "    imagee: x\n    image:"));
    let out = k.run(&["apply", "-f", &typo]).await;
    assert!(
        !out.ok && out.stderr.contains("spec.taskGroups[0].imagee"),
        "strict validation names the unknown field: {out:?}"
    );
    let broken = k.file(
        "bad4.yaml",
        "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata: {name: Bad_Name}\nspec: {taskGroups: []}\n",
    );
    let out = k.run(&["apply", "-f", &broken]).await;
    assert!(!out.ok && out.stderr.contains("metadata.name") && out.stderr.contains("spec.taskGroups"), "{out:?}");
    let after = k.run(&["get", "bj", "-A"]).await;
    assert!(after.ok && after.stderr.contains("No resources found"), "nothing stored: {after:?}");

    let raw = k.run(&["get", "--raw", "/apis/berth.dev/v1alpha1/jobs?bogus=1"]).await;
    assert!(!raw.ok && raw.stderr.contains("BadRequest") && raw.stderr.contains("bogus"), "{raw:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_the_six_kinds() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let out = k.ok(&["api-resources", "--api-group=berth.dev", "-o", "name"]).await;
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "agents.berth.dev",
            "clusters.berth.dev",
            "frameworks.berth.dev",
            "jobs.berth.dev",
            "offers.berth.dev",
            "placements.berth.dev"
        ]
    );
    let all = k.ok(&["api-resources"]).await;
    for kind in ["Namespace", "Event", "Secret", "Lease", "CustomResourceDefinition"] {
        assert!(all.contains(kind), "{kind} missing from {all}");
    }
    server.stop().await;
}

fn complete() -> Patch<serde_json::Value> {
    Patch::Merge(json!({"status": {"phase": "Complete", "conditions": [
        {"type": "Complete", "status": "True", "reason": "AllSucceeded", "message": "all tasks succeeded"}]}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_sees_an_update() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", &k.file("job.yaml", JOB)]).await;
    let mut child = k.command(&["get", "bj", "hello", "-w"]).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    // The initial listing first, so the watch is running before the update.
    while !seen.iter().any(|l: &String| l.starts_with("hello")) {
        let line = tokio::time::timeout(LIMIT, lines.next_line()).await;
        seen.push(line.unwrap_or_else(|_| panic!("no listing; saw {seen:?}")).expect("read").expect("open"));
    }
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.patch_status("hello", &PatchParams::default(), &complete()).await.expect("patch status");
    while !seen.iter().any(|l| l.contains("Complete")) {
        let line = tokio::time::timeout(LIMIT, lines.next_line()).await;
        seen.push(line.unwrap_or_else(|_| panic!("no update; saw {seen:?}")).expect("read").expect("open"));
    }
    child.kill().await.expect("kill kubectl");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_returns_once_the_status_has_it() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    k.ok(&["apply", "-f", &k.file("job.yaml", JOB)]).await;
    // -v=6 logs each request once its response headers arrive: the watch shows up as soon as it runs.
    let args = ["wait", "--for=condition=Complete", "bj/hello", "--timeout=30s", "-v=6"];
    let mut wait = k.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn kubectl wait");
    let mut log = BufReader::new(wait.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("watch=true")) {
        let line = tokio::time::timeout(LIMIT, log.next_line()).await;
        let line = line.unwrap_or_else(|_| panic!("kubectl wait never watched; saw {seen:?}")).expect("read");
        seen.push(line.unwrap_or_else(|| panic!("kubectl wait exited early; saw {seen:?}")));
    }
    assert!(wait.try_wait().expect("try_wait").is_none(), "kubectl wait returned before the condition was set");
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    jobs.patch_status("hello", &PatchParams::default(), &complete()).await.expect("patch status");
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let out = tokio::time::timeout(LIMIT, wait.wait_with_output()).await.expect("kubectl wait returns").expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("condition met"), "{out:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_creates_of_namespaces_and_secrets_work() {
    // `kubectl create namespace|secret` send protobuf bodies.
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    assert!(k.ok(&["create", "namespace", "team-a"]).await.contains("namespace/team-a created"));
    let args = ["create", "secret", "docker-registry", "reg", "-n", "team-a", "--docker-server=localhost:5000"];
    let out = k.ok(&[&args[..], &["--docker-username=u", "--docker-password=p"]].concat()).await;
    assert!(out.contains("secret/reg created"), "{out}");
    let ty = k.ok(&["get", "secret", "reg", "-n", "team-a", "-o", "jsonpath={.type}"]).await;
    assert_eq!(ty, "kubernetes.io/dockerconfigjson");
    k.ok(&["create", "secret", "generic", "plain", "-n", "team-a", "--from-literal=a=b"]).await;
    let data = k.ok(&["get", "secret", "plain", "-n", "team-a", "-o", "jsonpath={.data.a}"]).await;
    assert_eq!(data, "Yg==");
    let listed = k.ok(&["get", "secrets", "-n", "team-a"]).await;
    assert!(listed.contains("Opaque"), "{listed}");
    k.ok(&["delete", "namespace", "team-a"]).await;
    let gone = k.run(&["get", "secrets", "-n", "team-a"]).await;
    assert!(gone.stderr.contains("No resources found"), "a namespace takes its contents with it: {gone:?}");
    let forbidden = k.run(&["delete", "namespace", "default"]).await;
    assert!(!forbidden.ok && forbidden.stderr.contains("Forbidden"), "{forbidden:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cascades_foreground_and_orphan_and_waits() {
    use kube::api::PostParams;
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let child_of = |owner: &Job, name: &str| {
        let mut j = common::job(name, "1Mi");
        j.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "berth.dev/v1alpha1".into(),
            kind: "Job".into(),
            name: owner.metadata.name.clone().unwrap_or_default(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            block_owner_deletion: Some(true),
            controller: Some(true),
        }]);
        j
    };
    let pp = PostParams::default();
    let fg = jobs.create(&pp, &common::job("fg", "1Mi")).await.expect("owner");
    jobs.create(&pp, &child_of(&fg, "fg-child")).await.expect("child");
    let out = k.ok(&["delete", "bj", "fg", "--cascade=foreground", "--timeout=20s"]).await;
    assert!(out.contains("job.berth.dev \"fg\" deleted"), "{out}");
    // --wait (the default) returned: the owner is gone, and its blocking dependent before it.
    assert!(jobs.get_opt("fg").await.expect("get").is_none());
    assert!(jobs.get_opt("fg-child").await.expect("get").is_none());

    let keep = jobs.create(&pp, &common::job("keep", "1Mi")).await.expect("owner");
    jobs.create(&pp, &child_of(&keep, "keep-child")).await.expect("child");
    k.ok(&["delete", "bj", "keep", "--cascade=orphan", "--timeout=20s"]).await;
    assert!(jobs.get_opt("keep").await.expect("get").is_none());
    let orphan = jobs.get("keep-child").await.expect("an orphan stays");
    assert_eq!(orphan.metadata.owner_references, None, "{:?}", orphan.metadata);

    let bg = jobs.create(&pp, &common::job("bg", "1Mi")).await.expect("owner");
    jobs.create(&pp, &child_of(&bg, "bg-child")).await.expect("child");
    k.ok(&["delete", "bj", "bg", "--cascade=background"]).await;
    common::eventually("the background dependent to go", LIMIT, || async {
        match jobs.get_opt("bg-child").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_or_warned_as_validate_asks() {
    let server = Server::start().await;
    let k = Kubectl::new(&server);
    let typo = k.file("typo.yaml", &JOB.replace("spec:\n", "spec:\n  foo: 1\n"));
    let out = k.run(&["create", "--validate=strict", "-f", &typo]).await;
    assert!(!out.ok && out.stderr.contains("strict decoding error: unknown field \"spec.foo\""), "{out:?}");
    assert!(k.run(&["get", "bj", "hello"]).await.stderr.contains("NotFound"), "nothing stored");
    let out = k.run(&["create", "--validate=warn", "-f", &typo]).await;
    assert!(out.ok && out.stderr.contains("Warning: unknown field \"spec.foo\""), "{out:?}");
    let stored = k.ok(&["get", "bj", "hello", "-o", "json"]).await;
    assert!(!stored.contains("\"foo\""), "the unknown field is pruned: {stored}");
    let quiet =
        k.file("typo2.yaml", &JOB.replace("spec:\n", "spec:\n  foo: 1\n").replace("name: hello", "name: quiet"));
    let out = k.run(&["create", "--validate=false", "-f", &quiet]).await;
    assert!(out.ok && !out.stderr.contains("unknown field"), "Ignore drops it silently: {out:?}");
    server.stop().await;
}
