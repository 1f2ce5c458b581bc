//! HTTPS with a generated CA and bearer tokens: real kubectl and kube-rs
//! against a TLS server, one token per role.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use berth_apiserver::auth::{TokenEntry, Tokens, User, pki};
use berth_apiserver::{Credentials, Embedded, Options};
use kube::api::{Api, ListParams, PostParams};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";
const LIMIT: Duration = Duration::from_secs(20);

/// (token, user, groups) of every role the tests use.
const USERS: &[(&str, &str, &[&str])] = &[
    ("admin-token", "berth:admin", &["system:masters"]),
    ("controllers-token", "berth:controllers", &["berth:controllers"]),
    ("a1-token", "berth:agent:a1", &["berth:agents"]),
    ("a2-token", "berth:agent:a2", &["berth:agents"]),
    ("framework-token", "batch", &["berth:frameworks", "berth:namespace:team-a"]),
    ("alice-token", "alice", &["berth:users", "berth:namespace:team-a"]),
];

const PLACEMENT: &str = "apiVersion: berth.dev/v1alpha1
kind: Placement
metadata: {name: p1, namespace: team-a}
spec:
  agent: a1
  job: hello
  taskGroup: main
  image: localhost:5000/berth/demo:latest
  resources: {cpu: 100m, memory: 32Mi}
  imagePullSecret: pull
";

const JOB: &str = "apiVersion: berth.dev/v1alpha1
kind: Job
metadata: {name: hello}
spec:
  taskGroups:
  - name: main
    image: localhost:5000/berth/demo:latest
    resources: {cpu: 100m, memory: 32Mi}
";

struct Secure {
    url: String,
    dir: tempfile::TempDir,
    ca_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Secure {
    async fn start() -> Secure {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = pki::ensure_generated(&dir.path().join("pki"), &[]).expect("pki");
        let entries = USERS
            .iter()
            .map(|(token, name, groups)| TokenEntry {
                token: token.to_string(),
                user: User {
                    name: name.to_string(),
                    uid: format!("uid-{name}"),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                },
            })
            .collect();
        let opts = Options {
            tls: Some(pki::server_config(&files.cert, &files.key).expect("tls config")),
            tokens: Some(std::sync::Arc::new(Tokens::new(entries))),
            ..Options::default()
        };
        let store = Embedded::open(&dir.path().join("store.redb")).expect("store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        tokio::spawn(berth_apiserver::serve_with(listener, store, berth_api::crds::all(), opts, shutdown));
        let ca_pem = std::fs::read_to_string(&files.ca_cert).expect("ca");
        let s = Secure { url, dir, ca_pem, stop: Some(tx) };
        for (token, _, _) in USERS {
            let creds = Credentials { ca_pem: Some(s.ca_pem.clone()), token: Some(token.to_string()) };
            std::fs::write(s.kubeconfig(token), berth_apiserver::kubeconfig_with(&s.url, &creds)).expect("kubeconfig");
        }
        // (Without any token over HTTPS kubectl asks for a password; kube-rs below sends none.)
        let wrong = Credentials { ca_pem: Some(s.ca_pem.clone()), token: Some("wrong-token".into()) };
        std::fs::write(s.kubeconfig("wrong"), berth_apiserver::kubeconfig_with(&s.url, &wrong)).expect("kubeconfig");
        s.kubectl_ok("admin-token", &["create", "namespace", "team-a"]).await;
        s.kubectl_ok("admin-token", &["create", "namespace", "team-b"]).await;
        s
    }

    fn kubeconfig(&self, token: &str) -> PathBuf {
        self.dir.path().join(format!("{token}.kubeconfig"))
    }

    async fn kubectl(&self, token: &str, args: &[&str]) -> (bool, String, String) {
        let mut c = Command::new(KUBECTL);
        c.arg("--kubeconfig").arg(self.kubeconfig(token)).arg("--cache-dir").arg(self.dir.path().join(token));
        c.args(args).env("HOME", self.dir.path()).stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = tokio::time::timeout(LIMIT, c.output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {LIMIT:?}"))
            .expect("kubectl runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    async fn kubectl_ok(&self, token: &str, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.kubectl(token, args).await;
        assert!(ok, "kubectl {args:?} as {token} failed: {stderr}");
        stdout
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    }

    async fn client(&self, creds: Credentials) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&berth_apiserver::kubeconfig_with(&self.url, &creds))
            .expect("kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for Secure {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_whoami_names_each_role() {
    let s = Secure::start().await;
    for (token, name, groups) in USERS {
        let out = s.kubectl_ok(token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo}"]).await;
        let info: serde_json::Value = serde_json::from_str(&out).expect("userInfo is JSON");
        assert_eq!(info["username"], *name, "{out}");
        assert_eq!(info["uid"], format!("uid-{name}"), "{out}");
        let mut want: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        want.push("system:authenticated".into());
        assert_eq!(info["groups"], serde_json::json!(want), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_answers_per_role() {
    let s = Secure::start().await;
    let cases: &[(&str, &[&str], bool)] = &[
        ("admin-token", &["delete", "jobs.berth.dev", "-n", "team-b"], true),
        ("admin-token", &["*", "*"], true),
        ("controllers-token", &["update", "agents.berth.dev/a1", "--subresource=status"], true),
        ("controllers-token", &["create", "placements.berth.dev", "-n", "team-b"], true),
        ("controllers-token", &["get", "secrets", "-n", "team-a"], false),
        ("a1-token", &["patch", "agents.berth.dev/a1", "--subresource=status"], true),
        ("a1-token", &["patch", "agents.berth.dev/a2", "--subresource=status"], false),
        ("a1-token", &["watch", "placements.berth.dev", "--all-namespaces"], true),
        ("a1-token", &["update", "leases.coordination.k8s.io/a1", "-n", "kube-node-lease"], true),
        ("a1-token", &["delete", "jobs.berth.dev", "-n", "team-a"], false),
        ("framework-token", &["create", "placements.berth.dev", "-n", "team-a"], true),
        ("framework-token", &["update", "offers.berth.dev", "-n", "team-a"], true),
        ("framework-token", &["create", "placements.berth.dev", "-n", "team-b"], false),
        ("framework-token", &["delete", "jobs.berth.dev", "-n", "team-a"], false),
        ("alice-token", &["delete", "jobs.berth.dev", "-n", "team-a"], true),
        ("alice-token", &["create", "secrets", "-n", "team-a"], true),
        ("alice-token", &["get", "jobs.berth.dev", "-n", "team-b"], false),
        ("alice-token", &["list", "agents.berth.dev"], false),
    ];
    let mut wrong = Vec::new();
    for (token, args, want) in cases {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        let (_, stdout, stderr) = s.kubectl(token, &full).await;
        let got = stdout.lines().next().unwrap_or_default() == "yes";
        if got != *want {
            wrong.push(format!("{token} can-i {args:?}: want {want}, got {stdout:?} {stderr:?}"));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    let list = s.kubectl_ok("alice-token", &["auth", "can-i", "--list", "-n", "team-a"]).await;
    assert!(list.lines().any(|l| l.starts_with("*.*") && l.ends_with("[*]")), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_unauthorized() {
    let s = Secure::start().await;
    let (ok, _, stderr) = s.kubectl("wrong", &["get", "jobs.berth.dev"]).await;
    assert!(!ok && stderr.contains("You must be logged in to the server"), "{stderr}");
    for token in [None, Some("wrong-token".to_string())] {
        let client = s.client(Credentials { ca_pem: Some(s.ca_pem.clone()), token: token.clone() }).await;
        let jobs: Api<berth_api::Job> = Api::namespaced(client.clone(), "team-a");
        let mut job = common::job("sneaky", "32Mi");
        job.metadata.namespace = Some("team-a".into());
        let err = common::api_error(jobs.create(&PostParams::default(), &job).await.unwrap_err());
        assert_eq!(
            (err.code, err.reason.as_str(), err.message.as_str()),
            (401, "Unauthorized", "Unauthorized"),
            "{token:?}"
        );
        let req = http::Request::get("/healthz").body(Vec::new()).expect("request");
        assert_eq!(client.request_text(req).await.expect("health needs no token"), "ok");
    }
    let admin = s.client(Credentials { ca_pem: Some(s.ca_pem.clone()), token: Some("admin-token".into()) }).await;
    let jobs: Api<berth_api::Job> = Api::namespaced(admin, "team-a");
    assert!(jobs.list(&ListParams::default()).await.expect("list").items.is_empty(), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_requests_are_refused_and_store_nothing() {
    let s = Secure::start().await;
    let job = s.file("job.yaml", JOB);
    let (ok, _, stderr) = s.kubectl("alice-token", &["apply", "-n", "team-b", "-f", &job]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr
            .contains(r#"User "alice" cannot get resource "jobs" in API group "berth.dev" in the namespace "team-b""#)
            || stderr.contains(
                r#"User "alice" cannot create resource "jobs" in API group "berth.dev" in the namespace "team-b""#
            ),
        "{stderr}"
    );
    s.kubectl_ok("alice-token", &["apply", "-n", "team-a", "-f", &job]).await;
    let (ok, _, stderr) = s.kubectl("framework-token", &["delete", "jobs.berth.dev", "hello", "-n", "team-a"]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(r#"jobs.berth.dev "hello" is forbidden: User "batch" cannot delete resource "jobs" in API group "berth.dev" in the namespace "team-a""#),
        "{stderr}"
    );
    assert_eq!(s.kubectl_ok("admin-token", &["get", "bj", "-A", "-o", "name"]).await, "job.berth.dev/hello");
    let framework =
        s.client(Credentials { ca_pem: Some(s.ca_pem.clone()), token: Some("framework-token".into()) }).await;
    let jobs: Api<berth_api::Job> = Api::namespaced(framework, "team-a");
    let err = common::api_error(jobs.delete("hello", &Default::default()).await.expect_err("forbidden"));
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    let details = err.details.expect("details");
    assert_eq!((details.name.as_str(), details.group.as_str(), details.kind.as_str()), ("hello", "berth.dev", "jobs"));

    // An agent writes the status of its own placements only.
    s.kubectl_ok("admin-token", &["apply", "-f", &s.file("p1.yaml", PLACEMENT)]).await;
    let patch = r#"{"status":{"phase":"Staging"}}"#;
    let args =
        ["patch", "placements.berth.dev", "p1", "-n", "team-a", "--subresource=status", "--type=merge", "-p", patch];
    let (ok, _, stderr) = s.kubectl("a2-token", &args).await;
    assert!(!ok && stderr.contains(r#"User "berth:agent:a2" cannot patch resource "placements/status""#), "{stderr}");
    let phase = ["get", "placements.berth.dev", "p1", "-n", "team-a", "-o", "jsonpath={.status.phase}"];
    assert_ne!(s.kubectl_ok("admin-token", &phase).await, "Staging", "a refused patch changes nothing");
    s.kubectl_ok("a1-token", &args).await;
    assert_eq!(s.kubectl_ok("admin-token", &phase).await, "Staging");
    let (ok, _, stderr) = s.kubectl("a1-token", &["delete", "placements.berth.dev", "p1", "-n", "team-a"]).await;
    assert!(!ok && stderr.contains("forbidden"), "{stderr}");

    // The pull secret of its placement, and no other.
    for name in ["pull", "other"] {
        s.kubectl_ok("admin-token", &["create", "secret", "generic", name, "-n", "team-a", "--from-literal=k=v"]).await;
    }
    s.kubectl_ok("a1-token", &["get", "secret", "pull", "-n", "team-a"]).await;
    for (token, name) in [("a1-token", "other"), ("a2-token", "pull")] {
        let (ok, _, stderr) = s.kubectl(token, &["get", "secret", name, "-n", "team-a"]).await;
        assert!(!ok && stderr.contains("is forbidden"), "{token} {name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_trusts_the_generated_ca_and_nothing_else() {
    let s = Secure::start().await;
    let client = s.client(Credentials { ca_pem: Some(s.ca_pem.clone()), token: Some("alice-token".into()) }).await;
    let jobs: Api<berth_api::Job> = Api::namespaced(client, "team-a");
    let mut job = common::job("hello", "32Mi");
    job.metadata.namespace = Some("team-a".into());
    jobs.create(&PostParams::default(), &job).await.expect("create over TLS");
    assert_eq!(jobs.list(&ListParams::default()).await.expect("list").items.len(), 1);

    let other = tempfile::tempdir().expect("tempdir");
    let stranger = pki::ensure_generated(other.path(), &[]).expect("another CA");
    let wrong_ca = std::fs::read_to_string(stranger.ca_cert).expect("ca");
    let client = s.client(Credentials { ca_pem: Some(wrong_ca), token: Some("alice-token".into()) }).await;
    let jobs: Api<berth_api::Job> = Api::namespaced(client, "team-a");
    let err = jobs.list(&ListParams::default()).await.expect_err("a server the CA did not sign is refused");
    assert!(!matches!(err, kube::Error::Api(_)), "refused before any HTTP exchange: {err:?}");
}
