//! `berth cordon AGENT`, `berth uncordon AGENT` and `berth drain AGENT`.
//!
//! Cordoning sets `Agent.spec.unschedulable` (as `kubectl patch` would):
//! schedulers and the allocator place nothing new there. Draining cordons,
//! then asks every non-terminal placement on the agent to stop
//! (`spec.kill` with reason `Evicted`), and waits until none is left
//! running, printing progress. Frameworks replace evicted tasks elsewhere.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_api::placement::REASON_EVICTED;
use berth_api::{Agent, Placement};
use clap::Args;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

#[derive(Args)]
pub struct CordonArgs {
    /// The Agent's name
    agent: String,
    /// The kubeconfig to reach the API server with
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

#[derive(Args)]
pub struct DrainArgs {
    /// The Agent's name
    agent: String,
    /// How long to wait for its placements to stop, e.g. `90s`, `5m`, `1h`
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
    /// The kubeconfig to reach the API server with
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

/// Sets (`cordon`) or clears `spec.unschedulable` of an agent.
pub async fn cordon(args: CordonArgs, unschedulable: bool) -> anyhow::Result<()> {
    let client = crate::client::connect(args.kubeconfig.as_deref()).await?;
    set_unschedulable(&Api::all(client), &args.agent, unschedulable).await?;
    println!("agent/{} {}", args.agent, if unschedulable { "cordoned" } else { "uncordoned" });
    Ok(())
}

async fn set_unschedulable(agents: &Api<Agent>, name: &str, unschedulable: bool) -> anyhow::Result<()> {
    let patch = serde_json::json!({ "spec": { "unschedulable": unschedulable } });
    agents
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("agent {name}"))?;
    Ok(())
}

/// Cordons the agent, evicts its placements and waits until none runs.
pub async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let client = crate::client::connect(args.kubeconfig.as_deref()).await?;
    let agent = &args.agent;
    set_unschedulable(&Api::all(client.clone()), agent, true).await?;
    println!("agent/{agent} cordoned");
    let placements: Api<Placement> = Api::all(client.clone());
    let on_agent = ListParams::default().fields(&format!("spec.agent={agent}"));
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut last_report = String::new();
    loop {
        let live: Vec<Placement> = placements
            .list(&on_agent)
            .await?
            .items
            .into_iter()
            .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
            .collect();
        if live.is_empty() {
            println!("agent/{agent} drained");
            return Ok(());
        }
        for p in live.iter().filter(|p| p.spec.kill.is_none()) {
            evict(&client, p, agent).await?;
        }
        let names: Vec<String> =
            live.iter().map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())).collect();
        let report = format!("waiting for {} placement(s) to stop: {}", names.len(), names.join(", "));
        if report != last_report {
            println!("{report}");
            last_report = report;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "agent {agent} is not drained after {}s; still running: {}",
                args.timeout.as_secs(),
                names.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asks placement `p` to stop with reason `Evicted`.
async fn evict(client: &kube::Client, p: &Placement, agent: &str) -> anyhow::Result<()> {
    let ns = p.namespace().unwrap_or_default();
    let api: Api<Placement> = Api::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({ "spec": { "kill": {
        "reason": REASON_EVICTED,
        "message": format!("agent {agent} is being drained"),
    } } });
    match api.patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            println!("evicting placement {ns}/{}", p.name_any());
            Ok(())
        }
        // Gone meanwhile: nothing left to stop.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("evicting placement {ns}/{}", p.name_any())),
    }
}

/// `90s`, `5m`, `1h30m` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 90s, 5m, 1h30m)");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let (mut total, mut num) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total += num.parse::<u64>().map_err(|_| bad())? * unit;
        num.clear();
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_like_kubectl_timeouts() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }
}
