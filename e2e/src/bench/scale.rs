//! Scale runs: `berth apiserver`, `berth controllers` and `berth sim` with
//! N simulated agents (no containers), one Job of M tasks applied with
//! kubectl, timed from just before `kubectl apply` until every placement
//! has reached its agent (scheduled: claimed in a ledger, created, and seen
//! by the agent's watch) and until every one is `Running` (reported by the
//! agent through the API). The simulator's own counters (`--stats-file`)
//! say when, so the harness adds no load of its own: it never lists the
//! placements while a run is timed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::berth::Berth;
use crate::job::ShellJob;
use crate::poll::poll;

/// No simulated agent pulls it; any reference does.
const IMAGE: &str = "registry.invalid/berth/bench:latest";
/// Each task asks this much; agents are sized in multiples of it.
const TASK_CPU_MILLI: u64 = 10;
const TASK_MEMORY_MI: u64 = 16;
/// The most instances one task group may have (the Job schema's limit).
const MAX_INSTANCES: usize = 10_000;

/// How the Job is scheduled: by the shared-state claim path, or through
/// offers from the allocator (a `mode: Offers` builtin-batch Framework).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    SharedState,
    Offers,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::SharedState => "SharedState",
            Mode::Offers => "Offers",
        }
    }
}

/// One scale run's outcome.
#[derive(Clone, Debug)]
pub struct ScaleRun {
    pub agents: usize,
    pub tasks: usize,
    pub mode: Mode,
    /// Placements that reached their agents, and when the last of them did
    /// (seconds after `kubectl apply` began); `placed < tasks` means the
    /// run's deadline passed first, and the time is the deadline.
    pub placed: u64,
    pub placed_seconds: f64,
    /// Placements reported `Running`, and when the last of them was.
    pub running: u64,
    pub running_seconds: f64,
    /// Seconds to register every simulated agent (not part of the above).
    pub register_seconds: f64,
    /// Resident memory (KiB) at the end: current and peak.
    pub apiserver_rss: u64,
    pub apiserver_peak: u64,
    pub controllers_rss: u64,
    pub controllers_peak: u64,
    /// The API server's resident memory (KiB) before any agent registered.
    pub apiserver_idle_rss: u64,
    /// Bytes of the embedded store's file at the end.
    pub store_bytes: u64,
    /// Objects in the store at the end: agents, their Leases, the
    /// placements that reached their agents, the Jobs.
    pub objects: u64,
    /// CPU seconds (user + system) each process spent from `kubectl apply`
    /// to the end of the run: where the time went.
    pub apiserver_cpu: f64,
    pub controllers_cpu: f64,
    pub sim_cpu: f64,
}

impl ScaleRun {
    /// Placements per second from apply until the last one reached its agent.
    pub fn placements_per_second(&self) -> f64 {
        self.placed as f64 / self.placed_seconds.max(1e-3)
    }

    pub fn all_placed(&self) -> bool {
        self.placed as usize >= self.tasks
    }

    pub fn all_running(&self) -> bool {
        self.running as usize >= self.tasks
    }
}

/// The simulator's counters, as `berth sim --stats-file` writes them.
#[derive(Clone, Copy, Debug, Default)]
struct SimStats {
    registered: u64,
    seen: u64,
    running: u64,
    errors: u64,
    last_seen_at_ms: u64,
    last_running_at_ms: u64,
}

fn read_stats(path: &Path) -> Result<SimStats, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(SimStats {
        registered: n("registered"),
        seen: n("seen"),
        running: n("running"),
        errors: n("errors"),
        last_seen_at_ms: n("lastSeenAt"),
        last_running_at_ms: n("lastRunningAt"),
    })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Resident memory of `pid` in KiB: (`VmRSS`, `VmHWM`).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let [rss, peak] = crate::process::status_kib(pid, ["VmRSS", "VmHWM"]);
    (rss, peak)
}

/// CPU seconds (user + system) process `pid` has used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start at `state`.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The Jobs (and, for `Offers`, their Framework) of a run, as YAML: as
/// many Jobs as it takes, each of at most [`MAX_INSTANCES`] (a task
/// group's limit), named `scale-0`, `scale-1`, …
fn manifests(tasks: usize, mode: Mode) -> String {
    let mut docs = Vec::new();
    if mode == Mode::Offers {
        docs.push(
            "apiVersion: berth.dev/v1alpha1\nkind: Framework\nmetadata:\n  name: offers\n  namespace: default\n\
             spec:\n  mode: Offers\n  scheduler: builtin-batch\n"
                .to_string(),
        );
    }
    let (mut left, mut i) = (tasks, 0);
    while left > 0 {
        let n = left.min(MAX_INSTANCES);
        let job = ShellJob::new(&format!("scale-{i}"), IMAGE, "true")
            .instances(n as u32)
            .resources(&format!("{TASK_CPU_MILLI}m"), &format!("{TASK_MEMORY_MI}Mi"));
        docs.push(match mode {
            Mode::SharedState => job.yaml(),
            Mode::Offers => job.spec_field("framework: offers").yaml(),
        });
        left -= n;
        i += 1;
    }
    docs.join("---\n")
}

/// Runs `tasks` tasks on `agents` simulated agents in `mode`, each task
/// running until the end; gives up waiting after `deadline` (then the
/// figures say how far it got).
pub fn run(agents: usize, tasks: usize, mode: Mode, deadline: Duration) -> ScaleRun {
    // Room for a quarter more than an even share on every agent.
    let per_agent = (tasks.div_ceil(agents.max(1)) as u64 * 5).div_ceil(4).max(1);
    let cpu = format!("{}m", per_agent * TASK_CPU_MILLI);
    let memory = format!("{}Mi", per_agent * TASK_MEMORY_MI);
    let stats_dir = tempfile::tempdir().expect("tempdir");
    let stats: PathBuf = stats_dir.path().join("sim.json");
    let stats_arg = stats.display().to_string();
    let agents_arg = agents.to_string();
    let sim = [
        "--agents",
        &agents_arg,
        "--cpu",
        &cpu,
        "--memory",
        &memory,
        "--run-forever",
        // Kubernetes' node defaults: a Lease renewed every 10 s, an agent
        // judged lost after 40 s without one.
        "--heartbeat-seconds",
        "10",
        "--progress-seconds",
        "5",
        "--stats-file",
        &stats_arg,
    ];
    let mut berth = Berth::simulated(&sim, &["--agent-ttl-seconds", "40"]);
    let apiserver_idle_rss = rss_kib(berth.pid("apiserver")).0;
    let started = Instant::now();
    berth.wait("every simulated agent registered", deadline, |_| {
        let s = read_stats(&stats)?;
        if s.registered as usize >= agents { Ok(()) } else { Err(format!("{s:?}")) }
    });
    let register_seconds = started.elapsed().as_secs_f64();

    let yaml = manifests(tasks, mode);
    let pids = [berth.pid("apiserver"), berth.pid("controllers"), berth.pid("sim")];
    let cpu_before = pids.map(cpu_seconds);
    let applied_ms = unix_ms();
    let applied = Instant::now();
    berth.apply(&yaml);
    let last = poll(deadline, || {
        let s = read_stats(&stats)?;
        if s.running as usize >= tasks { Ok(s) } else { Err(format!("{s:?}")) }
    });
    let s = last.clone().or_else(|_| read_stats(&stats)).unwrap_or_default();
    let cut = applied.elapsed().as_secs_f64();
    let since = |at_ms: u64, done: bool| match done {
        true => at_ms.saturating_sub(applied_ms) as f64 / 1000.0,
        false => cut,
    };
    let cpu = [0, 1, 2].map(|i| cpu_seconds(pids[i]) - cpu_before[i]);
    let (apiserver_rss, apiserver_peak) = rss_kib(berth.pid("apiserver"));
    let (controllers_rss, controllers_peak) = rss_kib(berth.pid("controllers"));
    let store_bytes =
        std::fs::metadata(berth.dir.path().join("apiserver").join("store.redb")).map(|m| m.len()).unwrap_or(0);
    if let Err(seen) = &last {
        eprintln!("scale run {agents} agents × {tasks} tasks ({}) cut at {cut:.0} s: {seen}", mode.name());
    }
    if s.errors > 0 {
        eprintln!("scale run {agents} agents × {tasks} tasks ({}): {} failed writes", mode.name(), s.errors);
    }
    ScaleRun {
        agents,
        tasks,
        mode,
        placed: s.seen,
        placed_seconds: since(s.last_seen_at_ms, s.seen as usize >= tasks),
        running: s.running,
        running_seconds: since(s.last_running_at_ms, s.running as usize >= tasks),
        register_seconds,
        apiserver_rss,
        apiserver_peak,
        controllers_rss,
        controllers_peak,
        apiserver_idle_rss,
        store_bytes,
        objects: 2 * agents as u64 + s.seen + tasks.div_ceil(MAX_INSTANCES) as u64,
        apiserver_cpu: cpu[0],
        controllers_cpu: cpu[1],
        sim_cpu: cpu[2],
    }
}
