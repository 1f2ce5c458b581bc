//! Images end to end: registry credentials from a Job's `imagePullSecret`
//! (a `kubernetes.io/dockerconfigjson` Secret made by `kubectl create secret
//! docker-registry`) against a registry behind htpasswd auth; a failing
//! pull that shows `ImagePullBackOff` while it is retried and then ends
//! `ImagePullFailed`; and one registry pull for many placements of one image.

use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::{Containerd, Registry, ShellJob, output_text};

const WAIT: Duration = Duration::from_secs(120);

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    registry: Registry,
    _containerd: Containerd,
}

impl Env {
    fn start(registry: Registry) -> Env {
        let containerd = Containerd::start();
        let berth = Berth::up(containerd.socket(), "1", "512Mi");
        Env { berth, registry, _containerd: containerd }
    }

    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    fn kubectl_ok(&self, args: &[&str]) {
        let out = self.berth.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", output_text(&out));
    }

    fn apply(&self, yaml: &str) {
        self.berth.apply(yaml);
    }

    /// Waits until placement `name` reaches `phase`; returns its reason and message.
    fn wait_phase(&mut self, name: &str, phase: &str) -> (String, String) {
        let object = format!("placements.berth.dev/{name}");
        self.berth.wait(&format!("{name} to be {phase}"), WAIT, |b| {
            let status = b.jsonpath(&object, ".status");
            match b.jsonpath(&object, ".status.phase") == phase {
                true => Ok((b.jsonpath(&object, ".status.reason"), b.jsonpath(&object, ".status.message"))),
                false => Err(status),
            }
        })
    }
}

fn job(name: &str, image: &str, instances: u32, secret: Option<&str>) -> String {
    let job = ShellJob::new(name, image, "echo pulled and ran").instances(instances);
    match secret {
        Some(s) => job.spec_field(&format!("imagePullSecret: {s}")),
        None => job,
    }
    .yaml()
}

#[test]
fn a_private_image_runs_with_the_right_pull_secret_and_every_wrong_one_says_why() {
    let registry = Registry::start_with_auth("puller", "right-password");
    registry.push_demo_image("berth/private:latest", None);
    // Never pulled with the right credentials: a present image is not pulled
    // again (as with Kubernetes' IfNotPresent), so the wrong ones get their own.
    registry.push_demo_image("berth/locked:latest", None);
    let mut env = Env::start(registry);
    let host = env.registry.host();
    let image = env.image("berth/private:latest");
    let locked = env.image("berth/locked:latest");
    for (secret, password) in [("right", "right-password"), ("wrong", "wrong-password")] {
        let server = format!("--docker-server={host}");
        let password = format!("--docker-password={password}");
        env.kubectl_ok(&[
            "create",
            "secret",
            "docker-registry",
            secret,
            &server,
            "--docker-username=puller",
            &password,
        ]);
    }
    env.kubectl_ok(&["create", "secret", "generic", "opaque", "--from-literal=user=puller"]);
    let elsewhere = "--docker-server=registry.example.com";
    env.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "elsewhere",
        elsewhere,
        "--docker-username=u",
        "--docker-password=p",
    ]);

    env.apply(&job("right", &image, 1, Some("right")));
    env.apply(&job("wrong", &locked, 1, Some("wrong")));
    env.apply(&job("none", &locked, 1, None));
    env.apply(&job("absent", &locked, 1, Some("no-such-secret")));
    env.apply(&job("opaque", &locked, 1, Some("opaque")));
    env.apply(&job("elsewhere", &locked, 1, Some("elsewhere")));

    let (reason, _) = env.wait_phase("right-main-0-0", "Succeeded");
    assert_eq!(reason, "Completed");
    let logs = env.berth.berth(&["logs", "right"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("pulled and ran"), "{}", output_text(&logs));

    let expected = [
        ("wrong", "unauthorized"),
        ("none", "unauthorized"),
        ("absent", "imagepullsecret \"no-such-secret\" not found"),
        ("opaque", "has type \"opaque\", not \"kubernetes.io/dockerconfigjson\""),
        ("elsewhere", &format!("no entry for registry \"{host}\"")),
    ];
    for (job, says) in expected {
        let (reason, message) = env.wait_phase(&format!("{job}-main-0-0"), "Failed");
        assert_eq!(reason, "ImagePullFailed", "{job}: {message}");
        assert!(message.to_lowercase().contains(says), "{job}: the message should say {says:?}: {message}");
    }
}

#[test]
fn a_failing_pull_backs_off_then_fails_and_many_placements_pull_an_image_once() {
    let registry = Registry::start();
    registry.push_demo_image("berth/demo:latest", None);
    let mut env = Env::start(registry);

    let missing = env.image("berth/not-pushed:latest");
    env.apply(&job("missing", &missing, 1, None));
    let object = "placements.berth.dev/missing-main-0-0";
    let message = env.berth.wait("the pull to back off", WAIT, |b| {
        let (phase, reason) = (b.jsonpath(object, ".status.phase"), b.jsonpath(object, ".status.reason"));
        match (phase.as_str(), reason.as_str()) {
            ("Staging", "ImagePullBackOff") => Ok(b.jsonpath(object, ".status.message")),
            _ => Err(b.jsonpath(object, ".status")),
        }
    });
    assert!(message.to_lowercase().contains("manifest unknown"), "the registry's answer is not shown: {message}");
    let (reason, message) = env.wait_phase("missing-main-0-0", "Failed");
    assert_eq!(reason, "ImagePullFailed");
    assert!(message.contains("not-pushed") && message.contains("after 4 attempts"), "{message}");

    let image = env.image("berth/demo:latest");
    env.apply(&job("many", &image, 5, None));
    for i in 0..5 {
        env.wait_phase(&format!("many-main-{i}-0"), "Succeeded");
    }
    let log = std::fs::read_to_string(env.berth.dir.path().join("berth-up.log")).expect("berth up's log");
    let pulls = log.lines().filter(|l| l.contains(&format!("pulling image={image}"))).count();
    assert_eq!(pulls, 1, "five placements of {image} should pull it once:\n{log}");
}
