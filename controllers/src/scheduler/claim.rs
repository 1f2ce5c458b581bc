//! The applier: writes a plan's claims into agents' ledgers with the
//! agent's resourceVersion as precondition. A stale write gets 409; then the
//! agent is read again and only what still fits is claimed (Omega's
//! optimistic transactions, Nomad's plan applier).

use std::collections::HashMap;

use berth_api::ports;
use berth_api::{Agent, Claim, ClaimKind, ResourceVec, Resources};
use kube::api::{Api, PostParams};

use super::plan::Demand;
use crate::Error;

/// How often one agent's ledger write is retried after a conflict.
const MAX_ATTEMPTS: usize = 8;

/// Claims `demands` on `agent` (first from `cached`, then fresh on conflict).
/// Returns the demands that were claimed (the rest no longer fit) and the
/// agent as written, when it was.
pub async fn claim_on_agent(
    api: &Api<Agent>,
    cached: Option<Agent>,
    agent: &str,
    namespace: &str,
    demands: &[Demand],
    now: &str,
) -> Result<(Vec<Demand>, Option<Agent>), Error> {
    let mut current = match cached {
        Some(a) => a,
        None => api.get(agent).await?,
    };
    for _ in 0..MAX_ATTEMPTS {
        let (next, claimed) = with_claims(&current, namespace, demands, now);
        if claimed.is_empty() {
            return Ok((claimed, None));
        }
        // Nothing new to write: every demand is already claimed here.
        if next.status.as_ref().map(|s| s.claims.len()) == current.status.as_ref().map(|s| s.claims.len()) {
            return Ok((claimed, None));
        }
        match api.replace_status(agent, &PostParams::default(), &next).await {
            Ok(written) => return Ok((claimed, Some(written))),
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

/// The agent with every demand that fits added to its ledger, in order,
/// each with its host ports: the plan's when they are all still free, else
/// the lowest free ones. A demand already claimed (same owner) counts as
/// claimed (with the ports its claim holds) and is not added twice.
pub fn with_claims(agent: &Agent, namespace: &str, demands: &[Demand], now: &str) -> (Agent, Vec<Demand>) {
    let mut next = agent.clone();
    let status = next.status.get_or_insert_with(Default::default);
    let mut claimed = Vec::new();
    let Ok(mut free) = status.free() else { return (next, claimed) };
    let mut free_ports = status.free_ports();
    let held: HashMap<&str, &[u16]> = status.claims.iter().map(|c| (c.owner.as_str(), c.ports.as_slice())).collect();
    let mut new_claims = Vec::new();
    for d in demands {
        let owner = format!("{namespace}/{}", d.placement);
        if let Some(ports) = held.get(owner.as_str()) {
            claimed.push(Demand { host_ports: ports.to_vec(), ..d.clone() });
            continue;
        }
        if !d.resources.fits_in(&free) {
            continue;
        }
        let planned =
            d.host_ports.len() == d.ports as usize && d.host_ports.iter().all(|p| ports::contains(&free_ports, *p));
        let host_ports = match planned {
            true => d.host_ports.clone(),
            false => match ports::lowest(&free_ports, d.ports) {
                Some(p) => p,
                None => continue,
            },
        };
        free = free.saturating_sub(&d.resources);
        free_ports = ports::minus(&free_ports, host_ports.iter().copied());
        new_claims.push(Claim {
            kind: ClaimKind::Placement,
            owner,
            uid: String::new(),
            resources: d.resources.to_resources(),
            ports: host_ports.clone(),
            created_at: Some(now.to_string()),
        });
        claimed.push(Demand { host_ports, ..d.clone() });
    }
    drop(held);
    status.claims.extend(new_claims);
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
        Demand::new(name, ResourceVec::new(cpu, mem), 0)
    }

    #[test]
    fn ports_taken_since_the_plan_are_replaced_by_the_lowest_free() {
        let mut a = agent("1", "1Gi");
        a.status.as_mut().unwrap().ports = ports::parse("100-103").unwrap();
        let planned = Demand { host_ports: vec![100, 101], ..Demand::new("p0", ResourceVec::new(1, 1), 2) };
        let (once, claimed) = with_claims(&a, "default", std::slice::from_ref(&planned), "t");
        assert_eq!(claimed[0].host_ports, vec![100, 101], "the plan's ports, still free");
        // Another scheduler's plan made from the same snapshot wants the same ports.
        let rival = Demand { placement: "p1".into(), ..planned.clone() };
        let (twice, claimed) = with_claims(&once, "default", std::slice::from_ref(&rival), "t");
        assert_eq!(claimed[0].host_ports, vec![102, 103]);
        assert_eq!(twice.status.as_ref().unwrap().claims[1].ports, vec![102, 103]);
        // No ports left: the third does not fit, whatever its cpu and memory.
        let third = Demand { placement: "p2".into(), ..rival };
        let (_, claimed) = with_claims(&twice, "default", &[third], "t");
        assert!(claimed.is_empty());
        // Claiming again reports the ports the claim holds.
        let (_, again) = with_claims(&twice, "default", &[planned], "t");
        assert_eq!(again[0].host_ports, vec![100, 101]);
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
