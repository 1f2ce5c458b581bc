//! The ledger reconciler: releases an agent's claims whose placement has
//! finished, that runs on another agent, or that never appeared within a grace period (a scheduler that
//! claimed and then died before creating its placement).

use std::sync::Arc;
use std::time::Duration;

use berth_api::{Agent, ClaimKind};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;

use crate::scheduler::claim::without_claims;
use crate::{Context, Error};

/// How long a claim may wait for its placement to appear.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(30);

pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = agent.name_any();
    let now = jiff::Timestamp::now();
    let Some(status) = &agent.status else { return Ok(Action::await_change()) };
    let placements = ctx.placements.state();
    let release: Vec<String> = status
        .claims
        .iter()
        .filter(|c| c.kind == ClaimKind::Placement)
        .filter(|c| {
            let live = placements
                .iter()
                .find(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()) == c.owner);
            match live {
                // Finished, or bound elsewhere (a claim left by a retried round).
                Some(p) => p.status.as_ref().is_some_and(|s| s.phase.is_terminal()) || p.spec.agent != name,
                None => {
                    let made: Option<jiff::Timestamp> = c.created_at.as_deref().and_then(|t| t.parse().ok());
                    made.is_none_or(|t| now.duration_since(t).unsigned_abs() > ORPHAN_GRACE)
                }
            }
        })
        .map(|c| c.owner.clone())
        .collect();
    if release.is_empty() {
        return Ok(Action::requeue(ORPHAN_GRACE));
    }
    let api: Api<Agent> = Api::all(ctx.client.clone());
    let next = without_claims(&agent, &release);
    // The cached resourceVersion is the precondition: a 409 means the ledger
    // moved, and the error policy requeues this agent to look again.
    api.replace_status(&name, &PostParams::default(), &next).await?;
    tracing::info!(agent = %name, released = ?release, "released claims");
    Ok(Action::requeue(ORPHAN_GRACE))
}

pub fn error_policy(agent: Arc<Agent>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(agent = %agent.name_any(), %error, "ledger reconcile failed; retrying");
    Action::requeue(Duration::from_millis(500))
}
