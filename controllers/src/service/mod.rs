//! The `builtin-service` reconciler (Marathon-like): keeps each task
//! group's `instances` running, restarts failed ones with backoff, rolls
//! out a changed template within `maxSurge`/`maxUnavailable` (held while
//! `spec.paused`), scales, and numbers revisions for undo.
//!
//! - `attempt`: one placement as the planner sees it (live, ready, failure).
//! - `plan`: the pure per-group planner (starts, kills, prune, backoff).
//! - `notes`: what a round did that is worth an Event (rollout, restart, stop).
//! - `revisions`: numbering of template sets.
//! - `status`: the Job's status and conditions from its attempts.
//!
//! This file is the I/O: read the Job's placements, plan, write the plan
//! (kills, prunes, new placements claimed through `placing::place`), write status.

pub mod attempt;
pub mod notes;
pub mod plan;
pub mod revisions;
pub mod status;

#[cfg(test)]
mod plan_tests;

use std::sync::Arc;
use std::time::Duration;

use berth_api::framework::Mode;
use berth_api::rollout::template_hash;
use berth_api::{Job, LABEL_JOB, Placement, TaskGroup};
use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;

use self::attempt::{ANNOTATION_FAILURES_BEFORE, Attempt};
use self::plan::{GroupInput, GroupPlan, Template};
use self::status::GroupView;
use crate::{Context, Error};

/// Reconciles service Job `job` of a framework in `mode`.
pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>, ns: String, mode: Mode) -> Result<Action, Error> {
    let name = job.name_any();
    let now = Timestamp::now();
    let now_s = berth_api::format_time(now);
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = job.uid().unwrap_or_default();
    // Read from the server, not a cache: the bounds on live instances
    // count what this reconciler itself created a moment ago.
    let listed = api.list(&ListParams::default().labels(&format!("{LABEL_JOB}={name}"))).await?;
    let placements: Vec<Placement> = listed
        .items
        .into_iter()
        .filter(|p| p.spec.job == name && p.owner_references().iter().any(|o| o.uid == uid))
        .collect();

    let blocked = match mode {
        Mode::Offers => Some((
            "UnsupportedMode",
            format!(
                "framework {:?} has mode Offers, but builtin-service places only through shared-state claims: set its spec.mode to SharedState",
                job.spec.framework.clone().unwrap_or_default()
            ),
        )),
        Mode::SharedState => berth_api::validate::first_problem(&job.spec).map(|why| ("InvalidSpec", why)),
    };
    let revision = revisions::record(&job.status.clone().unwrap_or_default(), &job, &now_s);

    let mut groups = Vec::new();
    let mut plans = Vec::new();
    let mut unschedulable = None;
    if blocked.is_none() {
        for g in &job.spec.task_groups {
            let (surge, unavailable) =
                g.update_strategy.clone().unwrap_or_default().resolve(g.instances()).unwrap_or((0, 1));
            let mine: Vec<Attempt> =
                placements.iter().filter(|p| p.spec.task_group == g.name).map(Attempt::of).collect();
            groups.push((g, template_hash(&g.container), unavailable, mine, surge));
        }
        for (g, hash, unavailable, mine, surge) in &groups {
            let retry = g.retry_policy();
            let input = GroupInput {
                instances: g.instances(),
                hash,
                max_surge: *surge,
                max_unavailable: *unavailable,
                retry: &retry,
                paused: job.spec.paused,
                attempts: mine,
            };
            plans.push(plan::plan(&input, now));
        }
        unschedulable = write(&job, &ctx, &ns, &placements, &plans, &now_s).await?;
    }

    let views: Vec<GroupView> = groups
        .iter()
        .zip(&plans)
        .map(|((g, hash, unavailable, mine, _), p)| GroupView {
            group: g,
            hash,
            max_unavailable: *unavailable,
            attempts: mine,
            backoffs: &p.backoffs,
        })
        .collect();
    let blocked_ref = blocked.as_ref().map(|(r, m)| (*r, m.as_str()));
    let st = status::compute(&job, &views, unschedulable.as_deref(), blocked_ref, revision, now);
    if job.status.as_ref() != Some(&st) {
        let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": berth_api::patch::merge_patch(job.status.as_ref(), &st) });
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    let rounds: Vec<notes::Round> =
        groups.iter().zip(&plans).map(|((g, _, _, mine, _), p)| (g.name.as_str(), mine.as_slice(), p)).collect();
    for note in notes::notes(job.status.as_ref(), &st, &rounds) {
        crate::events::record(&ctx.client, &*job, &note).await;
    }

    let next_backoff = plans.iter().flat_map(|p| &p.backoffs).map(|b| b.until).min();
    Ok(match (blocked, next_backoff, unschedulable) {
        (Some(_), _, _) => Action::await_change(),
        (None, Some(until), _) => {
            let secs = (until.as_second() - now.as_second()).max(0) as u64;
            Action::requeue(Duration::from_secs(secs.clamp(1, 60)))
        }
        (None, None, Some(_)) => Action::requeue(Duration::from_secs(5)),
        (None, None, None) => Action::requeue(Duration::from_secs(30)),
    })
}

/// Writes the plans: failure counts carried forward, old attempts pruned,
/// kills requested, new attempts claimed and created. Why some new attempt
/// could not be placed, if so.
async fn write(
    job: &Job,
    ctx: &Context,
    ns: &str,
    placements: &[Placement],
    plans: &[GroupPlan],
    now: &str,
) -> Result<Option<String>, Error> {
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), ns);
    let pp = PatchParams::default();
    for p in plans {
        for (name, n) in &p.annotate {
            let patch = json!({ "metadata": { "annotations": { ANNOTATION_FAILURES_BEFORE: n.to_string() } } });
            api.patch(name, &pp, &Patch::Merge(&patch)).await?;
        }
        for name in &p.prune {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        for k in &p.kills {
            let message = match k.reason {
                berth_api::rollout::REASON_SUPERSEDED => "replaced by an instance of a newer template",
                _ => "its task group was scaled down",
            };
            crate::job_actions::ask_to_stop(&api, &k.name, k.reason, message).await?;
        }
    }

    // Each start runs its group's container now, or an older one kept while paused.
    let mut templates: Vec<TaskGroup> = Vec::new();
    let mut slots = Vec::new();
    for (g, p) in job.spec.task_groups.iter().zip(plans) {
        for s in &p.starts {
            let mut t = g.clone();
            if let Template::Of(from) = &s.template
                && let Some(src) = placements.iter().find(|p| p.name_any() == *from)
            {
                t.container = src.spec.container.clone();
            }
            templates.push(t);
            slots.push((s.slot, s.attempt));
        }
    }
    if templates.is_empty() {
        return Ok(None);
    }
    let missing: Vec<crate::attempts::Needed> = templates.iter().zip(&slots).map(|(t, &(s, a))| (t, s, a)).collect();
    let live: Vec<&Placement> =
        placements.iter().filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal())).collect();
    let placed = crate::placing::place(job, ctx, ns, &missing, &live, now).await?;
    Ok(placed.unplaced)
}
