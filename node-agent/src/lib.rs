//! `berth-agent`: the node agent. It registers its machine as an `Agent`,
//! reports that it is alive, runs the placements bound to it through a
//! container runtime (containerd), reports their phases, and serves their
//! logs. It talks to the store only through the Kubernetes API.
//!
//! Layout:
//! - `config`: the agent's settings and the machine's capacity.
//! - `register`: creating the `Agent` and its status heartbeat (capacity).
//! - `lease`: the agent's Lease, renewed every heartbeat (liveness).
//! - `fence`: opt-in self-fencing — every container stopped after the Lease
//!   could not be renewed for `--fence-after-seconds`.
//! - `watch`: the main loop over this agent's placements.
//! - `claimed`: the claim gate — a placement starts only once this agent's
//!   ledger holds its claim; one never claimed ends `Failed`/`Unclaimed`.
//! - `policy`: what the agent refuses to run (images, root, host paths,
//!   overcommit), checked before it pulls.
//! - `supervisor`: one placement's life, pull to exit, as a state machine.
//! - `health`: a running placement's health checks (HTTP, TCP, command),
//!   reported in `status.health`; too many failures stop the container.
//! - `report`: writing a placement's status, one legal transition at a time.
//! - `kill`: the stop path — kill requests, deletion, timeouts; SIGTERM,
//!   SIGKILL after the grace period.
//! - `finalizer`: releasing the agent finalizer once the container is gone.
//! - `rotate`: size-bounded, copy-truncate rotation of placement logs.
//! - `pulling`: a placement's pull, with its credentials, retried with backoff.
//! - `credentials`: registry credentials from an `imagePullSecret`.
//! - `image_gc`: removing unused images, least recently used first.
//! - `logs`: the HTTP log server behind `berth logs`.
//! - `runtime`: the container runtime trait.
//! - `containerd`: the runtime on containerd.
//! - `fake`: a recording runtime for tests of the agent's decisions.

pub mod claimed;
pub mod config;
pub mod containerd;
pub mod credentials;
pub mod fake;
pub mod fence;
pub mod finalizer;
pub mod health;
pub mod image_gc;
pub mod kill;
pub mod lease;
pub mod logs;
pub mod policy;
pub mod pulling;
pub mod register;
pub mod report;
pub mod rotate;
pub mod runtime;
pub mod supervisor;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::placement::IllegalTransition;
use berth_api::{Agent, Placement};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use tokio::task::AbortHandle;

pub use config::AgentConfig;
use runtime::{Runtime, RuntimeError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    #[error("{0}")]
    Config(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The placement was marked `Lost` (its agent was judged gone) and replaced.
    #[error("placement {0} was marked Lost and replaced elsewhere")]
    Lost(String),
}

/// What the agent's tasks share.
pub struct AgentContext<R> {
    pub client: Client,
    pub runtime: R,
    pub config: AgentConfig,
    /// Placement UID → its supervisor.
    running: Mutex<HashMap<String, Supervised>>,
    /// This agent's ledger and the placements waiting for their claims.
    gate: claimed::Gate,
    /// The images placements hold, and when each was last used.
    images: image_gc::ImageUse,
    /// When the Lease was last renewed; whether the agent has fenced itself.
    fence: fence::Fence,
}

/// A running supervisor: whose it is, how to stop it, how to tell it news.
struct Supervised {
    /// `namespace/name` of its placement.
    key: String,
    abort: AbortHandle,
    /// Newer versions of its placement (a kill request, a deletion).
    latest: tokio::sync::watch::Sender<Placement>,
}

impl<R> AgentContext<R> {
    /// True while a supervisor runs for placement `namespace/name`.
    pub fn is_running(&self, key: &str) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).values().any(|s| s.key == key)
    }

    /// `namespace/name` of every placement a supervisor runs for.
    pub fn supervised(&self) -> Vec<String> {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.key.clone()).collect()
    }
}

/// The Lease carries liveness every heartbeat; the `Agent` status
/// (capacity, runtime, `Ready`) is rewritten every this many heartbeats.
pub const STATUS_EVERY: u64 = 10;

/// Runs the agent until `shutdown` resolves: registers, heartbeats, serves
/// logs on `logs_listener`, and runs this agent's placements on `runtime`.
pub async fn run<R: Runtime>(
    client: Client,
    runtime: R,
    config: AgentConfig,
    logs_listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.capacity().map_err(Error::Config)?;
    let agents: Api<Agent> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), lease::LEASE_NAMESPACE);
    let version = runtime.version().await?;
    let since = berth_api::now_rfc3339();
    register::register(&agents, &config).await?;
    register::heartbeat(&agents, &config, &version, &since).await?;
    if let Err(e) = lease::renew(&leases, &config.name, config.heartbeat).await {
        tracing::warn!(error = %e, namespace = lease::LEASE_NAMESPACE, "renewing the agent's Lease failed; retrying");
    }
    tracing::info!(agent = %config.name, runtime = %version, "agent ready");

    let ctx = Arc::new(AgentContext {
        client,
        runtime,
        config,
        running: Mutex::new(HashMap::new()),
        gate: Default::default(),
        images: Default::default(),
        fence: Default::default(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let server = axum::serve(logs_listener, logs::router(ctx.clone())).with_graceful_shutdown(stopped());
    let heartbeats = {
        let ctx = ctx.clone();
        let stop = stopped();
        async move {
            let mut tick = tokio::time::interval(ctx.config.heartbeat);
            tokio::pin!(stop);
            for beat in 0u64.. {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tick.tick() => {
                        // A renewal that hangs (a cut network) gives way to the next beat's.
                        let sent = tokio::time::Instant::now();
                        let renewal = lease::renew(&leases, &ctx.config.name, ctx.config.heartbeat);
                        match tokio::time::timeout(ctx.config.heartbeat, renewal).await {
                            Ok(Ok(())) => ctx.fence.renewed(sent),
                            Ok(Err(e)) => tracing::warn!(error = %e, "renewing the agent's Lease failed"),
                            Err(_) => tracing::warn!("renewing the agent's Lease did not finish within a heartbeat"),
                        }
                        if beat % STATUS_EVERY != 0 {
                            continue;
                        }
                        if let Err(e) = register::heartbeat(&agents, &ctx.config, &version, &since).await {
                            tracing::warn!(error = %e, "heartbeat failed");
                        }
                    }
                }
            }
        }
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (served, watched, (), (), (), (), ()) = tokio::join!(
        server,
        watch::watch_placements(ctx.clone(), stopped()),
        heartbeats,
        claimed::follow_ledger(ctx.clone(), stopped()),
        rotate::rotate_logs(ctx.clone(), stopped()),
        image_gc::run(ctx.clone(), stopped()),
        fence::watchdog(ctx.clone(), stopped())
    );
    served.map_err(|e| Error::Io("log server".into(), e))?;
    watched
}
