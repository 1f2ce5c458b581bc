//! `berth rollout status|pause|resume|history|undo JOB`: follow and steer
//! a service's rolling update, as `kubectl rollout` does a Deployment's.
//! Each reads or writes the Job only: `spec.paused`, the groups'
//! containers, and the revisions the controller keeps in its status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_api::condition::find;
use berth_api::{Job, JobStatus};
use clap::{Args, Subcommand};
use kube::api::{Api, Patch, PatchParams};

#[derive(Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    command: RolloutCommand,
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// Wait until the Job's latest revision is rolled out, printing progress
    Status {
        #[command(flatten)]
        job: JobRef,
        /// How long to wait, e.g. `90s`, `5m`
        #[arg(long, default_value = "5m", value_parser = crate::drain::parse_duration)]
        timeout: Duration,
    },
    /// Hold the rollout where it is: no new instance started, no old one stopped
    Pause(JobRef),
    /// Let a paused rollout go on
    Resume(JobRef),
    /// List the Job's revisions with their images and commands
    History(JobRef),
    /// Roll back to the previous revision, or to --to-revision N
    Undo {
        #[command(flatten)]
        job: JobRef,
        /// The revision to go back to (default: the one before the current)
        #[arg(long)]
        to_revision: Option<u32>,
    },
}

#[derive(Args)]
struct JobRef {
    /// The Job's name
    job: String,
    /// The Job's namespace
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// The kubeconfig to reach the API server with
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

impl JobRef {
    async fn api(&self) -> anyhow::Result<Api<Job>> {
        let client = crate::client::connect(self.kubeconfig.as_deref()).await?;
        Ok(Api::namespaced(client, &self.namespace))
    }

    fn what(&self) -> String {
        format!("job {}/{}", self.namespace, self.job)
    }
}

pub async fn rollout(args: RolloutArgs) -> anyhow::Result<()> {
    match args.command {
        RolloutCommand::Status { job, timeout } => status(&job, timeout).await,
        RolloutCommand::Pause(job) => set_paused(&job, true).await,
        RolloutCommand::Resume(job) => set_paused(&job, false).await,
        RolloutCommand::History(job) => history(&job).await,
        RolloutCommand::Undo { job, to_revision } => undo(&job, to_revision).await,
    }
}

/// Done when the controller has seen the Job's generation and says the
/// latest revision is available (`Progressing` with `NewRevisionAvailable`).
fn progress(job: &Job) -> Result<String, String> {
    let st: JobStatus = job.status.clone().unwrap_or_default();
    let current = st.observed_generation.is_some() && st.observed_generation == job.metadata.generation;
    let line = st
        .groups
        .iter()
        .map(|g| {
            let want = job.spec.task_groups.iter().find(|t| t.name == g.name).map(|t| t.instances()).unwrap_or(0);
            format!("{}: {} of {want} updated, {} available", g.name, g.updated.unwrap_or(0), g.available.unwrap_or(0))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let revision = st.revision.map(|r| format!("revision {r}: ")).unwrap_or_default();
    match find(&st.conditions, "Progressing") {
        Some(c) if current && c.reason == "NewRevisionAvailable" => Ok(format!("{revision}rolled out ({line})")),
        Some(c) if current && c.reason == "Paused" => Err(format!("{revision}paused ({line})")),
        _ => Err(format!("{revision}waiting for the rollout to finish: {line}")),
    }
}

async fn status(r: &JobRef, timeout: Duration) -> anyhow::Result<()> {
    let api = r.api().await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let job = api.get(&r.job).await.with_context(|| r.what())?;
        match progress(&job) {
            Ok(done) => {
                println!("{} {done}", r.what());
                return Ok(());
            }
            Err(line) => {
                if line != last {
                    println!("{} {line}", r.what());
                    last = line;
                }
            }
        }
        if job.spec.paused {
            bail!("{} is paused: resume it with `berth rollout resume {}`", r.what(), r.job);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} is not rolled out after {}s: {last}", r.what(), timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn set_paused(r: &JobRef, paused: bool) -> anyhow::Result<()> {
    let api = r.api().await?;
    let patch = serde_json::json!({ "spec": { "paused": paused } });
    api.patch(&r.job, &PatchParams::default(), &Patch::Merge(&patch)).await.with_context(|| r.what())?;
    println!("{} {}", r.what(), if paused { "paused" } else { "resumed" });
    Ok(())
}

async fn history(r: &JobRef) -> anyhow::Result<()> {
    let job = r.api().await?.get(&r.job).await.with_context(|| r.what())?;
    let st = job.status.unwrap_or_default();
    println!("{:<9} {:<8} {:<40} COMMAND", "REVISION", "GROUP", "IMAGE");
    for rev in &st.revisions {
        let mark = if Some(rev.revision) == st.revision { "*" } else { "" };
        for t in &rev.templates {
            let mut cmd = t.container.command.clone();
            cmd.extend(t.container.args.iter().cloned());
            let env: Vec<String> = t.container.env.iter().map(|e| format!("{}={}", e.name, e.value)).collect();
            let env = if env.is_empty() { String::new() } else { format!(" (env {})", env.join(" ")) };
            let number = format!("{}{mark}", rev.revision);
            println!("{number:<9} {:<8} {:<40} {}{env}", t.name, t.container.image, cmd.join(" "));
        }
    }
    Ok(())
}

async fn undo(r: &JobRef, to: Option<u32>) -> anyhow::Result<()> {
    let api = r.api().await?;
    let job = api.get(&r.job).await.with_context(|| r.what())?;
    let st = job.status.clone().unwrap_or_default();
    let target = match to {
        Some(n) => st.revisions.iter().find(|x| x.revision == n),
        None => st.revisions.iter().rev().find(|x| Some(x.revision) != st.revision),
    };
    let Some(target) = target else {
        let known: Vec<String> = st.revisions.iter().map(|x| x.revision.to_string()).collect();
        let which = to.map(|n| n.to_string()).unwrap_or_else(|| "before the current one".into());
        bail!("{} has no revision {which} to go back to (it has: {})", r.what(), known.join(", "));
    };
    crate::scale::edit(&api, &r.job, |job| {
        for g in job.spec.task_groups.iter_mut() {
            if let Some(t) = target.templates.iter().find(|t| t.name == g.name) {
                g.container = t.container.clone();
            }
        }
        Ok(())
    })
    .await
    .with_context(|| r.what())?;
    println!("{} rolled back to revision {}", r.what(), target.revision);
    Ok(())
}
