//! `berth up` and the parts it is made of: the API server on an embedded
//! store, the controllers, and one agent on a local containerd.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use berth_agent::AgentConfig;
use berth_agent::containerd::Containerd;
use berth_agent::policy::Policy;
use clap::Args;
use futures::FutureExt;
use futures::future::FusedFuture;

use crate::AgentArgs;
use crate::secure::{self, SecureArgs};

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Address to serve the API on
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where the store, the kubeconfigs, the certificates and the logs are kept
    #[arg(long = "state-dir", default_value = ".berth")]
    state_dir: PathBuf,
    #[command(flatten)]
    secure: SecureArgs,
    #[command(flatten)]
    judge: crate::JudgeArgs,
}

/// Serves the API on `listen` from `store` (an `etcd://` address) or, without
/// one, from the embedded store in `data_dir`, over TLS with bearer tokens.
/// Once the store is open it writes a kubeconfig per role into `data_dir`
/// (`kubeconfig` for the admin; `controllers.kubeconfig`;
/// `agent-NAME.kubeconfig` for each of `agents`); a store that cannot be
/// opened (unreachable, damaged) is an error before that.
pub async fn apiserver(
    data_dir: &Path,
    store: Option<&str>,
    listen: SocketAddr,
    secure: &SecureArgs,
    agents: &[String],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    match store {
        None => {
            let store = open_embedded(data_dir)?;
            let label = store.path().display().to_string();
            serve_secured(data_dir, listener, store, &label, secure, agents, shutdown).await
        }
        Some(url) => {
            let store = connect_etcd(url).await?;
            serve_secured(data_dir, listener, store, url, secure, agents, shutdown).await
        }
    }
}

/// Writes the kubeconfigs for `listener`, then serves `store` on it.
async fn serve_secured<S: berth_apiserver::Storage>(
    data_dir: &Path,
    listener: tokio::net::TcpListener,
    store: S,
    label: &str,
    secure: &SecureArgs,
    agents: &[String],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let secured = secure::prepare(data_dir, listener.local_addr()?, secure, agents)?;
    tracing::info!(kubeconfig = %secured.kubeconfig.display(), "wrote the kubeconfigs for this API server");
    tracing::info!(addr = %listener.local_addr()?, store = label, "API server listening");
    let crds = berth_api::crds::all();
    berth_apiserver::serve_with(listener, store, crds, secured.opts, shutdown).await.context("API server")
}

/// Opens (or creates) `<data_dir>/store.redb`.
fn open_embedded(data_dir: &Path) -> anyhow::Result<berth_apiserver::Embedded> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("store.redb");
    berth_apiserver::Embedded::open(&path).with_context(|| format!("opening the store {}", path.display()))
}

async fn connect_etcd(url: &str) -> anyhow::Result<berth_apiserver::Etcd> {
    if !url.starts_with("etcd://") {
        anyhow::bail!(
            "--store {url:?}: only etcd://host:port[,host:port...][/prefix] is supported (leave --store out for the embedded store)"
        );
    }
    berth_apiserver::Etcd::connect(url).await.with_context(|| format!("opening the store {url}"))
}

async fn serve_api(
    data_dir: &Path,
    listener: tokio::net::TcpListener,
    opts: berth_apiserver::Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_embedded(data_dir)?;
    tracing::info!(addr = %listener.local_addr()?, store = %store.path().display(), "API server listening");
    berth_apiserver::serve_with(listener, store, berth_api::crds::all(), opts, shutdown).await.context("API server")
}

/// Runs one agent on the containerd at `args.containerd_socket`.
pub async fn agent(
    client: kube::Client,
    args: &AgentArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runtime = Containerd::connect(&args.containerd_socket, &args.containerd_namespace)
        .await
        .with_context(|| format!("connecting to containerd at {}", args.containerd_socket.display()))?;
    let listener = tokio::net::TcpListener::bind(args.logs_listen)
        .await
        .with_context(|| format!("binding {}", args.logs_listen))?;
    let data_dir = std::path::absolute(&args.data_dir)?;
    if let Some(relative) = args.allowed_host_paths.iter().find(|p| !p.is_absolute()) {
        anyhow::bail!("--allowed-host-paths {}: not an absolute path", relative.display());
    }
    let config = AgentConfig {
        name: args.name.clone().unwrap_or_else(berth_agent::config::hostname),
        data_dir,
        policy: Policy {
            allowed_images: args.allowed_images.iter().filter(|p| !p.is_empty()).cloned().collect(),
            forbid_root: args.forbid_root,
            allowed_host_paths: args.allowed_host_paths.clone(),
        },
        cpu: args.cpu.as_deref().map(Into::into),
        memory: args.memory.as_deref().map(Into::into),
        ports: berth_api::ports::parse(&args.ports).context("--ports")?,
        hostname: args.hostname.clone(),
        endpoint: format!("http://{}", listener.local_addr()?),
        heartbeat: Duration::from_secs(args.heartbeat_seconds),
        kill_grace: Duration::from_secs(args.kill_grace_seconds),
        fence_after: args.fence_after_seconds.map(Duration::from_secs),
        claim_wait: Duration::from_secs(args.claim_wait_seconds),
        log_max_bytes: args.log_max_bytes,
        log_max_files: args.log_max_files,
        images: args.images.settings()?,
    };
    berth_agent::run(client, runtime, config, listener, shutdown).await.context("agent")
}

pub async fn up(mut args: UpArgs) -> anyhow::Result<()> {
    let state = std::path::absolute(&args.state_dir)?;
    if args.agent.data_dir == Path::new(".berth/agent") {
        args.agent.data_dir = state.join("agent");
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let agent_name = args.agent.name.clone().unwrap_or_else(berth_agent::config::hostname);
    args.agent.name = Some(agent_name.clone());
    let secured = secure::prepare(&state, listener.local_addr()?, &args.secure, std::slice::from_ref(&agent_name))?;
    let (url, kubeconfig, opts) = (secured.url, secured.kubeconfig, secured.opts);
    let controllers_kubeconfig = secure::role_kubeconfig(&state, "controllers.kubeconfig")?;
    let agent_kubeconfig = secure::role_kubeconfig(&state, &format!("agent-{agent_name}.kubeconfig"))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let api = tokio::spawn({
        let state = state.clone();
        let stop = stopped();
        async move { serve_api(&state, listener, opts, stop).await }
    });
    // Each part with a token of its own role, as when they run apart.
    let controllers_client = crate::client::connect(Some(&controllers_kubeconfig)).await?;
    let agent_client = crate::client::connect(Some(&agent_kubeconfig)).await?;
    let controllers = tokio::spawn(berth_controllers::run_with(controllers_client, args.judge.settings(), stopped()));
    let agent_args = args.agent.clone();
    let agent = tokio::spawn({
        let stop = stopped();
        async move { agent(agent_client, &agent_args, stop).await }
    });

    println!("Berth is up: API server at {url}, state in {}", state.display());
    println!();
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl apply -f manifests/examples/hello-job.yaml");
    println!("  kubectl wait --for=condition=Complete jobs.berth.dev/hello");
    println!("  kubectl get jobs.berth.dev,placements");
    println!("  berth logs hello");
    println!();
    println!("Press Ctrl-C to stop.");

    // Stop on Ctrl-C, or as soon as any part fails.
    let mut api = api.fuse();
    let mut agent = agent.fuse();
    let failed: Option<anyhow::Error> = tokio::select! {
        _ = crate::shutdown_signal() => None,
        r = &mut api => Some(flatten(r).err().unwrap_or_else(|| anyhow::anyhow!("the API server stopped"))),
        r = &mut agent => Some(flatten(r).err().unwrap_or_else(|| anyhow::anyhow!("the agent stopped"))),
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        let _ = controllers.await;
        if !agent.is_terminated() {
            let _ = (&mut agent).await;
        }
        if !api.is_terminated() {
            let _ = (&mut api).await;
        }
    })
    .await;
    match failed {
        Some(e) => Err(e),
        None => {
            println!("Berth stopped.");
            Ok(())
        }
    }
}

fn flatten(r: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    r.map_err(anyhow::Error::from).and_then(|r| r)
}
