//! `berth logs JOB`: finds the Job's placements and fetches each one's
//! output from the agent that runs it.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use berth_api::{Agent, LABEL_JOB, LABEL_TASK_GROUP, Placement};
use clap::Args;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use tokio::io::AsyncWriteExt;

#[derive(Args)]
pub struct LogsArgs {
    /// The Job's name
    job: String,
    /// The Job's namespace
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Only this task group
    #[arg(long)]
    task: Option<String>,
    /// Keep streaming while the task runs
    #[arg(short, long)]
    follow: bool,
    /// The kubeconfig to reach the API server with
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let client = crate::client::connect(args.kubeconfig.as_deref()).await?;
    let api: Api<Placement> = Api::namespaced(client.clone(), &args.namespace);
    let mut selector = format!("{LABEL_JOB}={}", args.job);
    if let Some(task) = &args.task {
        selector.push_str(&format!(",{LABEL_TASK_GROUP}={task}"));
    }
    let mut placements = api.list(&ListParams::default().labels(&selector)).await?.items;
    if placements.is_empty() {
        bail!(
            "job {}/{} has no placements yet (kubectl describe jobs.berth.dev {} -n {} says why)",
            args.namespace,
            args.job,
            args.job,
            args.namespace
        );
    }
    placements.sort_by_key(|p| (p.spec.task_group.clone(), p.spec.instance, p.spec.attempt));
    let agents: Api<Agent> = Api::all(client);
    let many = placements.len() > 1;
    let http = reqwest::Client::new();
    let mut out = tokio::io::stdout();
    for p in &placements {
        let status = p.status.clone().unwrap_or_default();
        if status.phase.is_terminal() && status.container_id.is_none() {
            // Refused or failed before its container existed: no output, only a reason.
            let why = format!(
                "{:?} {}: {}",
                status.phase,
                status.reason.unwrap_or_default(),
                status.message.unwrap_or_default()
            );
            out.write_all(format!("==> {} never ran: {why} <==\n", p.name_any()).as_bytes()).await?;
            continue;
        }
        let agent = agents.get(&p.spec.agent).await.with_context(|| format!("agent {}", p.spec.agent))?;
        let Some(endpoint) = agent.status.and_then(|s| s.endpoint) else {
            bail!("agent {} does not say where it serves logs", p.spec.agent);
        };
        let url = format!("{endpoint}/logs/{}/{}?follow={}", args.namespace, p.name_any(), args.follow);
        let mut resp = http.get(&url).send().await.with_context(|| format!("fetching {url}"))?;
        if !resp.status().is_success() {
            let body = resp.text().await.unwrap_or_default();
            bail!("{}: {}", p.name_any(), body.trim());
        }
        if many {
            out.write_all(
                format!("==> {} (task {}[{}]) <==\n", p.name_any(), p.spec.task_group, p.spec.instance).as_bytes(),
            )
            .await?;
        }
        while let Some(chunk) = resp.chunk().await? {
            out.write_all(&chunk).await?;
            out.flush().await?;
        }
    }
    Ok(())
}
