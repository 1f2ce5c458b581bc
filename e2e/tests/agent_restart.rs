//! Agent restart, end to end: `berth apiserver`, `berth controllers` and one
//! `berth agent` on a containerd with runc. `kill -9` of the agent leaves
//! its containers running; the restarted agent adopts them by their labels
//! and keeps reporting (a placement stays `Running`, then `Succeeded` with
//! its exit code), and a placement deleted while the agent was down stays
//! `Terminating` (agent finalizer) until the restarted agent has stopped
//! and removed its container. No placement fails because of the restart.

use std::time::Duration;

use berth_e2e::berth::{AgentSpec, Berth};
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);
const AGENT: &str = "agent-1";

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    _registry: Registry,
    containerd: Containerd,
    image: String,
}

impl Env {
    fn start() -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let berth = Berth::cluster(containerd.socket(), &[AgentSpec { name: AGENT, cpu: "1", memory: "512Mi" }], &[]);
        let image = format!("{}/berth/demo:latest", registry.host());
        Env { berth, _registry: registry, containerd, image }
    }

    fn run(&self, name: &str, script: &str) {
        let yaml = ShellJob::new(name, &self.image, script).group_fields("terminationGracePeriodSeconds: 5").yaml();
        self.berth.apply(&yaml);
    }
}

fn phase(b: &Berth, placement: &str) -> String {
    b.jsonpath(&format!("placements.berth.dev/{placement}"), ".status.phase")
}

fn uid(b: &Berth, placement: &str) -> String {
    b.jsonpath(&format!("placements.berth.dev/{placement}"), ".metadata.uid")
}

#[test]
fn a_restarted_agent_adopts_its_running_containers_and_stops_those_deleted_meanwhile() {
    let mut env = Env::start();
    // Runs long enough to outlive the agent's restart, then exits 0 once told to.
    env.run("adopted", "echo started; while [ ! -e /tmp/done ]; do sleep 0.2; done; exit 0");
    env.run("doomed", "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.2; done");
    for p in ["adopted-main-0-0", "doomed-main-0-0"] {
        env.berth.wait(&format!("{p} to run"), WAIT, |b| match phase(b, p).as_str() {
            "Running" => Ok(()),
            other => Err(format!("phase {other:?}")),
        });
    }
    let ns = env.berth.containerd_namespace.clone();
    let (adopted, doomed) = (
        format!("berth-{}", uid(&env.berth, "adopted-main-0-0")),
        format!("berth-{}", uid(&env.berth, "doomed-main-0-0")),
    );

    env.berth.kill9(AGENT);
    let running = env.containerd.running_tasks(&ns);
    assert!(running.contains(&adopted) && running.contains(&doomed), "containers outlive the agent: {running:?}");

    // Deleted while its agent is down: the finalizer keeps it, Terminating.
    let out = env.berth.kubectl(&["delete", "jobs.berth.dev", "doomed", "--wait=false"]);
    assert!(out.status.success(), "{}", output_text(&out));
    env.berth.wait("the doomed placement to be Terminating", WAIT, |b| {
        let ts = b.jsonpath("placements.berth.dev/doomed-main-0-0", ".metadata.deletionTimestamp");
        if ts.is_empty() { Err("no deletionTimestamp yet".into()) } else { Ok(()) }
    });
    assert!(env.containerd.running_tasks(&ns).contains(&doomed), "nothing stops it while the agent is down");
    assert_eq!(phase(&env.berth, "doomed-main-0-0"), "Running");

    env.berth.restart(AGENT);
    let containerd = &env.containerd;
    env.berth.wait("the doomed placement and its container to be gone", WAIT, |b| {
        let left = b.kubectl(&["get", "placements.berth.dev", "doomed-main-0-0", "--ignore-not-found", "-o", "name"]);
        let left = String::from_utf8_lossy(&left.stdout).trim().to_string();
        let containers = containerd.containers(&ns);
        if left.is_empty() && !containers.contains(&doomed) {
            Ok(())
        } else {
            Err(format!("placement {left:?}, containers {containers:?}"))
        }
    });
    assert_eq!(phase(&env.berth, "adopted-main-0-0"), "Running", "the adopted container still runs and is Running");

    // Tell the adopted container to finish; the restarted agent reports its exit.
    let out = std::process::Command::new("ctr")
        .arg("--address")
        .arg(env.containerd.socket())
        .args(["-n", &ns, "tasks", "exec", "--exec-id", "finish", &adopted, "/bin/sh", "-c", ": > /tmp/done"])
        .output()
        .expect("running ctr");
    assert!(out.status.success(), "ctr tasks exec: {}", output_text(&out));
    env.berth.wait("the adopted placement to succeed", WAIT, |b| match phase(b, "adopted-main-0-0").as_str() {
        "Succeeded" => Ok(()),
        other => Err(format!("phase {other:?}: {}", b.jsonpath("placements.berth.dev/adopted-main-0-0", ".status"))),
    });
    let status = |path: &str| env.berth.jsonpath("placements.berth.dev/adopted-main-0-0", path);
    assert_eq!((status(".status.exitCode"), status(".status.reason")), ("0".into(), "Completed".into()));
    assert!(!status(".status.startedAt").is_empty() && !status(".status.finishedAt").is_empty());
    env.berth.wait("the finished placement's container to be removed", WAIT, |_| {
        let containers = containerd.containers(&ns);
        if containers.contains(&adopted) { Err(format!("{containers:?}")) } else { Ok(()) }
    });
    let phases = env.berth.kubectl(&["get", "placements.berth.dev", "-o", "jsonpath={.items[*].status.phase}"]);
    let phases = String::from_utf8_lossy(&phases.stdout).to_string();
    assert!(!phases.contains("Failed"), "no placement failed because the agent restarted: {phases}");
}
