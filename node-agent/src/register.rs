//! Registration and heartbeat: the agent creates its `Agent` object and
//! keeps its capacity and `Ready` condition current. It never writes the
//! claim ledger, which belongs to the schedulers.

use berth_api::condition::Condition;
use berth_api::{Agent, AgentSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::Error;
use crate::config::{AgentConfig, hostname};

/// Creates the `Agent` if it does not exist; never changes a user's spec.
pub async fn register(api: &Api<Agent>, cfg: &AgentConfig) -> Result<(), Error> {
    if api.get_opt(&cfg.name).await?.is_none() {
        let agent = Agent::new(&cfg.name, AgentSpec::default());
        match api.create(&PostParams::default(), &agent).await {
            Ok(_) => tracing::info!(agent = %cfg.name, "registered"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reports capacity, endpoint and a fresh `Ready` condition.
/// `since` is when this agent process started: the time it became ready.
pub async fn heartbeat(api: &Api<Agent>, cfg: &AgentConfig, runtime_version: &str, since: &str) -> Result<(), Error> {
    let capacity = cfg.capacity().map_err(Error::Config)?;
    let mut ready = Condition::new("Ready", true, "AgentReady", "the agent is running and reporting");
    ready.last_transition_time = Some(since.to_string());
    let patch = serde_json::json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "ports": cfg.ports,
            "hostname": cfg.hostname.clone().unwrap_or_else(hostname),
            "endpoint": cfg.endpoint,
            "runtime": runtime_version,
            "lastHeartbeatTime": berth_api::now_rfc3339(),
            "conditions": [ready],
        }
    });
    api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}
