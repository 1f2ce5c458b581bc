//! `berth sim`: simulated agents, like kwok for Kubernetes. Many agents in
//! one process, each acting through the real API exactly as `berth agent`
//! does — an `Agent` with its capacity and `Ready` condition, a Lease in
//! `kube-node-lease` renewed every heartbeat, its placements taken through
//! the claim gate and reported `Running` and then
//! `Succeeded` — but without containers. For scale benchmarks only.
//!
//! It scales by sharing: one kube `Client`, one watch over all placements,
//! one over all agents (their ledgers), and Lease renewals spread evenly
//! over the heartbeat interval. Every status write is a merge patch.
//!
//! Layout:
//! - `mod` (this file): the flags, registration and heartbeats, progress.
//! - `placements`: the placement watch and each placement's simulated life.

mod placements;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use berth_agent::lease;
use berth_api::condition::Condition;
use berth_api::{Agent, AgentSpec, Quantity, Resources};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::ClientArgs;

/// How many registrations are in flight at once.
const REGISTER_CONCURRENCY: usize = 64;

#[derive(Args, Clone)]
#[command(after_help = "AUTHENTICATION: the API server gives each agent its own token (user berth:agent:NAME), \
    which may write only that agent's objects; the simulated agents share one client, so `berth sim` needs \
    a kubeconfig whose user may write every agent, Lease and placement status: the admin kubeconfig the \
    API server writes (DATA_DIR/kubeconfig). It is for benchmarks only: never run it against a production cluster.")]
pub struct SimArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// How many agents to simulate
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Agents are named PREFIX0, PREFIX1, …
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// CPU each agent offers, e.g. `4` or `1500m`
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory each agent offers, e.g. `8Gi`
    #[arg(long, default_value = "8Gi")]
    memory: String,
    /// Host ports each agent offers, e.g. `31000-32000`
    #[arg(long, default_value = berth_api::ports::DEFAULT_PORTS)]
    ports: String,
    /// Seconds a placement runs before it exits 0 (`Succeeded`); 0: at once
    #[arg(long, default_value_t = 1.0)]
    task_duration: f64,
    /// Keep placements Running until they are killed or deleted
    #[arg(long)]
    run_forever: bool,
    /// Seconds between renewals of each agent's Lease (spread over the interval);
    /// the Agent status is rewritten every tenth
    #[arg(long, default_value_t = 2)]
    heartbeat_seconds: u64,
    /// Seconds a Pending placement waits for its claim in its agent's ledger
    /// before it is marked Failed with reason Unclaimed (as `berth agent`)
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_CLAIM_WAIT.as_secs())]
    claim_wait_seconds: u64,
    /// Seconds between progress lines
    #[arg(long, default_value_t = 5)]
    progress_seconds: u64,
    /// Keep the counters, as JSON, in this file (rewritten every 100 ms,
    /// atomically), for benchmark harnesses to read
    #[arg(long)]
    stats_file: Option<std::path::PathBuf>,
}

/// What the simulated agents share.
pub(crate) struct Sim {
    client: kube::Client,
    args: SimArgs,
    stats: Stats,
}

/// Counters for the progress lines.
#[derive(Default)]
pub(crate) struct Stats {
    registered: AtomicU64,
    renewals: AtomicU64,
    seen: AtomicU64,
    running: AtomicU64,
    succeeded: AtomicU64,
    killed: AtomicU64,
    errors: AtomicU64,
    /// When the latest placement was first seen, and the latest reported
    /// Running (milliseconds since the Unix epoch; 0: never).
    last_seen: AtomicU64,
    last_running: AtomicU64,
}

/// Milliseconds since the Unix epoch, the clock the stats file uses.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl SimArgs {
    fn names(&self) -> Vec<String> {
        (0..self.agents).map(|i| format!("{}{i}", self.prefix)).collect()
    }
}

/// Runs the simulated agents until SIGINT or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let capacity =
        Resources { cpu: Some(Quantity::from(args.cpu.as_str())), memory: Some(Quantity::from(args.memory.as_str())) };
    capacity.to_vec().map_err(|e| anyhow::anyhow!("--cpu/--memory: {e}"))?;
    berth_api::ports::parse(&args.ports).context("--ports")?;
    anyhow::ensure!(
        args.task_duration >= 0.0 && args.task_duration.is_finite(),
        "--task-duration must be a number of seconds ≥ 0"
    );
    let client = crate::client::connect(args.client.kubeconfig.as_deref()).await?;
    let sim = Arc::new(Sim { client, args, stats: Stats::default() });
    let names = sim.args.names();
    tracing::info!(agents = names.len(), prefix = %sim.args.prefix, "registering simulated agents");

    // Placements are followed from the start, so none bound early is missed.
    let watching = tokio::spawn(placements::follow(sim.clone(), names.clone()));
    if let Some(path) = sim.args.stats_file.clone() {
        tokio::spawn(stats_file(sim.clone(), path));
    }
    let since = berth_api::now_rfc3339();
    let registered = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let sim = sim.clone();
            let since = since.clone();
            async move {
                let r = register(&sim, &name, &since).await;
                if r.is_ok() {
                    sim.stats.registered.fetch_add(1, Ordering::Relaxed);
                }
                r.with_context(|| format!("registering agent {name}"))
            }
        })
        .buffer_unordered(REGISTER_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    registered.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    tracing::info!(agents = names.len(), "every simulated agent is registered and Ready");

    let count = names.len().max(1) as u32;
    let heartbeat = Duration::from_secs(sim.args.heartbeat_seconds.max(1));
    for (i, name) in names.into_iter().enumerate() {
        let offset = heartbeat * i as u32 / count;
        tokio::spawn(heartbeats(sim.clone(), name, offset, heartbeat, since.clone()));
    }
    tokio::spawn(progress(sim.clone()));
    tokio::select! {
        _ = crate::shutdown_signal() => Ok(()),
        r = watching => r.context("the placement watch")?,
    }
}

/// Creates agent `name` if it does not exist, reports it Ready, renews its Lease.
async fn register(sim: &Sim, name: &str, since: &str) -> anyhow::Result<()> {
    let agents: Api<Agent> = Api::all(sim.client.clone());
    if agents.get_opt(name).await?.is_none() {
        match agents.create(&PostParams::default(), &Agent::new(name, AgentSpec::default())).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    status(sim, name, since).await?;
    let leases: Api<Lease> = Api::namespaced(sim.client.clone(), lease::LEASE_NAMESPACE);
    let heartbeat = Duration::from_secs(sim.args.heartbeat_seconds.max(1));
    lease::renew(&leases, name, heartbeat).await?;
    Ok(())
}

/// Writes agent `name`'s status as `berth agent` does: capacity, ports, a fresh `Ready`.
async fn status(sim: &Sim, name: &str, since: &str) -> anyhow::Result<()> {
    let args = &sim.args;
    let capacity =
        Resources { cpu: Some(Quantity::from(args.cpu.as_str())), memory: Some(Quantity::from(args.memory.as_str())) };
    let mut ready = Condition::new("Ready", true, "AgentReady", "the simulated agent is running and reporting");
    ready.last_transition_time = Some(since.to_string());
    let patch = serde_json::json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "ports": berth_api::ports::parse(&args.ports)?,
            "hostname": name,
            "endpoint": "",
            "runtime": "berth-sim",
            "lastHeartbeatTime": berth_api::now_rfc3339(),
            "conditions": [ready],
        }
    });
    let agents: Api<Agent> = Api::all(sim.client.clone());
    agents.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Renews agent `name`'s Lease every `heartbeat`, first after `offset`, and
/// its status every [`berth_agent::STATUS_EVERY`] renewals.
async fn heartbeats(sim: Arc<Sim>, name: String, offset: Duration, heartbeat: Duration, since: String) {
    let leases: Api<Lease> = Api::namespaced(sim.client.clone(), lease::LEASE_NAMESPACE);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for beat in 1u64.. {
        tick.tick().await;
        match tokio::time::timeout(heartbeat, lease::renew(&leases, &name, heartbeat)).await {
            Ok(Ok(())) => {
                sim.stats.renewals.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => sim.error(&name, "renewing its Lease", &e),
            Err(_) => sim.error(&name, "renewing its Lease", &"no answer within a heartbeat"),
        }
        if beat % berth_agent::STATUS_EVERY == 0
            && let Err(e) = status(&sim, &name, &since).await
        {
            sim.error(&name, "writing its status", &e);
        }
    }
}

impl Sim {
    /// Counts a failed write; logs it at debug (at 10,000 agents they would flood the log).
    pub(crate) fn error(&self, what: &str, doing: &str, e: &dyn std::fmt::Display) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%what, %doing, error = %e, "a simulated agent's write failed");
    }
}

/// Logs, every `--progress-seconds`, the totals and the rates since the last line.
async fn progress(sim: Arc<Sim>) {
    let every = Duration::from_secs(sim.args.progress_seconds.max(1));
    let s = &sim.stats;
    let read = || {
        [&s.registered, &s.renewals, &s.seen, &s.running, &s.succeeded, &s.killed, &s.errors]
            .map(|c| c.load(Ordering::Relaxed))
    };
    let mut last = read();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = read();
        let rate = |i: usize| (now[i] - last[i]) as f64 / every.as_secs_f64();
        tracing::info!(
            registered = now[0],
            lease_renewals_per_s = rate(1),
            placements_seen = now[2],
            seen_per_s = rate(2),
            running_per_s = rate(3),
            succeeded = now[4],
            succeeded_per_s = rate(4),
            killed = now[5],
            errors = now[6],
            "simulated agents"
        );
        last = now;
    }
}

impl Stats {
    /// The counters as the stats file holds them.
    fn to_json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "at": unix_ms(),
            "registered": get(&self.registered),
            "renewals": get(&self.renewals),
            "seen": get(&self.seen),
            "running": get(&self.running),
            "succeeded": get(&self.succeeded),
            "killed": get(&self.killed),
            "errors": get(&self.errors),
            "lastSeenAt": get(&self.last_seen),
            "lastRunningAt": get(&self.last_running),
        })
    }
}

/// Rewrites `path` with the counters every 100 ms: written to a temporary
/// file beside it, then renamed over it, so a reader never sees half.
async fn stats_file(sim: Arc<Sim>, path: std::path::PathBuf) {
    let tmp = path.with_extension("tmp");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let text = sim.stats.to_json().to_string();
        let written = tokio::fs::write(&tmp, text).await.and(tokio::fs::rename(&tmp, &path).await);
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not write the stats file");
        }
    }
}
