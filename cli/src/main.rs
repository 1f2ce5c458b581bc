//! `berth`: the one binary. Each subcommand parses its flags and calls the
//! library that does the work.

mod check;
mod client;
mod drain;
mod images;
mod import;
mod logs;
mod rollout;
mod scale;
mod secure;
mod sim;
mod up;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// mimalloc rather than the system allocator: the API server and the
/// controllers allocate and free many small JSON values on every request,
/// and glibc's malloc spent about a third of the API server's CPU on them
/// under load (docs/performance.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: a cluster manager with offers and shared-state scheduling behind a Kubernetes API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine: API server on an embedded store, controllers and one agent
    Up(Box<up::UpArgs>),
    /// Run the API server alone (Kubernetes-compatible API over the embedded store or etcd)
    Apiserver(ApiserverArgs),
    /// Run the controllers alone (Job scheduling, claim ledgers, garbage collection)
    Controllers(ControllersArgs),
    /// Run a node agent alone: register this machine and run its placements in containerd
    Agent(Box<AgentArgs>),
    /// Print the CRDs of Berth's kinds as YAML, or write one file per CRD into a directory
    Crds {
        /// Write `<crd name>.yaml` files here instead of printing
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Turn another system's definitions into Berth manifests (`berth import marathon app.json`)
    Import(import::ImportArgs),
    /// Print the output of a Job's tasks
    Logs(logs::LogsArgs),
    /// Mark an agent unschedulable: nothing new is placed on it
    Cordon(drain::CordonArgs),
    /// Mark an agent schedulable again
    Uncordon(drain::CordonArgs),
    /// Cordon an agent, evict its placements and wait until none runs
    Drain(drain::DrainArgs),
    /// Set how many instances a Job's task group runs
    Scale(scale::ScaleArgs),
    /// Follow, pause, resume, list or undo a service's rolling update
    Rollout(rollout::RolloutArgs),
    /// Simulate many agents without containers, for scale benchmarks (like kwok)
    Sim(Box<sim::SimArgs>),
    /// Measure what Berth depends on (`berth check store`: the embedded store's durable writes per second on a disk)
    Check(check::CheckArgs),
}

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The kubeconfig to reach the API server with (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ControllersArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// How the controllers judge agents (shared by `berth controllers` and `berth up`).
#[derive(Args, Clone)]
pub struct JudgeArgs {
    /// Seconds an agent's Lease may go unrenewed (on the controllers' clock) before the
    /// agent is NotReady and its placements Lost
    #[arg(long, default_value_t = berth_controllers::node_lifecycle::DEFAULT_AGENT_TTL.as_secs())]
    agent_ttl_seconds: u64,
}

impl JudgeArgs {
    pub fn settings(&self) -> berth_controllers::Settings {
        berth_controllers::Settings { agent_ttl: std::time::Duration::from_secs(self.agent_ttl_seconds.max(1)) }
    }
}

#[derive(Args)]
struct ApiserverArgs {
    /// Where the embedded store keeps its data file (and where the kubeconfig is written)
    #[arg(long, default_value = ".berth")]
    data_dir: PathBuf,
    /// The store: `etcd://host:port[,host:port...][/prefix]` for etcd; without it, the embedded file `<data-dir>/store.redb`
    #[arg(long)]
    store: Option<String>,
    /// Address to serve the API on
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Names of the agents to generate tokens and kubeconfigs (`DATA_DIR/agent-NAME.kubeconfig`) for,
    /// comma-separated (default: this machine's hostname); only when the token file is generated
    #[arg(long, value_delimiter = ',')]
    agents: Vec<String>,
    #[command(flatten)]
    secure: secure::SecureArgs,
}

#[derive(Args, Clone)]
pub struct AgentArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The Agent's name (default: this machine's hostname)
    #[arg(long)]
    name: Option<String>,
    /// The hostname it reports, which `hostname` constraints match (default: this machine's);
    /// set it when several agents share one machine
    #[arg(long)]
    hostname: Option<String>,
    /// containerd's socket
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// The containerd namespace the agent's containers live in
    #[arg(long, default_value = "berth")]
    containerd_namespace: String,
    /// Where logs of placements are kept
    #[arg(long, default_value = ".berth/agent")]
    data_dir: PathBuf,
    /// CPU offered to placements (default: the machine's cores), e.g. `2` or `1500m`
    #[arg(long)]
    cpu: Option<String>,
    /// Memory offered to placements (default: the machine's memory), e.g. `4Gi`
    #[arg(long)]
    memory: Option<String>,
    /// Host ports placements may be given (as PORT0, …), e.g. `31000-32000,40000`
    #[arg(long, default_value = berth_api::ports::DEFAULT_PORTS)]
    ports: String,
    /// Address the agent serves placement logs on
    #[arg(long, default_value = "127.0.0.1:10250")]
    logs_listen: SocketAddr,
    /// Seconds between renewals of the agent's Lease (its liveness; the controllers' default
    /// --agent-ttl-seconds of 10 allows five to be missed); the Agent status (capacity) is
    /// rewritten every tenth
    #[arg(long, default_value_t = 2)]
    heartbeat_seconds: u64,
    /// Seconds a Pending placement waits for its claim in this agent's ledger
    /// before it is marked Failed with reason Unclaimed
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_CLAIM_WAIT.as_secs())]
    claim_wait_seconds: u64,
    /// Seconds a stopped container gets between SIGTERM and SIGKILL, unless its
    /// task sets terminationGracePeriodSeconds
    #[arg(long, default_value_t = 10)]
    kill_grace_seconds: u64,
    /// Stop every container of this agent (SIGKILL) once it has not renewed its Lease for this
    /// many seconds, and report them Lost/AgentDisconnected when it reconnects, so a partitioned
    /// agent's tasks never run beside their replacements; set it below the controllers'
    /// --agent-ttl-seconds (default: never, as Kubernetes and Mesos)
    #[arg(long)]
    fence_after_seconds: Option<u64>,
    /// A placement's log is rotated once it is longer than this many bytes
    #[arg(long, default_value_t = berth_agent::rotate::DEFAULT_MAX_BYTES)]
    log_max_bytes: u64,
    /// How many rotated copies of a placement's log are kept
    #[arg(long, default_value_t = berth_agent::rotate::DEFAULT_MAX_FILES)]
    log_max_files: u32,
    /// Run only images whose reference starts with one of these prefixes, comma-separated
    /// (e.g. `registry.local/team/`); others fail with reason PolicyViolation (default: any image)
    #[arg(long, value_delimiter = ',')]
    allowed_images: Vec<String>,
    /// Refuse containers that would run as root: `runAsUser: 0`, or no runAsUser and an image whose user is root
    #[arg(long)]
    forbid_root: bool,
    /// Host directories placements may bind-mount (each `mounts[].hostPath` must lie under one),
    /// comma-separated absolute paths (default: none — every hostPath mount is refused)
    #[arg(long, value_delimiter = ',')]
    allowed_host_paths: Vec<PathBuf>,
    #[command(flatten)]
    images: images::ImageArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info,kube=warn,tower=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Up(args) => up::up(*args).await,
            Command::Apiserver(args) => {
                let agents =
                    if args.agents.is_empty() { vec![berth_agent::config::hostname()] } else { args.agents.clone() };
                let store = args.store.as_deref();
                up::apiserver(&args.data_dir, store, args.listen, &args.secure, &agents, shutdown_signal()).await
            }
            Command::Controllers(args) => {
                let client = client::connect(args.client.kubeconfig.as_deref()).await?;
                berth_controllers::run_with(client, args.judge.settings(), shutdown_signal())
                    .await
                    .context("controllers")
            }
            Command::Agent(args) => {
                let client = client::connect(args.client.kubeconfig.as_deref()).await?;
                up::agent(client, &args, shutdown_signal()).await
            }
            Command::Crds { dir } => crds(dir),
            Command::Import(args) => import::run(args),
            Command::Logs(args) => logs::logs(args).await,
            Command::Cordon(args) => drain::cordon(args, true).await,
            Command::Uncordon(args) => drain::cordon(args, false).await,
            Command::Drain(args) => drain::drain(args).await,
            Command::Scale(args) => scale::scale(args).await,
            Command::Rollout(args) => rollout::rollout(args).await,
            Command::Sim(args) => sim::run(*args).await,
            Command::Check(args) => check::run(args).await,
        }
    })
}

fn crds(dir: Option<PathBuf>) -> anyhow::Result<()> {
    match dir {
        None => print!("{}", berth_api::crds::to_yaml_stream()),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, yaml) in berth_api::crds::files() {
                let path = dir.join(name);
                std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => futures::future::pending::<()>().await } } => {}
    }
    tracing::info!("shutting down");
}
