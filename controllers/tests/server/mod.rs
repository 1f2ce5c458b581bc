//! What every controllers test starts: a real in-process API server with
//! Berth's CRDs and the controllers, ended with the test; and the config of
//! an agent on the fake runtime.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_agent::AgentConfig;
use berth_api::Agent;
use berth_api::invariants::assert_no_overcommit;
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::sync::watch;

/// Ends what a test started in the background when sent `true` or dropped.
pub struct Stop {
    _tx: watch::Sender<bool>,
}

/// Resolves once the test's [`Stop`] fires.
#[derive(Clone)]
pub struct Stopped(pub watch::Receiver<bool>);

impl Stopped {
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// The API server (on a store in `dir`) and the controllers; the client to reach them.
pub async fn start(dir: &Path) -> (Client, Stop, Stopped) {
    let (tx, rx) = watch::channel(false);
    let stopped = Stopped(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = berth_apiserver::Embedded::open(&dir.join("store.redb")).unwrap();
    tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), stopped.wait()));
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    (client, Stop { _tx: tx }, stopped)
}

/// Starts the controllers against `client`.
#[allow(dead_code)]
pub fn controllers(client: &Client, stopped: &Stopped) {
    controllers_with(client, stopped, berth_controllers::Settings::default());
}

/// Starts the controllers against `client` with `settings`.
pub fn controllers_with(client: &Client, stopped: &Stopped, settings: berth_controllers::Settings) {
    tokio::spawn(berth_controllers::run_with(client.clone(), settings, stopped.wait()));
}

/// An agent `name` keeping its data under `dir`, offering `cpu` and `memory`.
pub fn agent_config(name: &str, dir: &Path, cpu: &str, memory: &str, hostname: Option<String>) -> AgentConfig {
    AgentConfig {
        name: name.into(),
        data_dir: dir.join(name),
        policy: Default::default(),
        cpu: Some(cpu.into()),
        memory: Some(memory.into()),
        ports: Vec::new(),
        hostname,
        endpoint: "http://127.0.0.1:1".into(),
        heartbeat: Duration::from_secs(1),
        kill_grace: Duration::from_secs(1),
        fence_after: None,
        claim_wait: berth_agent::config::DEFAULT_CLAIM_WAIT,
        log_max_bytes: berth_agent::rotate::DEFAULT_MAX_BYTES,
        log_max_files: berth_agent::rotate::DEFAULT_MAX_FILES,
        images: Default::default(),
    }
}

/// Writes a Placement claim for `p` into `agent`'s ledger, as a scheduler
/// does, so the agent's claim gate lets a hand-made placement run.
#[allow(dead_code)]
pub async fn claim(client: &Client, agent: &str, p: &berth_api::Placement) {
    use kube::ResourceExt;
    let agents: Api<Agent> = Api::all(client.clone());
    eventually(client, "the claim to be written", async || {
        let mut a = agents.get(agent).await.map_err(|e| e.to_string())?;
        let status = a.status.get_or_insert_with(Default::default);
        status.claims.push(berth_api::Claim {
            kind: berth_api::ClaimKind::Placement,
            owner: format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()),
            uid: p.uid().unwrap_or_default(),
            resources: p.spec.container.resources.clone(),
            ports: Vec::new(),
            created_at: Some(berth_api::now_rfc3339()),
        });
        status.allocated = status.claimed().map_err(|e| e.to_string())?.to_resources();
        agents.replace_status(agent, &kube::api::PostParams::default(), &a).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
}

/// Polls `check` until it returns `Ok`, checking the no-overcommit invariant
/// at every look; panics with the last observation after 30 s.
pub async fn eventually<T>(client: &Client, what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    let agents: Api<Agent> = Api::all(client.clone());
    loop {
        if let Ok(list) = agents.list(&ListParams::default()).await {
            assert_no_overcommit(&list.items);
        }
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("timed out waiting for {what}; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
