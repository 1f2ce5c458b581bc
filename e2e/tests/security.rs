//! The API as `berth up` and `berth apiserver` serve it: HTTPS with the CA
//! they generate, a bearer token per role in the kubeconfigs they write,
//! and plain HTTP only when asked for by name.

use berth_e2e::berth::Berth;
use berth_e2e::{Containerd, output_text};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn whoami(berth: &Berth, kubeconfig: &str) -> String {
    let out = berth.kubectl_with(kubeconfig, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert!(out.status.success(), "whoami with {kubeconfig}: {}", output_text(&out));
    stdout(&out)
}

#[test]
fn berth_up_serves_https_and_each_part_uses_a_token_of_its_role() {
    let containerd = Containerd::start();
    let berth = Berth::up(containerd.socket(), "1", "512Mi");
    let kubeconfig = std::fs::read_to_string(&berth.kubeconfig).expect("kubeconfig");
    assert!(kubeconfig.contains("server: https://127.0.0.1:"), "{kubeconfig}");
    assert!(kubeconfig.contains("certificate-authority-data: ") && kubeconfig.contains("token: "), "{kubeconfig}");
    assert_eq!(whoami(&berth, "kubeconfig"), "berth:admin");
    assert_eq!(whoami(&berth, "controllers.kubeconfig"), "berth:controllers");
    assert_eq!(whoami(&berth, "agent-agent-1.kubeconfig"), "berth:agent:agent-1");

    // The agent registered and reports with its own token, which can do little else.
    let agent = |args: &[&str]| stdout(&berth.kubectl_with("agent-agent-1.kubeconfig", args));
    assert_eq!(agent(&["auth", "can-i", "patch", "agents.berth.dev/agent-1", "--subresource=status"]), "yes");
    assert!(agent(&["auth", "can-i", "delete", "jobs.berth.dev"]).starts_with("no"));
    let out = berth.kubectl_with("agent-agent-1.kubeconfig", &["delete", "agents.berth.dev", "agent-1"]);
    assert!(!out.status.success() && output_text(&out).contains("is forbidden"), "{}", output_text(&out));
    assert_eq!(stdout(&berth.kubectl(&["get", "agents.berth.dev", "-o", "name"])), "agent.berth.dev/agent-1");

    // Of a placement bound to it, the agent may remove the finalizer and change nothing else.
    berth.apply(
        "apiVersion: berth.dev/v1alpha1\nkind: Placement\nmetadata: {name: p, namespace: default}\n\
         spec: {agent: agent-1, job: j, taskGroup: main, image: registry.test/demo:1}\n",
    );
    let patch = |body: &str| {
        berth.kubectl_with(
            "agent-agent-1.kubeconfig",
            &["patch", "placements.berth.dev", "p", "--type", "merge", "-p", body],
        )
    };
    let out = patch(r#"{"spec":{"image":"registry.test/evil:1"}}"#);
    let text = output_text(&out);
    assert!(!out.status.success() && text.contains("agent agent-1 may only remove finalizers"), "{text}");
    assert_eq!(berth.jsonpath("placements.berth.dev/p", ".spec.image"), "registry.test/demo:1");
    let out = patch(r#"{"metadata":{"finalizers":null}}"#);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(berth.jsonpath("placements.berth.dev/p", ".metadata.finalizers"), "");
}

#[test]
fn berth_apiserver_writes_a_kubeconfig_per_framework_for_its_namespace() {
    let berth = Berth::apiserver(&["--frameworks", "team-a/py"]);
    let file = "framework-team-a-py.kubeconfig";
    assert_eq!(whoami(&berth, file), "berth:framework:team-a/py");
    let can = |args: &[&str]| stdout(&berth.kubectl_with(file, &[&["auth", "can-i"], args].concat()));
    assert_eq!(can(&["create", "placements.berth.dev", "-n", "team-a"]), "yes");
    assert_eq!(can(&["patch", "offers.berth.dev", "-n", "team-a"]), "yes");
    assert_eq!(can(&["patch", "frameworks.berth.dev/py", "-n", "team-a"]), "yes");
    assert!(can(&["patch", "frameworks.berth.dev/other", "-n", "team-a"]).starts_with("no"));
    assert!(can(&["create", "placements.berth.dev", "-n", "team-b"]).starts_with("no"));
    assert!(can(&["create", "jobs.berth.dev", "-n", "team-a"]).starts_with("no"));

    let out = std::process::Command::new(berth_e2e::berth::binary())
        .args(["apiserver", "--frameworks", "team-a"])
        .output()
        .expect("running berth");
    assert!(!out.status.success() && output_text(&out).contains("NAMESPACE/NAME"), "{}", output_text(&out));
}

#[test]
fn berth_apiserver_takes_a_token_file_the_user_brings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "root-secret,ops,1,\"system:masters\"\nalice-secret,alice,2,\"berth:users,berth:namespace:team-a\"\n",
    )
    .expect("token file");
    let berth = Berth::apiserver(&["--token-auth-file", tokens.to_str().expect("utf-8 path")]);
    assert_eq!(whoami(&berth, "kubeconfig"), "ops");
    let kubeconfig = std::fs::read_to_string(&berth.kubeconfig).expect("kubeconfig");
    assert!(kubeconfig.contains("token: root-secret"), "the admin of the file: {kubeconfig}");
    let server = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("server").to_string();
    let alice =
        berth.kubectl(&["--token", "alice-secret", "auth", "can-i", "create", "jobs.berth.dev", "-n", "team-a"]);
    assert_eq!(stdout(&alice), "yes", "{}", output_text(&alice));
    let alice = berth.kubectl(&["--token", "alice-secret", "get", "jobs.berth.dev", "-n", "team-b"]);
    assert!(output_text(&alice).contains(r#"User "alice" cannot list resource "jobs""#), "{}", output_text(&alice));
    let plain = berth.kubectl(&["--server", &server.replace("https://", "http://"), "get", "namespaces"]);
    assert!(!plain.status.success(), "plain HTTP is not served: {}", output_text(&plain));
}

#[test]
fn plain_http_only_with_insecure_http() {
    let berth = Berth::apiserver(&["--insecure-http", "--agents", "a1"]);
    let kubeconfig = std::fs::read_to_string(&berth.kubeconfig).expect("kubeconfig");
    assert!(kubeconfig.contains("server: http://127.0.0.1:") && !kubeconfig.contains("certificate-authority"));
    assert!(!kubeconfig.contains("token:"), "{kubeconfig}");
    let out = berth.kubectl_with("agent-a1.kubeconfig", &["get", "namespaces", "-o", "name"]);
    assert!(stdout(&out).contains("namespace/default"), "{}", output_text(&out));
}
