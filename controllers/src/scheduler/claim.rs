//! The applier: writes a plan's claims into agents' ledgers with the
//! agent's resourceVersion as precondition. A stale write gets 409; then the
//! agent is read again and only what still fits is claimed (Omega's
//! optimistic transactions, Nomad's plan applier).

use berth_api::{Agent, Claim, ClaimKind, ResourceVec, Resources};
use kube::api::{Api, PostParams};

use super::plan::Demand;
use crate::Error;

/// How often one agent's ledger write is retried after a conflict.
const MAX_ATTEMPTS: usize = 8;

/// Claims `demands` on `agent` (first from `cached`, then fresh on conflict).
/// Returns the demands that were claimed; the rest no longer fit.
pub async fn claim_on_agent(
    api: &Api<Agent>,
    cached: Option<Agent>,
    agent: &str,
    namespace: &str,
    demands: &[Demand],
    now: &str,
) -> Result<Vec<Demand>, Error> {
    let mut current = match cached {
        Some(a) => a,
        None => api.get(agent).await?,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (next, claimed) = with_claims(&current, namespace, demands, now);
        if claimed.is_empty() {
            return Ok(claimed);
        }
        match api.replace_status(agent, &PostParams::default(), &next).await {
            Ok(_) => return Ok(claimed),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::debug!(agent, "ledger write conflicted; re-reading the agent");
                current = api.get(agent).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Contended(agent.to_string()))
}

/// Releases the claims of `owners` on `agent`, re-reading it on conflict.
pub async fn release_on_agent(api: &Api<Agent>, agent: &str, owners: &[String]) -> Result<(), Error> {
    for _ in 0..MAX_ATTEMPTS {
        let current = api.get(agent).await?;
        let held = current.status.as_ref().is_some_and(|s| s.claims.iter().any(|c| owners.contains(&c.owner)));
        if !held {
            return Ok(());
        }
        match api.replace_status(agent, &PostParams::default(), &without_claims(&current, owners)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Contended(agent.to_string()))
}

/// The agent with every demand that fits added to its ledger, in order.
/// A demand already claimed (same owner) counts as claimed and is not added twice.
pub fn with_claims(agent: &Agent, namespace: &str, demands: &[Demand], now: &str) -> (Agent, Vec<Demand>) {
    let mut next = agent.clone();
    let status = next.status.get_or_insert_with(Default::default);
    let mut claimed = Vec::new();
    let Ok(mut free) = status.free() else { return (next, claimed) };
    for d in demands {
        let owner = format!("{namespace}/{}", d.placement);
        if status.claims.iter().any(|c| c.owner == owner) {
            claimed.push(d.clone());
            continue;
        }
        if !d.resources.fits_in(&free) {
            continue;
        }
        free = free.saturating_sub(&d.resources);
        status.claims.push(Claim {
            kind: ClaimKind::Placement,
            owner,
            uid: String::new(),
            resources: d.resources.to_resources(),
            created_at: Some(now.to_string()),
        });
        claimed.push(d.clone());
    }
    status.allocated = status.claimed().unwrap_or(ResourceVec::ZERO).to_resources();
    (next, claimed)
}

/// The agent with the claims of `owners` removed (and `allocated` recomputed).
pub fn without_claims(agent: &Agent, owners: &[String]) -> Agent {
    let mut next = agent.clone();
    let status = next.status.get_or_insert_with(Default::default);
    status.claims.retain(|c| !owners.contains(&c.owner));
    status.allocated = status.claimed().map(|r| r.to_resources()).unwrap_or_else(|_| Resources::default());
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{AgentSpec, AgentStatus};

    fn agent(cpu: &str, mem: &str) -> Agent {
        let mut a = Agent::new("a1", AgentSpec::default());
        a.status = Some(AgentStatus {
            allocatable: Resources { cpu: Some(cpu.into()), memory: Some(mem.into()) },
            ..Default::default()
        });
        a
    }

    fn demand(name: &str, cpu: u64, mem: u64) -> Demand {
        Demand { placement: name.into(), resources: ResourceVec::new(cpu, mem) }
    }

    #[test]
    fn claims_only_what_fits_and_keeps_allocated_in_step() {
        let a = agent("1", "1Gi");
        let (next, claimed) =
            with_claims(&a, "default", &[demand("p0", 600, 1 << 29), demand("p1", 600, 1 << 29)], "t");
        assert_eq!(claimed.len(), 1);
        let st = next.status.unwrap();
        assert_eq!(st.claims.len(), 1);
        assert_eq!(st.allocated.cpu, Some("600m".into()));
    }

    #[test]
    fn claiming_twice_is_idempotent() {
        let a = agent("1", "1Gi");
        let (once, _) = with_claims(&a, "default", &[demand("p0", 100, 1 << 20)], "t");
        let (twice, claimed) = with_claims(&once, "default", &[demand("p0", 100, 1 << 20)], "t");
        assert_eq!(claimed.len(), 1);
        assert_eq!(twice.status.unwrap().claims.len(), 1);
    }

    #[test]
    fn releasing_frees_the_resources() {
        let a = agent("1", "1Gi");
        let (held, _) = with_claims(&a, "default", &[demand("p0", 1000, 1 << 30)], "t");
        let freed = without_claims(&held, &["default/p0".to_string()]);
        assert_eq!(freed.status.unwrap().free().unwrap(), ResourceVec::new(1000, 1 << 30));
    }
}
