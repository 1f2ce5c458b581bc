//! Cordon and drain, end to end: `berth apiserver`, `berth controllers` and
//! two `berth agent` processes on one containerd with runc. `kubectl patch`
//! of `spec.unschedulable` keeps new work off an agent exactly as `berth
//! cordon` does; `berth drain` cordons an agent and evicts its placements:
//! each gets SIGTERM (the task traps it and says so in its log), ends
//! `Killed`/`Evicted`, and its Job runs it again on the other agent. Nothing
//! new goes to the drained agent.

use std::time::Duration;

use berth_e2e::berth::{AgentSpec, Berth};
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);
const AGENTS: [AgentSpec; 2] = [
    AgentSpec { name: "agent-a", cpu: "1", memory: "512Mi" },
    AgentSpec { name: "agent-b", cpu: "1", memory: "512Mi" },
];
/// Traps SIGTERM, says so, and exits.
const TRAPPER: &str = "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.2; done";

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    _registry: Registry,
    _containerd: Containerd,
    image: String,
}

impl Env {
    fn start() -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let berth = Berth::cluster(containerd.socket(), &AGENTS, &[]);
        let image = format!("{}/berth/demo:latest", registry.host());
        Env { berth, _registry: registry, _containerd: containerd, image }
    }

    fn run(&self, name: &str, instances: u32) {
        self.run_script(name, instances, TRAPPER, 20);
    }

    fn run_script(&self, name: &str, instances: u32, script: &str, grace: u32) {
        let yaml = ShellJob::new(name, &self.image, script)
            .instances(instances)
            .group_fields(&format!("terminationGracePeriodSeconds: {grace}"))
            .yaml();
        self.berth.apply(&yaml);
    }

    fn berth_ok(&self, args: &[&str]) -> String {
        let out = self.berth.berth(args);
        assert!(out.status.success(), "berth {args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

fn field(b: &Berth, placement: &str, path: &str) -> String {
    b.jsonpath(&format!("placements.berth.dev/{placement}"), path)
}

/// `Ok(agent)` once `placement` runs.
fn running_on(b: &Berth, placement: &str) -> Result<String, String> {
    match field(b, placement, ".status.phase").as_str() {
        "Running" => Ok(field(b, placement, ".spec.agent")),
        other => Err(format!("{placement}: phase {other:?}")),
    }
}

#[test]
fn drain_evicts_with_sigterm_and_nothing_new_lands_on_the_cordoned_agent() {
    let mut env = Env::start();
    // Cordoned with kubectl: the work goes to agent-a only.
    let out = env.berth.kubectl(&[
        "patch",
        "agents.berth.dev/agent-b",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"unschedulable":true}}"#,
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    env.run("svc", 2);
    for p in ["svc-main-0-0", "svc-main-1-0"] {
        let agent = env.berth.wait(&format!("{p} to run"), WAIT, |b| running_on(b, p));
        assert_eq!(agent, "agent-a", "{p} went to a cordoned agent");
    }
    assert!(env.berth_ok(&["uncordon", "agent-b"]).contains("agent/agent-b uncordoned"));
    assert_eq!(env.berth.jsonpath("agents.berth.dev/agent-b", ".spec.unschedulable"), "false");

    let drained = env.berth_ok(&["drain", "agent-a", "--timeout", "2m"]);
    assert!(drained.contains("agent/agent-a cordoned") && drained.contains("agent/agent-a drained"), "{drained}");
    assert!(drained.contains("evicting placement default/svc-main-0-0"), "{drained}");
    assert_eq!(env.berth.jsonpath("agents.berth.dev/agent-a", ".spec.unschedulable"), "true");
    for p in ["svc-main-0-0", "svc-main-1-0"] {
        let (phase, reason) = (field(&env.berth, p, ".status.phase"), field(&env.berth, p, ".status.reason"));
        assert_eq!((phase.as_str(), reason.as_str()), ("Killed", "Evicted"), "{p}");
        let message = field(&env.berth, p, ".status.message");
        assert_eq!(message, "agent agent-a is being drained");
        // The trap ran: it exited 0 on SIGTERM, well within its grace period.
        assert_eq!(field(&env.berth, p, ".status.exitCode"), "0", "{p} stopped on SIGTERM, not SIGKILL");
    }
    let logs = env.berth_ok(&["logs", "svc"]);
    assert_eq!(logs.matches("got TERM").count(), 2, "each evicted task saw SIGTERM: {logs}");

    // The Job runs the evicted tasks again, on the other agent.
    for p in ["svc-main-0-1", "svc-main-1-1"] {
        let agent = env.berth.wait(&format!("{p} to run"), WAIT, |b| running_on(b, p));
        assert_eq!(agent, "agent-b", "{p} went to the drained agent");
    }
    // New work avoids the cordoned agent too.
    env.run("later", 1);
    let agent = env.berth.wait("later to run", WAIT, |b| running_on(b, "later-main-0-0"));
    assert_eq!(agent, "agent-b");
    let on_a =
        env.berth.kubectl(&["get", "placements.berth.dev", "--field-selector", "spec.agent=agent-a", "-o", "name"]);
    let on_a = String::from_utf8_lossy(&on_a.stdout).to_string();
    assert_eq!(on_a.lines().count(), 2, "only the two evicted placements were ever on agent-a: {on_a}");
}

#[test]
fn drain_that_times_out_exits_non_zero_naming_what_still_runs() {
    let mut env = Env::start();
    // Ignores SIGTERM, and its grace period outlasts the drain's timeout.
    env.run_script("stubborn", 1, "trap '' TERM; while true; do sleep 0.2; done", 600);
    let agent = env.berth.wait("stubborn to run", WAIT, |b| running_on(b, "stubborn-main-0-0"));
    let out = env.berth.berth(&["drain", &agent, "--timeout", "3s"]);
    assert!(!out.status.success(), "a drain that did not finish must fail: {}", output_text(&out));
    let text = output_text(&out);
    assert!(text.contains("is not drained after 3s") && text.contains("default/stubborn-main-0-0"), "{text}");
    assert_eq!(field(&env.berth, "stubborn-main-0-0", ".status.phase"), "Running", "still in its grace period");
    assert_eq!(field(&env.berth, "stubborn-main-0-0", ".spec.kill.reason"), "Evicted");
}
