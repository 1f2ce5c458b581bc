//! The agent's figures (`make bench-agent`; ignored by `cargo test`): its
//! resident memory idle and with 100 running containers, beside baselines
//! measured in the same run (a bare `sleep` process and containerd), and
//! the failover time — `kill -9` of the agent to its tasks `Lost` and
//! `Running` on another agent — against the controllers' agent TTL.
//! Targets: agent RSS ≤ 15 MiB idle and ≤ 40 MiB with 100 containers;
//! failover ≤ TTL + 2 s. Figures are printed, never asserted.
//! `make bench-agent` runs it on a release build (`BERTH_BIN`); a debug
//! build maps about twice the code (the `file` part of its RSS).

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::berth::{AgentSpec, Berth};
use berth_e2e::{Containerd, Registry, build_demo_image, output_text};

const TTL: u64 = 6;
const TASKS: u32 = 100;
const WAIT: Duration = Duration::from_secs(900);
const AGENTS: [AgentSpec; 2] =
    [AgentSpec { name: "bench-a", cpu: "8", memory: "8Gi" }, AgentSpec { name: "bench-b", cpu: "8", memory: "8Gi" }];

/// Resident memory of one process, in KiB, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug)]
struct Rss {
    /// `VmRSS`: all resident pages.
    total: u64,
    /// `VmHWM`: the peak of `total`.
    peak: u64,
    /// `RssAnon`: heap and stacks (what the process allocated).
    anon: u64,
    /// `RssFile`: mapped files, mostly the binary's own code.
    file: u64,
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (peak {}; anon {}, file {})", mib(self.total), mib(self.peak), mib(self.anon), mib(self.file))
    }
}

fn rss_kib(pid: u32) -> Rss {
    let [total, peak, anon, file] = berth_e2e::process::status_kib(pid, ["VmRSS", "VmHWM", "RssAnon", "RssFile"]);
    Rss { total, peak, anon, file }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn count(b: &Berth, agent: &str, phase: &str) -> usize {
    let out = b.kubectl(&[
        "get",
        "placements.berth.dev",
        "--field-selector",
        &format!("spec.agent={agent}"),
        "-o",
        "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
    ]);
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l == phase).count()
}

fn wait_count(b: &mut Berth, what: &str, agent: &str, phase: &str, n: usize) -> Duration {
    let start = Instant::now();
    b.wait(what, WAIT, |b| match count(b, agent, phase) {
        c if c >= n => Ok(()),
        c => Err(format!("{c}/{n} {phase} on {agent}")),
    });
    start.elapsed()
}

fn patch_unschedulable(b: &Berth, agent: &str, on: bool) {
    let patch = format!("{{\"spec\":{{\"unschedulable\":{on}}}}}");
    let out = b.kubectl(&["patch", &format!("agents.berth.dev/{agent}"), "--type", "merge", "-p", &patch]);
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
#[ignore = "a benchmark: run by `make bench-agent`"]
fn agent_memory_and_failover() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let image = format!("{}/berth/demo:latest", registry.host());
    let ttl = TTL.to_string();
    let mut berth = Berth::cluster_with(containerd.socket(), &AGENTS, &[], &["--agent-ttl-seconds", &ttl]);
    patch_unschedulable(&berth, "bench-b", true);

    let mut sleep = Command::new("sleep").arg("600").spawn().expect("starting sleep");
    // Idle: registered, Lease renewed, a few heartbeats in.
    let agent_pid = berth.pid("bench-a");
    let renewals = |b: &Berth| {
        let out = b.kubectl(&["get", "-n", "kube-node-lease", "leases/bench-a", "-o", "jsonpath={.spec.renewTime}"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut seen = std::collections::BTreeSet::new();
    berth.wait("bench-a to renew its Lease three times", Duration::from_secs(60), |b| {
        seen.insert(renewals(b));
        if seen.len() > 3 { Ok(()) } else { Err(format!("renewals seen: {seen:?}")) }
    });
    let idle = rss_kib(agent_pid);
    let bare = rss_kib(sleep.id());
    let containerd_idle = rss_kib(containerd.pid());

    let job = format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata:\n  name: bench\n  namespace: default\nspec:\n  taskGroups:\n    - name: main\n      instances: {TASKS}\n      image: {image}\n      command: [\"/bin/sh\", \"-c\"]\n      args: [\"sleep 3600\"]\n      resources:\n        cpu: 10m\n        memory: 8Mi\n"
    );
    let out = berth.kubectl_stdin(&["apply", "-f", "-"], &job);
    assert!(out.status.success(), "{}", output_text(&out));
    let started = wait_count(&mut berth, "every task Running on bench-a", "bench-a", "Running", TASKS as usize);
    let busy = rss_kib(agent_pid);
    let containerd_busy = rss_kib(containerd.pid());
    patch_unschedulable(&berth, "bench-b", false);

    berth.kill9("bench-a");
    let killed = Instant::now();
    wait_count(&mut berth, "bench-a's placements Lost", "bench-a", "Lost", TASKS as usize);
    let lost = killed.elapsed();
    wait_count(&mut berth, "a replacement Running on bench-b", "bench-b", "Running", 1);
    let first = killed.elapsed();
    wait_count(&mut berth, "every replacement Running", "bench-b", "Running", TASKS as usize);
    let all = killed.elapsed();
    berth.restart("bench-a");
    let restarted = Instant::now();
    let ns = format!("{}-bench-a", berth.containerd_namespace);
    berth.wait("bench-a to remove its Lost placements' containers", WAIT, |_| match containerd.containers(&ns).len() {
        0 => Ok(()),
        n => Err(format!("{n} containers left")),
    });
    let cleaned = restarted.elapsed();
    let _ = sleep.kill();
    let _ = sleep.wait();

    let binary = berth_e2e::berth::binary();
    println!("agent benchmark ({}; {TASKS} containers of `sleep 3600`)", binary.display());
    println!("  agent RSS idle (target <= 15 MiB):        {idle}");
    println!("  agent RSS, {TASKS} running (target <= 40 MiB): {busy}");
    println!("  baseline: bare `sleep`:                   {bare}");
    println!("  baseline: containerd idle:                {containerd_idle}");
    println!("  baseline: containerd, {TASKS} containers:    {containerd_busy}");
    println!("  {TASKS} tasks Pending -> Running:   {started:?}");
    println!("failover (agent TTL {TTL} s; target <= TTL + 2 s to Running elsewhere):");
    println!("  kill -9 -> all {TASKS} Lost:          {lost:?}");
    println!("  kill -9 -> first Running on B:  {first:?}");
    println!("  kill -9 -> all {TASKS} Running on B:  {all:?}");
    println!("  restart -> orphans removed:     {cleaned:?}");
}
