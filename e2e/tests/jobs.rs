//! The walking skeleton, end to end: `kubectl apply` a Job → the API store
//! → the batch controller's claim and placement → the agent pulls from a
//! real registry and runs the container in containerd with runc → status
//! back to `kubectl wait`. Each test starts its own containerd, registry and
//! `berth up` in temporary directories. What a container cannot do (its
//! memory limit, CPU quota, privileges, namespaces) is in `isolation.rs`.

use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    registry: Registry,
    containerd: Containerd,
}

impl Env {
    fn start(cpu: &str, memory: &str) -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let berth = Berth::up(containerd.socket(), cpu, memory);
        Env { berth, registry, containerd }
    }

    fn image(&self) -> String {
        format!("{}/berth/demo:latest", self.registry.host())
    }

    fn apply(&self, yaml: &str) {
        self.berth.apply(yaml);
    }

    /// Waits until the Job finishes, then checks it finished as `cond` with
    /// `kubectl wait --for=condition=<cond>`; on failure shows what was seen.
    fn wait_for(&self, job: &str, cond: &str) {
        let object = format!("jobs.berth.dev/{job}");
        let finished = berth_e2e::poll::poll(WAIT, || match self.berth.jsonpath(&object, ".status.phase").as_str() {
            p @ ("Complete" | "Failed") => Ok(p.to_string()),
            other => Err(format!("phase {other:?}")),
        });
        let out = self.berth.kubectl(&["wait", &format!("--for=condition={cond}"), "--timeout=20s", &object]);
        if finished.as_deref() != Ok(cond) || !out.status.success() {
            let yaml = self.berth.kubectl(&["get", "jobs.berth.dev,placements.berth.dev", "-o", "yaml"]);
            panic!(
                "job {job} did not become {cond} (saw {finished:?}); kubectl wait: {}\n{}\n--- berth log ---\n{}",
                output_text(&out),
                String::from_utf8_lossy(&yaml.stdout),
                self.berth.log_tail()
            );
        }
    }
}

/// `Ok` once the placement runs; otherwise its status, for the timeout message.
fn running(b: &Berth, placement: &str) -> Result<(), String> {
    match b.jsonpath(placement, ".status.phase").as_str() {
        "Running" => Ok(()),
        _ => Err(b.jsonpath(placement, ".status")),
    }
}

fn job(name: &str, image: &str, script: &str, cpu: &str, memory: &str) -> String {
    ShellJob::new(name, image, script).resources(cpu, memory).yaml()
}

#[test]
fn a_job_that_prints_succeeds_and_its_output_is_readable() {
    let env = Env::start("1", "512Mi");
    env.apply(&job("hello", &env.image(), "echo hello from the e2e test; echo second line", "100m", "32Mi"));
    env.wait_for("hello", "Complete");

    let logs = env.berth.berth(&["logs", "hello"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("hello from the e2e test\nsecond line"), "berth logs: {}", output_text(&logs));

    let table = env.berth.kubectl(&["get", "jobs.berth.dev"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "STATUS", "SUCCEEDED", "RUNNING", "FAILED", "AGE"] {
        assert!(header.contains(column), "column {column} missing from:\n{table}");
    }
    assert!(table.lines().any(|l| l.starts_with("hello") && l.contains("Complete")), "{table}");
    assert_eq!(env.berth.jsonpath("jobs.berth.dev/hello", ".status.tasks.succeeded"), "1");
    assert_eq!(env.berth.jsonpath("placements.berth.dev/hello-main-0-0", ".status.exitCode"), "0");

    let describe = env.berth.kubectl(&["describe", "jobs.berth.dev/hello"]);
    let text = String::from_utf8_lossy(&describe.stdout);
    let events = text.split("Events:").nth(1).unwrap_or_default();
    for reason in ["Scheduled", "Completed"] {
        assert!(events.contains(reason), "describe lists the {reason} event:\n{text}");
    }
}

#[test]
fn a_job_that_exits_3_fails_with_the_exit_code_in_its_status() {
    let env = Env::start("1", "512Mi");
    env.apply(&job("three", &env.image(), "echo about to fail; exit 3", "100m", "32Mi"));
    env.wait_for("three", "Failed");
    assert_eq!(env.berth.jsonpath("placements.berth.dev/three-main-0-0", ".status.exitCode"), "3");
    assert_eq!(env.berth.jsonpath("placements.berth.dev/three-main-0-0", ".status.phase"), "Failed");
    let message = env.berth.jsonpath("jobs.berth.dev/three", r#".status.conditions[?(@.type=="Failed")].message"#);
    assert!(message.contains("exit code 3"), "Failed condition says: {message}");
}

#[test]
fn a_task_past_its_timeout_is_stopped_and_fails_deadline_exceeded() {
    let env = Env::start("1", "512Mi");
    let script = "trap 'echo got TERM; exit 143' TERM; echo started; while true; do sleep 1; done";
    let slow = ShellJob::new("slow", &env.image(), script)
        .group_fields("timeoutSeconds: 2\nterminationGracePeriodSeconds: 10");
    env.apply(&slow.yaml());
    env.wait_for("slow", "Failed");
    let placement = "placements.berth.dev/slow-main-0-0";
    assert_eq!(
        env.berth.jsonpath(placement, ".status.reason"),
        "DeadlineExceeded",
        "{}",
        env.berth.jsonpath(placement, ".status")
    );
    assert_eq!(
        env.berth.jsonpath(placement, ".status.exitCode"),
        "143",
        "it ended on SIGTERM, within its grace period"
    );
    let started = env.berth.jsonpath(placement, ".status.startedAt");
    let finished = env.berth.jsonpath(placement, ".status.finishedAt");
    let secs = |t: &str| t.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    assert!(secs(&finished) - secs(&started) >= 2, "ran {started} to {finished}: less than its timeout");
    let logs = env.berth.berth(&["logs", "slow"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("started") && text.contains("got TERM"), "{}", output_text(&logs));
}

#[test]
fn jobs_that_do_not_fit_together_run_one_after_the_other() {
    let mut env = Env::start("1", "100Mi");
    env.apply(&job("first", &env.image(), "echo first started; sleep 6; echo first done", "100m", "64Mi"));
    env.berth.wait("the first job to run", WAIT, |b| running(b, "placements.berth.dev/first-main-0-0"));
    env.apply(&job("second", &env.image(), "echo second done", "100m", "64Mi"));

    // While the first runs, the second waits and says why, in numbers.
    let why = env.berth.wait("the second job to report it does not fit", WAIT, |b| {
        let status = b.jsonpath("jobs.berth.dev/second", r#".status.conditions[?(@.type=="Scheduled")].status"#);
        let message = b.jsonpath("jobs.berth.dev/second", r#".status.conditions[?(@.type=="Scheduled")].message"#);
        if status == "False" && message.contains("insufficient memory") {
            Ok(message)
        } else {
            Err(format!("{status} {message}"))
        }
    });
    assert!(why.contains("need 64Mi"), "{why}");
    let first_phase = env.berth.jsonpath("placements.berth.dev/first-main-0-0", ".status.phase");
    assert_eq!(first_phase, "Running", "the second job must be refused while the first runs");

    // `berth logs -f` follows the running task to its end.
    let followed = env.berth.berth(&["logs", "first", "-f"]);
    assert!(String::from_utf8_lossy(&followed.stdout).contains("first done"), "{}", output_text(&followed));

    env.wait_for("first", "Complete");
    env.wait_for("second", "Complete");
    let first_end = env.berth.jsonpath("placements.berth.dev/first-main-0-0", ".status.finishedAt");
    let second_start = env.berth.jsonpath("placements.berth.dev/second-main-0-0", ".status.startedAt");
    assert!(second_start >= first_end, "second started at {second_start}, before first finished at {first_end}");
    let allocated = env.berth.jsonpath("agents.berth.dev/agent-1", ".status.allocated.memory");
    assert!(allocated == "0" || allocated.is_empty(), "claims left on the ledger after both finished: {allocated}");
}

#[test]
fn an_invalid_manifest_is_refused_naming_the_field_and_nothing_is_stored() {
    let env = Env::start("1", "512Mi");
    let bad = job("bad", &env.image(), "true", "100m", "12x");
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &bad);
    assert!(!out.status.success(), "an invalid memory quantity was accepted: {}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.taskGroups[0].resources.memory"), "kubectl said: {stderr}");

    let no_image = job("bad", "", "true", "100m", "32Mi").replace("      image: \n", "");
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &no_image);
    assert!(!out.status.success(), "a task group without an image was accepted: {}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.taskGroups[0].image"), "{}", output_text(&out));

    let get = env.berth.kubectl(&["get", "jobs.berth.dev", "bad"]);
    assert!(
        !get.status.success() && String::from_utf8_lossy(&get.stderr).contains("NotFound"),
        "{}",
        output_text(&get)
    );
}

#[test]
fn a_missing_image_is_reported_as_image_pull_failed() {
    let env = Env::start("1", "512Mi");
    let image = format!("{}/berth/does-not-exist:latest", env.registry.host());
    env.apply(&job("nope", &image, "true", "100m", "32Mi"));
    env.wait_for("nope", "Failed");
    let p = "placements.berth.dev/nope-main-0-0";
    assert_eq!(env.berth.jsonpath(p, ".status.reason"), "ImagePullFailed");
    let message = env.berth.jsonpath(p, ".status.message");
    assert!(
        message.contains("does-not-exist") && message.to_lowercase().contains("manifest unknown"),
        "the message should name the image and carry the registry's answer: {message}"
    );
}

#[test]
fn deleting_a_job_stops_its_container() {
    let mut env = Env::start("1", "512Mi");
    env.apply(&job("forever", &env.image(), "echo up; sleep 100000", "100m", "32Mi"));
    env.berth.wait("the task to run", WAIT, |b| running(b, "placements.berth.dev/forever-main-0-0"));
    let socket = env.containerd.socket().to_path_buf();
    let namespace = env.berth.containerd_namespace.clone();
    let containers = move || {
        let out = std::process::Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", &namespace, "containers", "ls", "-q"])
            .output()
            .expect("running ctr");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(containers().starts_with("berth-"), "no container in containerd: {:?}", containers());

    let out = env.berth.kubectl(&["delete", "jobs.berth.dev", "forever"]);
    assert!(out.status.success(), "{}", output_text(&out));
    // `sleep` ignores SIGTERM as PID 1: this also covers SIGKILL after the grace period.
    env.berth.wait("the container to be stopped and removed", WAIT, |_| {
        let left = containers();
        if left.is_empty() { Ok(()) } else { Err(format!("containers left: {left}")) }
    });
    // The agent finalizer holds each placement until its container is gone; then it goes.
    env.berth.wait("the placements to be gone", WAIT, |b| {
        let placements = b.kubectl(&["get", "placements.berth.dev", "-o", "name"]);
        let left = String::from_utf8_lossy(&placements.stdout).trim().to_string();
        if left.is_empty() { Ok(()) } else { Err(format!("placements left after the job was deleted: {left}")) }
    });
}

#[test]
fn the_parts_run_as_separate_processes() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let berth = Berth::parts(containerd.socket(), "1", "512Mi");
    let env = Env { berth, registry, containerd };
    env.apply(&job("apart", &env.image(), "echo from three processes", "100m", "32Mi"));
    env.wait_for("apart", "Complete");
    let logs = env.berth.berth(&["logs", "apart"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("from three processes"), "{}", output_text(&logs));
}
