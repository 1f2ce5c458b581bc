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

use berth_api::constraint::Constraint;
use berth_api::framework::{Mode, Scheduler};
use berth_api::placement::FINALIZER_AGENT;
use berth_api::rollout::{LABEL_TEMPLATE_HASH, template_hash};
use berth_api::{Agent, Framework, Job, LABEL_JOB, LABEL_TASK_GROUP, Offer, Placement, PlacementSpec, TaskGroup};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use crate::attempts::Needed;
use crate::batch;
use crate::events;
use crate::job_actions;
use crate::job_status::{self, Observed};
use crate::offers::builtin::{PendingJob, plan_jobs};
use crate::scheduler::apply::apply;
use crate::scheduler::plan::{AgentView, Demand, Group, Request, plan};
use crate::{Context, Error};

/// How many placements one reconcile creates at once.
const CONCURRENT_CREATES: usize = 32;

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
    // Read from the API server, not the shared cache: this reconcile may
    // have been triggered by a placement change that the controller's own
    // watch saw before the cache did, and a stale read would leave the Job
    // behind until its next periodic requeue.
    let selector = format!("{LABEL_JOB}={name}");
    let listed =
        Api::<Placement>::namespaced(ctx.client.clone(), &ns).list(&ListParams::default().labels(&selector)).await?;
    let mut placements: BTreeMap<String, Placement> = listed
        .items
        .into_iter()
        .filter(|p| p.spec.job == name && p.owner_references().iter().any(|o| o.uid == uid))
        .map(|p| (p.name_any(), p))
        .collect();

    let mut unschedulable = None;
    let invalid = berth_api::validate::first_problem(&job.spec);
    let mut created = Vec::new();
    let retries;
    {
        let all: Vec<&Placement> = placements.values().collect();
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
                }
                // The allocation loop places them through offers; this says why they wait.
                Route::Offers(fw) => unschedulable = offers_wait(&job, &ctx, &ns, &fw, missing, live).await?,
                Route::Service(_) => unreachable!("service Jobs are reconciled by crate::service"),
            }
        }
    }
    for (pname, note) in retries {
        if created.iter().any(|p| p.metadata.name.as_deref() == Some(&pname)) {
            events::record(&ctx.client, &*job, &note).await;
        }
    }
    placements.extend(created.into_iter().map(|p| (p.name_any(), p)));

    let all: Vec<&Placement> = placements.values().collect();
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

pub(crate) struct Placed {
    pub placements: Vec<Placement>,
    pub unplaced: Option<String>,
}

/// Claims and creates placements for `missing` instances. A claim left in a
/// ledger by an earlier round whose placement was never created is reused.
/// `live` are the Job's non-terminal placements (what constraints and
/// `spread` count).
pub(crate) async fn place(
    job: &Job,
    ctx: &Context,
    ns: &str,
    missing: &[Needed<'_>],
    live: &[&Placement],
    now: &str,
) -> Result<Placed, Error> {
    let name = job.name_any();
    let agents_api: Api<Agent> = Api::all(ctx.client.clone());
    let agents: Vec<Arc<Agent>> = ctx.agents.state();
    let selector = crate::offers::inputs::cluster_spec(&ctx.clusters).agent_selector;
    let mut views: Vec<AgentView> = agents.iter().map(|a| AgentView::of(a, &selector)).collect();
    let first = crate::priority::hold_for_higher(
        job,
        &ctx.jobs.state(),
        &ctx.placements.state(),
        &mut views,
        jiff::Timestamp::now(),
    );
    let group_of: BTreeMap<String, Needed> =
        missing.iter().map(|&(g, i, a)| (placement_name(&name, &g.name, i, a), (g, i, a))).collect();

    // Instances already holding a claim (an earlier round claimed, then
    // failed before creating the placement) are bound to that agent.
    let mut bound: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    let mut job_tasks: BTreeMap<String, u32> = BTreeMap::new();
    for p in live {
        *job_tasks.entry(p.spec.agent.clone()).or_default() += 1;
    }
    for g in &job.spec.task_groups {
        let placed = live.iter().filter(|p| p.spec.task_group == g.name).map(|p| p.spec.agent.clone()).collect();
        let constraints = g.constraints.iter().filter_map(|c| Constraint::parse(c).ok()).collect();
        groups.insert(&g.name, Group { constraints, gang: g.gang, placed, demands: Vec::new() });
    }
    for (g, i, a) in missing {
        let pname = placement_name(&name, &g.name, *i, *a);
        let owner = format!("{ns}/{pname}");
        let holder =
            agents.iter().find(|a| a.status.as_ref().is_some_and(|s| s.claims.iter().any(|c| c.owner == owner)));
        let group = groups.get_mut(g.name.as_str()).expect("every task group has an entry");
        match holder {
            Some(a) => {
                group.placed.push(a.name_any());
                *job_tasks.entry(a.name_any()).or_default() += 1;
                bound.push((pname, a.name_any()));
            }
            None => {
                let ports = g.container.ports.len() as u32;
                group.demands.push(Demand::new(pname, g.container.resources.to_vec()?, ports))
            }
        }
    }

    let seed = jiff::Timestamp::now().as_nanosecond() as u64 ^ fnv1a(job.uid().unwrap_or_default().as_bytes());
    let request = Request { strategy: job.spec.strategy, seed, job_tasks, groups: groups.into_values().collect() };
    let plan = plan(&views, &request);
    let gang_of: BTreeMap<String, String> =
        group_of.iter().filter(|(_, (g, _, _))| g.gang).map(|(p, (g, _, _))| (p.clone(), g.name.clone())).collect();
    let applied = apply(&agents_api, &agents, ns, &plan, bound, &gang_of, now).await?;
    // With several task groups, the message says whose tasks wait.
    let several = job.spec.task_groups.len() > 1;
    let unplaced = plan
        .unplaced
        .first()
        .map(|(d, why)| match several {
            true => format!("task group {}: {why}", group_of[&d.placement].0.name),
            false => why.clone(),
        })
        .map(|why| match first.is_empty() {
            true => why,
            false => format!("{why} (after higher-priority Jobs waiting: {})", first.join(", ")),
        })
        .or(applied.conflict);

    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), ns);
    let mut placements = Vec::new();
    // Created several at a time: the store commits concurrent writes
    // together, and a claim whose placement is slow to appear is released
    // by the ledger controller as an orphan.
    let creates = applied.bound.into_iter().map(|(pname, agent)| {
        let api = api.clone();
        let (group, instance, attempt) = group_of[&pname];
        let p = new_placement(job, group, (instance, attempt), &pname, &agent);
        async move {
            match api.create(&PostParams::default(), &p).await {
                Ok(created) => {
                    tracing::info!(placement = %pname, %agent, "placed");
                    Ok(created)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(api.get(&pname).await?),
                Err(e) => Err(Error::from(e)),
            }
        }
    });
    let results: Vec<Result<Placement, Error>> =
        futures::stream::iter(creates).buffer_unordered(CONCURRENT_CREATES).collect().await;
    for r in results {
        placements.push(r?);
    }
    Ok(Placed { placements, unplaced })
}

/// FNV-1a: mixes the Job's UID into the `random` strategy's seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
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
