//! `make bench`: Berth's headline figures, each beside a baseline measured
//! in the same run on the same machine, so that the ratios mean something
//! wherever they are run (docs/performance.md):
//!
//! - the embedded store's raw durable write rate (`berth check store`), the
//!   baseline of every rate and time through the API;
//! - placements per second for a Job of 100,000 tasks on 100, 1,000 and
//!   10,000 simulated agents, for a `SharedState` and an `Offers`
//!   framework, and how the cost per placement grows from 100 to 10,000
//!   agents;
//! - the API server's and the controllers' memory at the end of the
//!   10,000-agent `SharedState` run (100,000 placements if it finished);
//! - the time from `kubectl apply` of 10,000 tasks to all `Running`;
//! - the launch overhead: `kubectl apply` of a one-task Job until its
//!   container runs, p50 and p99, minus a bare `ctr run` of the same image.
//!
//! `--quick` runs the same steps small (for CI: it shows the harness works,
//! and its figures are not worth quoting).
//!
//! Layout: `report` (figures, table, JSON), `scale` (the simulated-agent
//! runs), `launch` (launches through a real agent and containerd).

pub mod launch;
pub mod report;
pub mod scale;

use std::time::{Duration, Instant};

use report::{Figure, Target, number};
use scale::{Mode, ScaleRun};
use serde_json::{Value, json};

/// How big a bench run is.
#[derive(Clone, Debug)]
pub struct Options {
    /// Agents of the placement-rate runs (the first and last give the growth).
    pub agents: Vec<usize>,
    /// Tasks of each placement-rate run.
    pub tasks: usize,
    /// Agents and tasks of the apply-to-Running run.
    pub running: (usize, usize),
    /// How long a scale run may take before it is cut (and says so).
    pub deadline: Duration,
    /// The scheduling modes of the placement-rate runs.
    pub modes: Vec<Mode>,
    /// Launches timed on each side (Berth, bare `ctr run`); 0 skips them.
    pub launches: usize,
    pub quick: bool,
}

impl Options {
    /// The sizes: about fourteen minutes on two cores.
    pub fn full() -> Options {
        Options {
            agents: vec![100, 1_000, 10_000],
            tasks: 100_000,
            running: (1_000, 10_000),
            deadline: Duration::from_secs(90),
            modes: vec![Mode::SharedState, Mode::Offers],
            launches: 50,
            quick: false,
        }
    }

    /// Small sizes: the harness works, in well under two minutes.
    pub fn quick() -> Options {
        Options {
            agents: vec![10, 50],
            tasks: 300,
            running: (20, 200),
            deadline: Duration::from_secs(60),
            modes: vec![Mode::SharedState, Mode::Offers],
            launches: 3,
            quick: true,
        }
    }
}

/// The embedded store's durable writes per second on the disk of the
/// temporary directory, from `berth check store`.
pub fn store_write_rate(quick: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = if quick { "1280" } else { "12800" };
    let out = std::process::Command::new(crate::berth::binary())
        .args(["check", "store", "--writers", "64", "--writes", writes, "-o", "json", "--dir"])
        .arg(dir.path())
        .output()
        .expect("running berth check store");
    assert!(out.status.success(), "berth check store: {}", crate::output_text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("berth check store -o json");
    v["writesPerSecond"].as_f64().expect("writesPerSecond")
}

/// Runs every measurement `options` ask for; returns the figures and the
/// whole record (figures, raw runs, machine) as JSON.
pub fn run(options: &Options) -> (Vec<Figure>, Value) {
    let began = Instant::now();
    let store = store_write_rate(options.quick);
    eprintln!("store: {} durable writes/s", number(store));
    let mut figures = vec![Figure::new("store: durable writes/s (64 writers)", store, "/s")];
    let mut launches = serde_json::Value::Null;
    if options.launches > 0 {
        let l = launch::measure(options.launches);
        figures.extend(launch_figures(&l));
        let ms = |d: &[Duration]| d.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>();
        launches = json!({"berthMs": ms(&l.berth), "ctrMs": ms(&l.ctr)});
    }
    let mut runs: Vec<ScaleRun> = Vec::new();
    for &mode in &options.modes {
        for &agents in &options.agents {
            let r = scale::run(agents, options.tasks, mode, options.deadline);
            eprintln!("{}", describe(&r));
            figures.push(placement_rate(&r, store, options));
            runs.push(r);
        }
        let of = |agents: usize| runs.iter().find(|r| r.mode == mode && r.agents == agents);
        let (first, last) = (options.agents[0], options.agents[options.agents.len() - 1]);
        if let (Some(a), Some(b)) = (of(first), of(last)) {
            // Nothing placed at all: at most one placement in the whole run,
            // so the growth is at least this.
            let slow = b.placements_per_second().max(1.0 / b.placed_seconds.max(1e-3));
            let mut f = Figure::new(
                format!("{}: cost per placement, {last} vs {first} agents", mode.name()),
                a.placements_per_second() / slow,
                "x",
            )
            .target(Target::AtMost(1.5));
            if b.placed == 0 {
                f = f.note(format!("at least: nothing was placed at {last} agents"));
            }
            figures.push(f);
        }
    }
    if let Some(big) =
        runs.iter().find(|r| r.mode == Mode::SharedState && r.agents == options.agents[options.agents.len() - 1])
    {
        figures.extend(memory(big));
    }
    let (agents, tasks) = options.running;
    if agents == 0 {
        return finish(options, began, figures, runs, launches);
    }
    let r = scale::run(agents, tasks, Mode::SharedState, options.deadline);
    eprintln!("{}", describe(&r));
    // The least the store needs for them: one create and one status write each.
    let floor = 2.0 * tasks as f64 / store;
    let mut f = Figure::new(format!("apply -> all Running: {tasks} tasks, {agents} agents"), r.running_seconds, "s")
        .baseline("2 durable writes per task at the store's rate", floor);
    if !r.all_running() {
        f = f.note(format!("cut at the deadline with {} of {tasks} Running", r.running));
    }
    figures.push(f);
    runs.push(r);
    finish(options, began, figures, runs, launches)
}

/// The figures and the whole record.
fn finish(
    options: &Options,
    began: Instant,
    figures: Vec<Figure>,
    runs: Vec<ScaleRun>,
    launches: Value,
) -> (Vec<Figure>, Value) {
    let record = json!({
        "quick": options.quick,
        "binary": crate::berth::binary().display().to_string(),
        "machine": machine(),
        "seconds": began.elapsed().as_secs_f64(),
        "figures": figures.iter().map(Figure::json).collect::<Vec<_>>(),
        "scaleRuns": runs.iter().map(run_json).collect::<Vec<_>>(),
        "launches": launches,
    });
    (figures, record)
}

/// Launch p50 and p99 (Berth, with kubectl) beside a bare `ctr run`, and
/// the overhead: their difference at each percentile.
fn launch_figures(l: &launch::Launch) -> Vec<Figure> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let runs = l.berth.len();
    let mut out = Vec::new();
    for p in [50.0, 99.0] {
        let (b, c) = (ms(launch::percentile(&l.berth, p)), ms(launch::percentile(&l.ctr, p)));
        let mut f = Figure::new(format!("launch overhead p{p}: kubectl apply -> Running, minus ctr run"), b - c, "ms")
            .baseline(format!("bare ctr run p{p}"), c)
            .note(format!("kubectl apply -> Running p{p} {b:.0} ms over {runs} runs"));
        if p == 99.0 {
            f = f.target(Target::AtMost(150.0));
        }
        out.push(f);
    }
    out
}

fn placement_rate(r: &ScaleRun, store: f64, options: &Options) -> Figure {
    let mut f = Figure::new(
        format!("{}: placements/s, {} tasks on {} agents", r.mode.name(), r.tasks, r.agents),
        r.placements_per_second(),
        "/s",
    )
    .baseline("store durable writes/s", store);
    if r.agents == 10_000 && !options.quick {
        f = f.target(Target::AtLeast(5000.0));
    }
    if !r.all_placed() {
        f = f.note(format!("cut at the deadline ({:.0} s) with {} of {} placed", r.placed_seconds, r.placed, r.tasks));
    }
    f
}

fn memory(r: &ScaleRun) -> Vec<Figure> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let at = format!("{} agents, {} objects", r.agents, r.objects);
    let data = r.store_bytes as f64 / (1024.0 * 1024.0);
    vec![
        Figure::new(format!("apiserver RSS at {at}"), mib(r.apiserver_rss), "MiB")
            .baseline("store file size", data)
            .note(format!(
                "peak {:.0} MiB; idle before agents {:.0} MiB",
                mib(r.apiserver_peak),
                mib(r.apiserver_idle_rss)
            )),
        Figure::new(format!("controllers RSS at {at}"), mib(r.controllers_rss), "MiB")
            .baseline("store file size", data)
            .note(format!("peak {:.0} MiB", mib(r.controllers_peak))),
    ]
}

fn describe(r: &ScaleRun) -> String {
    format!(
        "{} {} agents × {} tasks: registered in {:.1} s; {} placed in {:.1} s ({:.0}/s); {} Running at {:.1} s; \
         apiserver {} MiB, controllers {} MiB; CPU s: apiserver {:.1}, controllers {:.1}, sim {:.1}",
        r.mode.name(),
        r.agents,
        r.tasks,
        r.register_seconds,
        r.placed,
        r.placed_seconds,
        r.placements_per_second(),
        r.running,
        r.running_seconds,
        r.apiserver_rss / 1024,
        r.controllers_rss / 1024,
        r.apiserver_cpu,
        r.controllers_cpu,
        r.sim_cpu,
    )
}

fn run_json(r: &ScaleRun) -> Value {
    json!({
        "mode": r.mode.name(), "agents": r.agents, "tasks": r.tasks,
        "placed": r.placed, "placedSeconds": r.placed_seconds, "placementsPerSecond": r.placements_per_second(),
        "running": r.running, "runningSeconds": r.running_seconds, "registerSeconds": r.register_seconds,
        "apiserverRssKiB": r.apiserver_rss, "apiserverPeakKiB": r.apiserver_peak, "apiserverIdleRssKiB": r.apiserver_idle_rss,
        "controllersRssKiB": r.controllers_rss, "controllersPeakKiB": r.controllers_peak,
        "storeBytes": r.store_bytes, "objects": r.objects,
        "cpuSeconds": {"apiserver": r.apiserver_cpu, "controllers": r.controllers_cpu, "sim": r.sim_cpu},
    })
}

/// What the figures were measured on.
fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("");
    let memory = read("/proc/meminfo").lines().next().unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_string();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpuModel": model.trim(),
        "memoryKiB": memory.parse::<u64>().unwrap_or(0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}
