//! `berth scale JOB GROUP N`: sets a task group's `instances` (as `kubectl
//! patch` would). A service adds instances or stops its highest ones.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use berth_api::Job;
use clap::Args;
use kube::api::{Api, PostParams};

#[derive(Args)]
pub struct ScaleArgs {
    /// The Job's name
    job: String,
    /// The task group to scale
    group: String,
    /// How many instances it should run
    instances: u32,
    /// The Job's namespace
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// The kubeconfig to reach the API server with
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

/// Sets `instances` of the group, with the Job's resourceVersion as precondition.
pub async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let client = crate::client::connect(args.kubeconfig.as_deref()).await?;
    let jobs: Api<Job> = Api::namespaced(client, &args.namespace);
    let what = format!("job {}/{}", args.namespace, args.job);
    edit(&jobs, &args.job, |job| {
        let Some(group) = job.spec.task_groups.iter_mut().find(|g| g.name == args.group) else {
            let names: Vec<&str> = job.spec.task_groups.iter().map(|g| g.name.as_str()).collect();
            bail!("{what} has no task group {:?} (it has {})", args.group, names.join(", "));
        };
        group.instances = Some(args.instances);
        Ok(())
    })
    .await
    .with_context(|| what.clone())?;
    println!("{what} group {} scaled to {}", args.group, args.instances);
    Ok(())
}

/// Reads the Job, applies `change` and writes it back with its
/// resourceVersion; again on a conflict (its controller writes its status
/// often), as client-go's RetryOnConflict.
pub async fn edit(jobs: &Api<Job>, name: &str, change: impl Fn(&mut Job) -> anyhow::Result<()>) -> anyhow::Result<Job> {
    let mut tries = 0;
    loop {
        let mut job = jobs.get(name).await?;
        change(&mut job)?;
        match jobs.replace(name, &PostParams::default(), &job).await {
            Err(kube::Error::Api(e)) if e.code == 409 && tries < 10 => tries += 1,
            other => return Ok(other?),
        }
    }
}
