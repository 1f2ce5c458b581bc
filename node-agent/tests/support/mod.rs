//! What the agent's integration tests share: a real in-process API server,
//! one agent on the fake runtime, polling with a deadline, and writing a
//! claim into the agent's ledger as a scheduler does.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent::AgentConfig;
use berth_agent::fake::Fake;
use berth_api::{Agent, Claim, ClaimKind, Container, Placement, PlacementSpec, PlacementStatus, Resources};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

pub const AGENT: &str = "agent-1";

pub struct System {
    /// The test's own client, straight to the API server.
    pub client: Client,
    pub fake: Arc<Fake>,
    /// The agent's way to the API server, when it was started behind one.
    pub proxy: Option<Proxy>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// A TCP proxy that can cut every connection through it and refuse new
/// ones, as a network partition would, and let them through again.
pub struct Proxy {
    pub url: String,
    open: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(to: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener_addr = listener.local_addr().unwrap();
        let url = format!("http://{listener_addr}");
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (o, c) = (open.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { url, open, connections }
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn heal(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An API server and agent `agent-1` (2 CPUs, 1 GiB; fake runtime whose
/// containers are held until released or killed), with `edit` applied to
/// the agent's settings; returns once the agent is ready.
pub async fn start(edit: impl FnOnce(&mut AgentConfig)) -> System {
    start_with(edit, false).await
}

/// As [`start`]; with `proxied`, the agent reaches the API server through a
/// [`Proxy`] the test can cut.
pub async fn start_with(edit: impl FnOnce(&mut AgentConfig), proxied: bool) -> System {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener_addr = listener.local_addr().unwrap();
    let url = format!("http://{listener_addr}");
    let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).unwrap();
    tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), stopped()));
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let proxy = match proxied {
        true => Some(Proxy::start(listener_addr).await),
        false => None,
    };
    let agent_url = proxy.as_ref().map(|p| p.url.clone()).unwrap_or_else(|| url.clone());
    let agent_client = Client::try_from(kube::Config::new(agent_url.parse().unwrap())).unwrap();
    let fake = Arc::new(Fake::new(true));
    let mut config = AgentConfig {
        name: AGENT.into(),
        data_dir: dir.path().join(AGENT),
        policy: Default::default(),
        cpu: Some("2".into()),
        memory: Some("1Gi".into()),
        ports: Vec::new(),
        hostname: None,
        endpoint: "http://127.0.0.1:1".into(),
        heartbeat: Duration::from_secs(3600),
        kill_grace: Duration::from_secs(30),
        fence_after: None,
        claim_wait: Duration::from_secs(600),
        log_max_bytes: berth_agent::rotate::DEFAULT_MAX_BYTES,
        log_max_files: berth_agent::rotate::DEFAULT_MAX_FILES,
        images: Default::default(),
    };
    edit(&mut config);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(agent_client, fake.clone(), config, logs, stopped()));
    let agents: Api<Agent> = Api::all(client.clone());
    eventually("the agent to be ready", async || match agents.get_opt(AGENT).await {
        Ok(Some(a)) if a.status.as_ref().is_some_and(|s| s.is_ready()) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    System { client, fake, proxy, _stop: tx, _dir: dir }
}

/// Polls `check` until it returns `Ok`; panics with the last observation after 30 s.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("timed out waiting for {what}; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub fn placements(sys: &System) -> Api<Placement> {
    Api::namespaced(sys.client.clone(), "default")
}

/// Creates placement `name` on this agent, of Job `j`, running the demo
/// image with 100m CPU and 64Mi memory as `edit` changes it (not claimed yet).
pub async fn create_placement(sys: &System, name: &str, edit: impl FnOnce(&mut Container)) -> Placement {
    let mut container = Container {
        image: "registry.test/demo:1".into(),
        resources: Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) },
        ..Default::default()
    };
    edit(&mut container);
    let spec = PlacementSpec {
        agent: AGENT.into(),
        job: "j".into(),
        task_group: "main".into(),
        container,
        ..Default::default()
    };
    placements(sys).create(&PostParams::default(), &Placement::new(name, spec)).await.unwrap()
}

/// Waits until placement `name`'s status satisfies `done`; returns the placement.
pub async fn status_when(sys: &System, name: &str, what: &str, done: impl Fn(&PlacementStatus) -> bool) -> Placement {
    eventually(&format!("{name} {what}"), async || {
        let p = placements(sys).get(name).await.map_err(|e| e.to_string())?;
        if p.status.as_ref().is_some_and(&done) { Ok(p) } else { Err(format!("{:?}", p.status)) }
    })
    .await
}

/// Adds a placement claim for `p` to the agent's ledger, as a scheduler does.
pub async fn claim(sys: &System, p: &Placement) {
    claim_as(sys, p, &p.spec.container.resources).await
}

/// Adds a placement claim for `p` holding `resources` (a wrong ledger's, when they are not `p`'s).
pub async fn claim_as(sys: &System, p: &Placement, resources: &Resources) {
    claim_ports(sys, p, resources, &[]).await
}

/// Adds a placement claim for `p` holding `resources` and host `ports`.
pub async fn claim_ports(sys: &System, p: &Placement, resources: &Resources, ports: &[u16]) {
    let agents: Api<Agent> = Api::all(sys.client.clone());
    eventually("the claim to be written", async || {
        let mut a = agents.get(AGENT).await.map_err(|e| e.to_string())?;
        let status = a.status.get_or_insert_with(Default::default);
        status.claims.push(Claim {
            kind: ClaimKind::Placement,
            owner: format!("default/{}", p.name_any()),
            uid: p.uid().unwrap_or_default(),
            resources: resources.clone(),
            ports: ports.to_vec(),
            created_at: Some(berth_api::now_rfc3339()),
        });
        status.allocated = status.claimed().unwrap().to_resources();
        agents.replace_status(AGENT, &PostParams::default(), &a).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
}
