//! Two scheduling models on the same machines, end to end: the external
//! Python framework of `examples/python-scheduler/` runs tasks through
//! offers in `team-a` while a builtin-batch Job claims shared state directly
//! in `team-b`, on two agents (`berth apiserver`, `berth controllers` and two
//! `berth agent` processes on one containerd with runc). On every poll no
//! agent is overcommitted and every outstanding offer is held. Then a second
//! framework, whose task exits 3, ends non-zero saying so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_api::invariants::{overcommits, unheld_offers};
use berth_api::{Agent, ClaimKind, Offer, OfferState, Phase, Placement};
use berth_e2e::berth::{AgentSpec, Berth};
use berth_e2e::{Containerd, Registry, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(240);
const TASKS: usize = 4;

#[derive(serde::Deserialize)]
struct List<T> {
    items: Vec<T>,
    metadata: ListMeta,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
}

/// A list of `berth.dev` `plural` (all namespaces) read with the admin
/// kubeconfig, at revision `at` when given, and the revision it was read at.
fn list_at<T: serde::de::DeserializeOwned>(
    berth: &Berth,
    plural: &str,
    at: Option<&str>,
) -> Result<(Vec<T>, String), String> {
    let mut path = format!("/apis/berth.dev/v1alpha1/{plural}");
    if let Some(rv) = at {
        path.push_str(&format!("?resourceVersion={rv}&resourceVersionMatch=Exact"));
    }
    let out = berth.kubectl(&["get", "--raw", &path]);
    if !out.status.success() {
        return Err(format!("GET {path}: {}", output_text(&out)));
    }
    let list: List<T> = serde_json::from_slice(&out.stdout).map_err(|e| format!("{plural}: {e}"))?;
    Ok((list.items, list.metadata.resource_version))
}

fn list<T: serde::de::DeserializeOwned>(berth: &Berth, plural: &str) -> Result<Vec<T>, String> {
    list_at(berth, plural, None).map(|(items, _)| items)
}

/// Invariants 1 and 3 on one revision of the store: offers and agents read
/// at the same resourceVersion, so an offer closed and its hold released
/// between two reads is not mistaken for an offer without its hold.
fn violations(berth: &Berth) -> Result<Vec<String>, String> {
    let (offers, rv) = list_at::<Offer>(berth, "offers", None)?;
    let (agents, _) = list_at::<Agent>(berth, "agents", Some(&rv))?;
    Ok([overcommits(&agents), unheld_offers(&agents, &offers)].concat())
}

/// The Python scheduler as a child process, its output in `log`.
struct Scheduler {
    child: Child,
    log: PathBuf,
}

impl Scheduler {
    /// Runs framework `team-a/NAME` with the kubeconfig `berth apiserver --frameworks` wrote for it.
    fn start(berth: &Berth, name: &str, image: &str, tasks: &[String]) -> Scheduler {
        let python = berth_e2e::kubectl::venv().join("bin/python");
        assert!(python.is_file(), "{} is missing: run `make deps`", python.display());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-scheduler/scheduler.py");
        let dir = berth.dir.path();
        let log = dir.join(format!("scheduler-{name}.log"));
        let out = std::fs::File::create(&log).expect("scheduler log");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg("--kubeconfig")
            .arg(berth.kubeconfig.with_file_name(format!("framework-team-a-{name}.kubeconfig")))
            .args(["--namespace", "team-a", "--framework", name, "--image", image])
            .args(["--cpu", "500m", "--memory", "256Mi", "--deadline-seconds", "200"]);
        for task in tasks {
            cmd.args(["--task", task]);
        }
        let child = cmd
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("starting the scheduler");
        Scheduler { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        berth_e2e::terminate(&mut self.child, Duration::from_secs(5));
    }
}

fn job(image: &str) -> String {
    format!(
        r#"apiVersion: berth.dev/v1alpha1
kind: Job
metadata: {{name: batch, namespace: team-b}}
spec:
  strategy: spread
  taskGroups:
    - name: main
      instances: {TASKS}
      image: {image}
      command: ["/bin/sh", "-c", "echo batch task; sleep 2"]
      resources: {{cpu: 500m, memory: 256Mi}}
"#
    )
}

fn job_phase(berth: &Berth) -> String {
    let out = berth.kubectl(&["get", "-n", "team-b", "jobs.berth.dev/batch", "-o", "jsonpath={.status.phase}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn phase(p: &Placement) -> (Phase, String) {
    let st = p.status.clone().unwrap_or_default();
    (st.phase, st.reason.unwrap_or_default())
}

#[test]
fn python_offers_framework_and_shared_state_job_share_two_agents() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let image = format!("{}/berth/demo:latest", registry.host());
    let agents = [
        AgentSpec { name: "agent-1", cpu: "2", memory: "2Gi" },
        AgentSpec { name: "agent-2", cpu: "2", memory: "2Gi" },
    ];
    let mut berth = Berth::cluster(containerd.socket(), &agents, &["--frameworks", "team-a/py,team-a/failing"]);
    for ns in ["team-a", "team-b"] {
        let out = berth.kubectl(&["create", "namespace", ns]);
        assert!(out.status.success(), "{}", output_text(&out));
    }

    // Both workloads at once: the scheduler registers its framework and answers offers; the Job claims.
    let tasks: Vec<String> = (0..TASKS).map(|i| format!("echo task {i} says hello; sleep 2")).collect();
    let mut scheduler = Scheduler::start(&berth, "py", &image, &tasks);
    let out = berth.kubectl_stdin(&["apply", "-f", "-"], &job(&image));
    assert!(out.status.success(), "{}", output_text(&out));

    let mut broken = Vec::new();
    let outcome = berth_e2e::poll::poll(WAIT, || {
        broken.extend(violations(&berth)?);
        let exited = scheduler.child.try_wait().map_err(|e| e.to_string())?;
        let job = job_phase(&berth);
        match exited {
            Some(status) if matches!(job.as_str(), "Complete" | "Failed") || !status.success() => Ok((status, job)),
            _ => Err(format!("scheduler exited: {exited:?}; job phase {job:?}")),
        }
    });
    let report = |what: &str| {
        let yaml =
            berth.kubectl(&["get", "frameworks.berth.dev,offers.berth.dev,placements.berth.dev", "-A", "-o", "yaml"]);
        format!(
            "{what}\n--- scheduler ---\n{}\n--- objects ---\n{}\n--- berth ---\n{}",
            scheduler.output(),
            String::from_utf8_lossy(&yaml.stdout),
            berth.log_tail()
        )
    };
    let (status, job_phase) = outcome.unwrap_or_else(|last| panic!("{}", report(&format!("timed out: {last}"))));
    assert!(broken.is_empty(), "{}", report(&format!("invariants broken: {broken:?}")));
    assert!(status.success(), "{}", report(&format!("the scheduler exited {status}")));
    assert_eq!(job_phase, "Complete", "{}", report("the Job did not complete"));
    let complete =
        berth.kubectl(&["wait", "--for=condition=Complete", "--timeout=20s", "-n", "team-b", "jobs.berth.dev/batch"]);
    assert!(complete.status.success(), "{}", report(&output_text(&complete)));

    // Every task Succeeded on a placement that named an offer the allocator then marked Accepted;
    // any other placement was refused by Berth (and the task placed again).
    let placements: Vec<Placement> = list(&berth, "placements").expect("placements");
    let offers: Vec<Offer> = list(&berth, "offers").expect("offers");
    let ns = |p: &Placement| p.metadata.namespace.clone().unwrap_or_default();
    let python: Vec<&Placement> = placements.iter().filter(|p| ns(p) == "team-a").collect();
    let mut done = BTreeSet::new();
    for p in &python {
        let name = p.metadata.name.clone().unwrap_or_default();
        let offer = p.spec.offer.clone().unwrap_or_else(|| panic!("{}", report(&format!("{name} names no offer"))));
        match phase(p) {
            (Phase::Succeeded, _) => {
                let accepted = offers.iter().any(|o| {
                    o.metadata.name.as_deref() == Some(offer.as_str())
                        && o.status.as_ref().and_then(|s| s.state) == Some(OfferState::Accepted)
                });
                assert!(accepted, "{}", report(&format!("{name} ran on offer {offer}, which is not Accepted")));
                assert!(done.insert(p.spec.instance), "{}", report(&format!("task {} ran twice", p.spec.instance)));
            }
            (Phase::Failed, reason) if reason == "OfferRefused" => {}
            other => panic!("{}", report(&format!("{name} ended {other:?}"))),
        }
    }
    assert_eq!(done, (0..TASKS as u32).collect(), "{}", report("not every task succeeded"));

    // Between the two workloads, both agents ran something.
    let ran: BTreeSet<&str> =
        placements.iter().filter(|p| phase(p).0 == Phase::Succeeded).map(|p| p.spec.agent.as_str()).collect();
    assert_eq!(ran, BTreeSet::from(["agent-1", "agent-2"]), "{}", report("not both agents ran tasks"));

    // The tasks' output is served by the agents that ran them.
    let logs = berth.berth(&["logs", "py", "-n", "team-a"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    for i in 0..TASKS {
        assert!(text.contains(&format!("task {i} says hello")), "berth logs: {}", output_text(&logs));
    }
    let table = berth.kubectl(&["get", "placements.berth.dev", "-A", "-o", "wide"]);
    eprintln!("--- scheduler ---\n{}\n{}", scheduler.output(), String::from_utf8_lossy(&table.stdout));

    // A task failing for a reason of its own ends its scheduler, non-zero, saying which and why.
    let mut failing = Scheduler::start(&berth, "failing", &image, &["echo about to fail; exit 3".to_string()]);
    let status = berth.wait("the failing scheduler to exit", WAIT, |_| match failing.child.try_wait() {
        Ok(Some(status)) => Ok(status),
        other => Err(format!("{other:?}: {}", failing.output())),
    });
    let said = failing.output();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(said.contains("FAILED: task 0 Failed") && said.contains("exit 3"), "{said}");
    let suppressed =
        berth.kubectl(&["get", "-n", "team-a", "frameworks.berth.dev/failing", "-o", "jsonpath={.spec.suppressed}"]);
    assert_eq!(String::from_utf8_lossy(&suppressed.stdout), "true", "a stopped scheduler wants no offers");

    berth.wait("every placement's claim released", Duration::from_secs(30), |b| {
        let agents: Vec<Agent> = list(b, "agents")?;
        let claims = agents.iter().flat_map(|a| a.status.iter().flat_map(|s| &s.claims));
        let left: Vec<&str> = claims.filter(|c| c.kind == ClaimKind::Placement).map(|c| c.owner.as_str()).collect();
        if left.is_empty() { Ok(()) } else { Err(format!("claims left: {left:?}")) }
    });
}
