//! The fleet: agents of several sizes and racks, each with its own node
//! agent on its own held [`Fake`] runtime, so the test decides when every
//! task ends.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_agent::fake::Fake;
use berth_agent::runtime::Runtime;
use berth_api::{Agent, AgentSpec, ResourceVec};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::server::{self, Stopped};

/// `(count, cpu, memory)` of each agent size.
pub const SIZES: [(usize, &str, &str); 3] = [(8, "2", "4Gi"), (4, "4", "8Gi"), (4, "1", "4Gi")];

/// One agent: its name and the runtime its node agent runs containers on.
pub struct Member {
    pub name: String,
    pub fake: Arc<Fake>,
}

/// A running container: its agent, its placement (`namespace/name`), its id.
#[derive(Clone, Debug)]
pub struct Running {
    pub agent: String,
    pub placement: String,
    pub id: String,
}

/// Registers the agents (with a `rack` attribute, before their node agents
/// start, so registration keeps it) and starts a node agent for each.
pub async fn start(client: &Client, dir: &Path, stopped: &Stopped) -> Vec<Member> {
    let agents: Api<Agent> = Api::all(client.clone());
    let mut members = Vec::new();
    let sizes = SIZES.iter().flat_map(|&(n, cpu, mem)| std::iter::repeat_n((cpu, mem), n));
    for (i, (cpu, mem)) in sizes.enumerate() {
        let name = format!("agent-{i:02}");
        let spec = AgentSpec { attributes: [("rack".to_string(), format!("r{}", i % 4))].into(), ..Default::default() };
        agents.create(&PostParams::default(), &Agent::new(&name, spec)).await.unwrap();
        let mut config = server::agent_config(&name, dir, cpu, mem, Some(name.clone()));
        // Heartbeats move the ledger's resourceVersion; every 5 s is plenty here.
        config.heartbeat = Duration::from_secs(5);
        let fake = Arc::new(Fake::new(true));
        let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
        members.push(Member { name, fake });
    }
    members
}

/// The cluster's total allocatable, from the sizes.
pub fn total() -> ResourceVec {
    SIZES
        .iter()
        .map(|&(n, cpu, mem)| {
            let one = berth_api::Resources { cpu: Some(cpu.into()), memory: Some(mem.into()) }.to_vec().unwrap();
            ResourceVec::new(one.cpu_millis * n as u64, one.memory_bytes * n as u64)
        })
        .sum()
}

/// Every container still running on any agent.
pub async fn running(members: &[Member]) -> Vec<Running> {
    let mut out = Vec::new();
    for m in members {
        for c in m.fake.list().await.unwrap().into_iter().filter(|c| c.running) {
            let placement = c.labels.get("berth.dev/placement").cloned().unwrap_or_default();
            out.push(Running { agent: m.name.clone(), placement, id: c.id });
        }
    }
    out
}

/// Lets container `r` exit 0.
pub fn release(members: &[Member], r: &Running) {
    if let Some(m) = members.iter().find(|m| m.name == r.agent) {
        m.fake.release(&r.id, 0);
    }
}
