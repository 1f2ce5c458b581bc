//! Node loss, end to end (Mesos' agent removal, Nomad's lost allocations):
//! `berth apiserver`, `berth controllers` (agent TTL [`TTL`] s) and two
//! `berth agent` processes on one containerd with runc. A Job's tasks run on
//! agent A; A is killed with SIGKILL; within the TTL and a few seconds A is
//! NotReady, its placements `Lost` and their next attempts `Running` on B.
//! A's containers outlive A (nothing stops them while it is dead); when A
//! starts again it kills them and reports nothing more for them. Then the
//! same with a partition: agent A runs in a network namespace whose link is
//! cut and healed while A keeps running.

use std::time::{Duration, Instant};

use berth_api::placement::REASON_AGENT_LOST;
use berth_api::{Agent, Phase, Placement};
use berth_e2e::berth::{AgentSpec, Berth, ClusterOptions};
use berth_e2e::netns::Netns;
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

/// The controllers' `--agent-ttl-seconds` in these tests.
const TTL: u64 = 6;
const WAIT: Duration = Duration::from_secs(120);
const AGENTS: [AgentSpec; 2] = [
    AgentSpec { name: "agent-a", cpu: "1", memory: "512Mi" },
    AgentSpec { name: "agent-b", cpu: "1", memory: "512Mi" },
];

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    _registry: Registry,
    containerd: Containerd,
    /// Agent A's network namespace, in the partition test.
    netns: Option<Netns>,
    image: String,
}

impl Env {
    fn start() -> Env {
        Env::start_with(None, &[])
    }

    /// With `netns`: the API server listens on its server address and agent A runs inside it.
    fn start_with(netns: Option<Netns>, agent_a: &[&str]) -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let ttl = TTL.to_string();
        let controllers = ["--agent-ttl-seconds", ttl.as_str()];
        let berth = match &netns {
            None => Berth::cluster_with(containerd.socket(), &AGENTS, &[], &controllers),
            Some(ns) => {
                let listen = format!("{}:0", ns.server_ip());
                let options = ClusterOptions {
                    listen: &listen,
                    apiserver: &["--tls-san", ns.server_ip()],
                    controllers: &controllers,
                    netns: &[("agent-a", ns.name())],
                    agent_flags: &[("agent-a", agent_a)],
                };
                Berth::cluster_opts(containerd.socket(), &AGENTS, &options)
            }
        };
        let image = format!("{}/berth/demo:latest", registry.host());
        Env { berth, _registry: registry, containerd, netns, image }
    }

    fn kubectl_ok(&self, args: &[&str]) {
        let out = self.berth.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", output_text(&out));
    }

    fn set_unschedulable(&self, agent: &str, on: bool) {
        let patch = format!("{{\"spec\":{{\"unschedulable\":{on}}}}}");
        self.kubectl_ok(&["patch", &format!("agents.berth.dev/{agent}"), "--type", "merge", "-p", &patch]);
    }

    /// The containerd namespace of agent `name`'s containers.
    fn namespace(&self, agent: &str) -> String {
        format!("{}-{agent}", self.berth.containerd_namespace)
    }
}

fn list<T: serde::de::DeserializeOwned>(berth: &Berth, plural: &str) -> Result<Vec<T>, String> {
    #[derive(serde::Deserialize)]
    struct List<T> {
        items: Vec<T>,
    }
    let out = berth.kubectl(&["get", "--raw", &format!("/apis/berth.dev/v1alpha1/{plural}")]);
    if !out.status.success() {
        return Err(output_text(&out));
    }
    serde_json::from_slice::<List<T>>(&out.stdout).map(|l| l.items).map_err(|e| e.to_string())
}

fn placement(ps: &[Placement], name: &str) -> Option<Placement> {
    ps.iter().find(|p| p.metadata.name.as_deref() == Some(name)).cloned()
}

fn phase(p: &Placement) -> Phase {
    p.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

fn summary(ps: &[Placement]) -> String {
    ps.iter()
        .map(|p| format!("{}@{}={:?}", p.metadata.name.as_deref().unwrap_or("?"), p.spec.agent, phase(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn job(name: &str, image: &str, instances: u32) -> String {
    ShellJob::new(name, image, "sleep 3600").instances(instances).yaml()
}

/// Invariant 2 per the API: attempt N ended (Lost) no later than attempt
/// N+1 started, for every instance that has both.
fn assert_attempts_do_not_overlap(ps: &[Placement]) {
    for p in ps.iter().filter(|p| p.spec.attempt > 0) {
        let prev = format!("{}-{}-{}-{}", p.spec.job, p.spec.task_group, p.spec.instance, p.spec.attempt - 1);
        let q = placement(ps, &prev).unwrap_or_else(|| panic!("{prev} is missing: {}", summary(ps)));
        let ended = q.status.as_ref().and_then(|s| s.finished_at.clone()).expect("a Lost placement has finishedAt");
        let started = p.status.as_ref().and_then(|s| s.started_at.clone()).expect("a Running placement has startedAt");
        let (ended, started): (jiff::Timestamp, jiff::Timestamp) = (ended.parse().unwrap(), started.parse().unwrap());
        assert!(ended <= started, "{prev} ended at {ended} after its next attempt started at {started}");
    }
}

#[test]
fn a_killed_agents_tasks_are_lost_rerun_elsewhere_and_its_containers_killed_when_it_returns() {
    let mut env = Env::start();
    env.set_unschedulable("agent-b", true);
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &job("lost", &env.image, 2));
    assert!(out.status.success(), "kubectl apply: {}", output_text(&out));
    let first = ["lost-main-0-0", "lost-main-1-0"];
    env.berth.wait("both tasks running on agent-a", WAIT, |b| {
        let ps: Vec<Placement> = list(b, "placements")?;
        let ok = first.iter().all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Running));
        if ok { Ok(()) } else { Err(summary(&ps)) }
    });
    env.set_unschedulable("agent-b", false);
    let ns_a = env.namespace("agent-a");
    assert_eq!(env.containerd.running_tasks(&ns_a).len(), 2, "agent-a runs both containers");

    env.berth.kill9("agent-a");
    let killed = Instant::now();
    let ps = env.berth.wait("agent-a's tasks Lost and rerun on agent-b", WAIT, |b| {
        let ps: Vec<Placement> = list(b, "placements")?;
        let lost = first.iter().all(|n| {
            placement(&ps, n).is_some_and(|p| {
                phase(&p) == Phase::Lost
                    && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some(REASON_AGENT_LOST)
            })
        });
        let rerun = ["lost-main-0-1", "lost-main-1-1"]
            .iter()
            .all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Running && p.spec.agent == "agent-b"));
        if lost && rerun { Ok(ps) } else { Err(summary(&ps)) }
    });
    let failover = killed.elapsed();
    println!("failover: kill -9 to every task Running on agent-b in {failover:?} (agent TTL {TTL} s)");
    assert!(failover < Duration::from_secs(TTL + 30), "failover took {failover:?}");
    assert_attempts_do_not_overlap(&ps);

    let agents: Vec<Agent> = list(&env.berth, "agents").unwrap();
    let a = agents.iter().find(|a| a.metadata.name.as_deref() == Some("agent-a")).unwrap();
    let ready = a.status.as_ref().and_then(|s| berth_api::condition::find(&s.conditions, "Ready").cloned());
    assert!(ready.as_ref().is_some_and(|r| r.status == "False" && r.reason == "AgentLost"), "agent-a: {ready:?}");
    assert_eq!(env.berth.jsonpath("jobs.berth.dev/lost", ".status.tasks.failed"), "0");
    assert_eq!(env.berth.jsonpath("jobs.berth.dev/lost", ".status.tasks.running"), "2");
    // Nothing stopped A's containers while A was dead.
    assert_eq!(env.containerd.running_tasks(&ns_a).len(), 2, "agent-a's containers outlive agent-a");

    let before: Vec<Option<String>> =
        first.iter().map(|n| placement(&ps, n).unwrap().metadata.resource_version.clone()).collect();
    env.berth.restart("agent-a");
    env.berth.wait("agent-a to kill and remove its Lost placements' containers", WAIT, |b| {
        let left = env.containerd.containers(&ns_a);
        let ready = b.jsonpath("agents.berth.dev/agent-a", r#".status.conditions[?(@.type=="Ready")].status"#);
        if left.is_empty() && ready == "True" { Ok(()) } else { Err(format!("containers {left:?}, Ready={ready}")) }
    });
    let ps: Vec<Placement> = list(&env.berth, "placements").unwrap();
    let after: Vec<Option<String>> =
        first.iter().map(|n| placement(&ps, n).unwrap().metadata.resource_version.clone()).collect();
    assert_eq!(before, after, "agent-a reported on placements it no longer runs: {}", summary(&ps));
    assert!(ps.iter().filter(|p| p.spec.attempt == 1).all(|p| phase(p) == Phase::Running), "{}", summary(&ps));
}

#[test]
fn a_partitioned_agents_tasks_are_lost_rerun_elsewhere_and_killed_when_the_partition_heals() {
    partition("a", &[]);
}

/// With `--fence-after-seconds` below the TTL, the cut-off agent stops its
/// containers itself: by the time its tasks are Lost and rerun elsewhere,
/// none of them still runs on it, so no task ever runs twice at once.
#[test]
fn a_fencing_agent_cut_off_stops_its_tasks_before_they_are_rerun_elsewhere() {
    partition("f", &["--fence-after-seconds", FENCE]);
}

/// Agent A's fence: above two heartbeats (2 s each), below the TTL.
const FENCE: &str = "4";

/// Runs agent A in network namespace `tag` with `agent_a` flags, cuts it off and heals it.
fn partition(tag: &str, agent_a: &[&str]) {
    let fencing = !agent_a.is_empty();
    let mut env = Env::start_with(Some(Netns::create(tag)), agent_a);
    let ns_a = env.namespace("agent-a");
    // Inside its namespace agent A cannot reach the registry on 127.0.0.1: give it the image.
    env.containerd.pull(&ns_a, &env.image);
    env.set_unschedulable("agent-b", true);
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &job("split", &env.image, 2));
    assert!(out.status.success(), "kubectl apply: {}", output_text(&out));
    let first = ["split-main-0-0", "split-main-1-0"];
    env.berth.wait("both tasks running on agent-a", WAIT, |b| {
        let ps: Vec<Placement> = list(b, "placements")?;
        let ok = first.iter().all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Running));
        if ok { Ok(()) } else { Err(summary(&ps)) }
    });
    env.set_unschedulable("agent-b", false);

    env.netns.as_ref().unwrap().cut();
    let cut = Instant::now();
    let ps = env.berth.wait("agent-a's tasks Lost and rerun on agent-b", WAIT, |b| {
        let ps: Vec<Placement> = list(b, "placements")?;
        let lost = first.iter().all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Lost));
        let rerun = ["split-main-0-1", "split-main-1-1"]
            .iter()
            .all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Running && p.spec.agent == "agent-b"));
        if lost && rerun { Ok(ps) } else { Err(summary(&ps)) }
    });
    println!("partition: cut to every task Running on agent-b in {:?} (agent TTL {TTL} s)", cut.elapsed());
    assert_attempts_do_not_overlap(&ps);
    // Physically both attempts run now: A is alive but cannot hear that its tasks were replaced.
    let stranded = env.containerd.running_tasks(&ns_a);
    println!("during the partition agent-a still runs {} container(s) of Lost placements", stranded.len());
    if fencing {
        assert_eq!(stranded, Vec::<String>::new(), "a fencing agent stopped its tasks before they were rerun");
    }

    env.netns.as_ref().unwrap().heal();
    env.berth.wait("agent-a to kill and remove its Lost placements' containers", WAIT, |b| {
        let left = env.containerd.containers(&ns_a);
        let ready = b.jsonpath("agents.berth.dev/agent-a", r#".status.conditions[?(@.type=="Ready")].status"#);
        if left.is_empty() && ready == "True" { Ok(()) } else { Err(format!("containers {left:?}, Ready={ready}")) }
    });
    let ps: Vec<Placement> = list(&env.berth, "placements").unwrap();
    assert!(first.iter().all(|n| placement(&ps, n).is_some_and(|p| phase(&p) == Phase::Lost)), "{}", summary(&ps));
    assert!(ps.iter().filter(|p| p.spec.attempt == 1).all(|p| phase(p) == Phase::Running), "{}", summary(&ps));
    assert_attempts_do_not_overlap(&ps);
    assert_eq!(env.berth.jsonpath("jobs.berth.dev/split", ".status.tasks.failed"), "0");
}
