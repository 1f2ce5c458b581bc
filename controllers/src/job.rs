//! The `builtin-batch` Job reconciler. In shared-state mode every task
//! instance without a placement is planned onto an agent, claimed on that
//! agent's ledger with compare-and-swap, and given a `Placement`. In
//! `Offers` mode the allocation loop places them through offers
//! (`offers::builtin_answer`) and this says why any wait. Either way the
//! Job's status follows its placements. `builtin-service` Jobs are
//! dispatched to `crate::service`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::framework::{Mode, Scheduler};
use berth_api::placement::FINALIZER_AGENT;
use berth_api::rollout::{LABEL_TEMPLATE_HASH, template_hash};
use berth_api::{Framework, Job, LABEL_JOB, LABEL_TASK_GROUP, Offer, Placement, PlacementSpec, TaskGroup};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use crate::attempts::Needed;
use crate::batch;
use crate::events;
use crate::job_actions;
use crate::job_status::{self, Observed};
use crate::offers::builtin::{PendingJob, plan_jobs};
use crate::placing::place;
use crate::scheduler::plan::AgentView;
use crate::{Context, Error};

/// The name of instance `instance`'s attempt `attempt` of `group`.
pub fn placement_name(job: &str, group: &str, instance: u32, attempt: u32) -> String {
    format!("{job}-{group}-{instance}-{attempt}")
}

pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let Some(route) = route(&job, &ctx, &ns).await? else {
        return Ok(Action::await_change());
    };
    let span = tracing::info_span!("job", job = format!("{ns}/{name}"));
    if let Route::Service(mode) = route {
        return crate::service::reconcile(job, ctx, ns, mode).instrument(span).await;
    }
    reconcile_ours(job, ctx, ns, name, route).instrument(span).await
}

async fn reconcile_ours(
    job: Arc<Job>,
    ctx: Arc<Context>,
    ns: String,
    name: String,
    route: Route,
) -> Result<Action, Error> {
    let clock = jiff::Timestamp::now();
    let now = berth_api::format_time(clock);

    let uid = job.uid().unwrap_or_default();
    // The shared cache cannot lag the placement change that triggered this
    // reconcile, and what earlier rounds created is expected until it shows.
    let mut placements = crate::expect::job_placements(&ctx, &ns, &name, &uid);

    let mut unschedulable = None;
    let invalid = berth_api::validate::first_problem(&job.spec);
    let mut created = Vec::new();
    let retries;
    let mut more = false;
    {
        let all: Vec<&Placement> = placements.values().map(|p| &**p).collect();
        let assessment = batch::assess(&job, &all, clock);
        let live: Vec<&Placement> =
            all.iter().copied().filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal())).collect();
        if let Some((reason, message)) = assessment.kill() {
            job_actions::kill(&ctx, &ns, &live, reason, &message).await?;
        }
        // New instances, and the next attempt of those lost, evicted, suspended or retried.
        let missing: Vec<Needed> = if invalid.is_none() { assessment.needed() } else { Vec::new() };
        retries = job_actions::retry_notes(&name, &assessment, &missing);
        if !missing.is_empty() {
            match route {
                Route::SharedState => {
                    let placed = place(&job, &ctx, &ns, &missing, &live, &now).await?;
                    unschedulable = placed.unplaced;
                    created = placed.placements;
                    more = placed.more;
                }
                // The allocation loop places them through offers; this says why they wait.
                Route::Offers(fw) => unschedulable = offers_wait(&job, &ctx, &ns, &fw, missing, live).await?,
                Route::Service(_) => unreachable!("service Jobs are reconciled by crate::service"),
            }
        }
    }
    let created_names: std::collections::HashSet<&str> =
        created.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
    for (pname, note) in retries {
        if created_names.contains(pname.as_str()) {
            events::record(&ctx.client, &*job, &note).await;
        }
    }
    let created: Vec<Arc<Placement>> = created.into_iter().map(Arc::new).collect();
    ctx.expected.created(&uid, &created);
    placements.extend(created.into_iter().map(|p| (p.name_any(), p)));

    let all: Vec<&Placement> = placements.values().map(|p| &**p).collect();
    let assessment = batch::assess(&job, &all, clock);
    let status = job_status::compute(
        &job,
        &assessment,
        Observed { unschedulable: unschedulable.as_deref(), invalid: invalid.as_deref() },
        clock,
    );
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    if job.status.as_ref() != Some(&status) {
        // A field the new status dropped (startTime while suspended) is cleared.
        let patch = serde_json::json!({ "status": berth_api::patch::merge_patch(job.status.as_ref(), &status) });
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        for note in events::job_notes(job.status.as_ref(), &status) {
            events::record(&ctx.client, &*job, &note).await;
        }
    }
    let ttl = batch::decide::ttl_expiry(&job, &status);
    if let Some(expires) = ttl
        && clock >= expires
    {
        tracing::info!("deleting finished Job: ttlSecondsAfterFinished passed");
        match jobs.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::await_change());
    }
    if more {
        // A big Job is placed over several reconciles; the next one starts now.
        return Ok(Action::requeue(Duration::ZERO));
    }
    let wake = [assessment.wake, ttl].into_iter().flatten().min();
    let until_wake =
        wake.map(|w| Duration::try_from(clock.duration_until(w)).unwrap_or_default() + Duration::from_millis(100));
    let fallback = match (unschedulable, invalid) {
        (_, Some(_)) => return Ok(Action::await_change()),
        (Some(_), None) => Duration::from_secs(5),
        (None, None) => Duration::from_secs(60),
    };
    Ok(Action::requeue(until_wake.map_or(fallback, |w| w.min(fallback))))
}

pub fn error_policy(job: Arc<Job>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// How a Job of a built-in scheduler gets its placements.
enum Route {
    /// Claimed here on the shared ledger (a Job without a framework, too).
    SharedState,
    /// Placed through offers to this framework (by name) by the allocation loop.
    Offers(String),
    /// A `builtin-service` Job, reconciled by `crate::service` (which
    /// refuses `Offers` mode with a condition).
    Service(Mode),
}

/// How this Job is placed, or `None` when it is not a built-in scheduler's.
async fn route(job: &Job, ctx: &Context, ns: &str) -> Result<Option<Route>, Error> {
    let Some(fw) = &job.spec.framework else { return Ok(Some(Route::SharedState)) };
    let frameworks: Api<Framework> = Api::namespaced(ctx.client.clone(), ns);
    Ok(match frameworks.get_opt(fw).await? {
        Some(f) if f.spec.scheduler == Scheduler::BuiltinBatch => match f.spec.mode {
            Mode::SharedState => Some(Route::SharedState),
            Mode::Offers => Some(Route::Offers(f.name_any())),
        },
        Some(f) if f.spec.scheduler == Scheduler::BuiltinService => Some(Route::Service(f.spec.mode)),
        _ => None,
    })
}

/// Why `missing` instances of an `Offers` Job wait, if they fit nowhere:
/// planned (without writing anything) over what could be offered to its
/// framework — each agent's free capacity plus what the framework's open
/// offers hold there — so the reason is the shared-state path's, in numbers.
async fn offers_wait(
    job: &Job,
    ctx: &Context,
    ns: &str,
    fw: &str,
    missing: Vec<Needed<'_>>,
    live: Vec<&Placement>,
) -> Result<Option<String>, Error> {
    let offers = Api::<Offer>::namespaced(ctx.client.clone(), ns).list(&Default::default()).await?;
    let own: std::collections::HashSet<String> = offers
        .items
        .iter()
        .filter(|o| o.spec.framework == fw && crate::offers::inputs::is_open(o))
        .map(|o| format!("{ns}/{}", o.name_any()))
        .collect();
    let selector = crate::offers::inputs::cluster_spec(&ctx.clusters).agent_selector;
    let mut views: Vec<AgentView> = ctx
        .agents
        .state()
        .iter()
        .map(|a| {
            let mut v = AgentView::of(a, &selector);
            let claims = a.status.iter().flat_map(|s| &s.claims);
            for c in claims.filter(|c| own.contains(&c.owner)) {
                v.free += c.resources.to_vec().unwrap_or_default();
            }
            v
        })
        .collect();
    let pending = PendingJob { job, live, missing };
    let planning = plan_jobs(std::slice::from_ref(&pending), &mut views, 0);
    Ok(planning.unplaced.get(&0).cloned())
}

/// Attempt `attempt` of instance `instance` of `g`, named `name`, bound to `agent`.
pub(crate) fn new_placement(
    job: &Job,
    g: &TaskGroup,
    (instance, attempt): (u32, u32),
    name: &str,
    agent: &str,
) -> Placement {
    let labels = BTreeMap::from([
        (LABEL_JOB.to_string(), job.name_any()),
        (LABEL_TASK_GROUP.to_string(), g.name.clone()),
        (LABEL_TEMPLATE_HASH.to_string(), template_hash(&g.container)),
    ]);
    let owner = OwnerReference {
        api_version: Job::api_version(&()).into_owned(),
        kind: Job::kind(&()).into_owned(),
        name: job.name_any(),
        uid: job.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Placement {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: job.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            // Kept until its agent has stopped and removed the container.
            finalizers: Some(vec![FINALIZER_AGENT.to_string()]),
            ..Default::default()
        },
        spec: PlacementSpec {
            agent: agent.to_string(),
            job: job.name_any(),
            task_group: g.name.clone(),
            instance,
            attempt,
            offer: None,
            container: g.container.clone(),
            image_pull_secret: job.spec.image_pull_secret.clone(),
            kill: None,
        },
        status: None,
    }
}
