//! The ledger reconciler: releases an agent's claims whose placement has
//! finished, was deleted, runs on another agent, or never appeared within
//! a grace period (a scheduler that claimed and then died before creating
//! its placement).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_api::{Agent, AgentStatus, ClaimKind, Placement};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use crate::scheduler::claim::without_claims;
use crate::{Context, Error};

/// How long a claim may wait for its placement to appear.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(30);

pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = agent.name_any();
    let Some(status) = &agent.status else { return Ok(Action::await_change()) };
    let release = {
        let mut seen = ctx.seen_placements.lock().unwrap_or_else(|e| e.into_inner());
        let cached = |owner: &str| {
            let (ns, name) = owner.split_once('/')?;
            ctx.placements.get(&ObjectRef::new(name).within(ns))
        };
        to_release(&name, status, cached, &mut seen, jiff::Timestamp::now())
    };
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

/// The owners of `agent`'s placement claims that should be released.
/// `cached` finds a claim owner's placement (`namespace/name`) in the cache;
/// `seen` holds every placement the watch has reported (`namespace/name`), so
/// one that is gone now is known to be deleted rather than not yet created.
/// Costs a lookup per claim, whatever the number of placements.
fn to_release(
    agent: &str,
    status: &AgentStatus,
    cached: impl Fn(&str) -> Option<Arc<Placement>>,
    seen: &mut HashSet<String>,
    now: jiff::Timestamp,
) -> Vec<String> {
    let release: Vec<String> = status
        .claims
        .iter()
        .filter(|c| c.kind == ClaimKind::Placement)
        .filter(|c| match cached(&c.owner) {
            // Finished, or bound elsewhere (a claim left by a retried round).
            Some(p) => p.status.as_ref().is_some_and(|s| s.phase.is_terminal()) || p.spec.agent != agent,
            None if seen.contains(&c.owner) => true,
            None => {
                let made: Option<jiff::Timestamp> = c.created_at.as_deref().and_then(|t| t.parse().ok());
                made.is_none_or(|t| now.duration_since(t).unsigned_abs() > ORPHAN_GRACE)
            }
        })
        .map(|c| c.owner.clone())
        .collect();
    for owner in &release {
        seen.remove(owner);
    }
    release
}

pub fn error_policy(agent: Arc<Agent>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(agent = %agent.name_any(), %error, "ledger reconcile failed; retrying");
    Action::requeue(Duration::from_millis(500))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{Claim, PlacementSpec, Resources};

    fn claim(owner: &str, created_at: &str) -> Claim {
        Claim {
            kind: ClaimKind::Placement,
            owner: owner.into(),
            uid: String::new(),
            resources: Resources::default(),
            ports: Vec::new(),
            created_at: Some(created_at.into()),
        }
    }

    /// The cache holding `placements`.
    fn cache(placements: Vec<Arc<Placement>>) -> impl Fn(&str) -> Option<Arc<Placement>> {
        move |owner| placements.iter().find(|p| format!("default/{}", p.name_any()) == owner).cloned()
    }

    fn placement(name: &str) -> Arc<Placement> {
        let mut p = Placement::new(name, PlacementSpec { agent: "a1".into(), ..Default::default() });
        p.metadata.namespace = Some("default".into());
        Arc::new(p)
    }

    #[test]
    fn an_unborn_placement_keeps_its_claim_for_the_grace_period() {
        let now: jiff::Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let status = AgentStatus {
            claims: vec![claim("default/new", "2026-01-01T00:00:00Z"), claim("default/old", "2025-01-01T00:00:00Z")],
            ..Default::default()
        };
        let released = to_release("a1", &status, cache(vec![]), &mut HashSet::new(), now);
        assert_eq!(released, ["default/old"]);
    }

    #[test]
    fn a_lost_placement_releases_its_claim_at_once() {
        let now: jiff::Timestamp = "2026-01-01T00:00:01Z".parse().unwrap();
        let status = AgentStatus { claims: vec![claim("default/p", "2026-01-01T00:00:00Z")], ..Default::default() };
        let mut lost = (*placement("p")).clone();
        lost.status = Some(berth_api::PlacementStatus { phase: berth_api::Phase::Lost, ..Default::default() });
        assert_eq!(to_release("a1", &status, cache(vec![Arc::new(lost)]), &mut HashSet::new(), now), ["default/p"]);
    }

    #[test]
    fn a_deleted_placement_releases_its_claim_at_once() {
        let now: jiff::Timestamp = "2026-01-01T00:00:01Z".parse().unwrap();
        let status = AgentStatus { claims: vec![claim("default/p", "2026-01-01T00:00:00Z")], ..Default::default() };
        // The watch reported it, and the cache has it: kept.
        let mut seen = HashSet::from(["default/p".to_string()]);
        assert!(to_release("a1", &status, cache(vec![placement("p")]), &mut seen, now).is_empty());
        // Gone from the cache since: deleted, released within the grace period.
        assert_eq!(to_release("a1", &status, cache(vec![]), &mut seen, now), ["default/p"]);
        assert!(seen.is_empty());
    }
}
