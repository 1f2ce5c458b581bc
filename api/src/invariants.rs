//! DESIGN.md's invariants as checks any test can call on what it observed.

use crate::{Agent, ClaimKind, Offer, OfferState, Placement};

/// Invariant 1, no overcommit: on every agent, the claims in its ledger fit
/// its allocatable, and no host port is held twice or outside the agent's
/// port ranges. Returns each violation as a sentence.
pub fn overcommits(agents: &[Agent]) -> Vec<String> {
    let mut out = Vec::new();
    for a in agents {
        let name = a.metadata.name.as_deref().unwrap_or("?");
        let Some(status) = &a.status else { continue };
        match (status.claimed(), status.allocatable.to_vec()) {
            (Ok(claimed), Ok(allocatable)) if !claimed.fits_in(&allocatable) => {
                out.push(format!("agent {name}: claims {claimed} exceed allocatable {allocatable}"))
            }
            (Err(e), _) | (_, Err(e)) => out.push(format!("agent {name}: unreadable ledger: {e}")),
            _ => {}
        }
        let mut held = std::collections::BTreeMap::<u16, &str>::new();
        for c in &status.claims {
            for p in &c.ports {
                if !crate::ports::contains(&status.ports, *p) {
                    out.push(format!("agent {name}: {} holds port {p}, outside the agent's ports", c.owner));
                } else if let Some(other) = held.insert(*p, &c.owner) {
                    out.push(format!("agent {name}: port {p} is held by both {other} and {}", c.owner));
                }
            }
        }
    }
    out
}

/// Panics, naming the agents, if any agent is overcommitted.
pub fn assert_no_overcommit(agents: &[Agent]) {
    let v = overcommits(agents);
    assert!(v.is_empty(), "overcommitted: {}", v.join("; "));
}

/// Invariant 3, offer exclusivity: every outstanding offer holds its
/// resources by its own hold claim in its agent's ledger (so, with no
/// overcommit, no capacity is offered twice). Returns each violation.
pub fn unheld_offers(agents: &[Agent], offers: &[Offer]) -> Vec<String> {
    let mut out = Vec::new();
    for o in offers {
        if o.status.as_ref().and_then(|s| s.state).is_some_and(|s| s != OfferState::Outstanding) {
            continue;
        }
        let id =
            format!("{}/{}", o.metadata.namespace.as_deref().unwrap_or(""), o.metadata.name.as_deref().unwrap_or("?"));
        let agent = agents.iter().find(|a| a.metadata.name.as_deref() == Some(o.spec.agent.as_str()));
        let hold = agent
            .and_then(|a| a.status.as_ref())
            .and_then(|s| s.claims.iter().find(|c| c.kind == ClaimKind::Hold && c.owner == id));
        match (hold.map(|c| c.resources.to_vec()), o.spec.resources.to_vec()) {
            (None, _) => out.push(format!("offer {id} on agent {} has no hold in its ledger", o.spec.agent)),
            (Some(Ok(h)), Ok(r)) if r.fits_in(&h) => {}
            (Some(h), r) => out.push(format!("offer {id} offers {r:?} but its hold is {h:?}")),
        }
    }
    out
}

/// Panics, naming the offers, if an outstanding offer is not held.
pub fn assert_offers_held(agents: &[Agent], offers: &[Offer]) {
    let v = unheld_offers(agents, offers);
    assert!(v.is_empty(), "offers not exclusive: {}", v.join("; "));
}

/// Invariant 2, at most one live attempt: no task instance has two
/// non-terminal placements. Returns each violation as a sentence.
pub fn double_attempts(placements: &[Placement]) -> Vec<String> {
    let mut live = std::collections::BTreeMap::<(String, String, String, u32), Vec<String>>::new();
    for p in placements {
        if p.status.as_ref().is_some_and(|s| s.phase.is_terminal()) {
            continue;
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let key = (ns, p.spec.job.clone(), p.spec.task_group.clone(), p.spec.instance);
        live.entry(key).or_default().push(p.metadata.name.clone().unwrap_or_default());
    }
    live.into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|((ns, job, group, i), names)| format!("{ns}/{job} {group}[{i}] has live placements {names:?}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentSpec, AgentStatus, Claim, Resources};

    #[test]
    fn a_ledger_over_allocatable_is_reported() {
        let mut a = Agent::new("a1", AgentSpec::default());
        let claim = |mem: &str| Claim {
            kind: ClaimKind::Placement,
            owner: format!("default/{mem}"),
            uid: String::new(),
            resources: Resources { cpu: None, memory: Some(mem.into()) },
            ports: Vec::new(),
            created_at: None,
        };
        a.status = Some(AgentStatus {
            allocatable: Resources { cpu: Some("1".into()), memory: Some("100Mi".into()) },
            claims: vec![claim("64Mi"), claim("60Mi")],
            ..Default::default()
        });
        assert_eq!(overcommits(std::slice::from_ref(&a)).len(), 1);
        a.status.as_mut().unwrap().claims.pop();
        assert!(overcommits(&[a]).is_empty());
    }

    #[test]
    fn a_port_held_twice_or_outside_the_ranges_is_reported() {
        let mut a = Agent::new("a1", AgentSpec::default());
        let claim = |owner: &str, ports: Vec<u16>| Claim {
            kind: ClaimKind::Placement,
            owner: owner.into(),
            uid: String::new(),
            resources: Resources::default(),
            ports,
            created_at: None,
        };
        a.status = Some(AgentStatus {
            ports: crate::ports::parse("100-101").unwrap(),
            claims: vec![claim("ns/p0", vec![100]), claim("ns/p1", vec![101])],
            ..Default::default()
        });
        assert!(overcommits(std::slice::from_ref(&a)).is_empty());
        a.status.as_mut().unwrap().claims.push(claim("ns/p2", vec![100, 102]));
        let v = overcommits(&[a]);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("port 100 is held by both ns/p0 and ns/p2"), "{v:?}");
        assert!(v[1].contains("port 102, outside"), "{v:?}");
    }

    #[test]
    fn an_outstanding_offer_without_its_hold_is_reported() {
        let res = Resources { cpu: Some("1".into()), memory: None };
        let mut offer = Offer::new(
            "o",
            crate::OfferSpec {
                framework: "f".into(),
                agent: "a1".into(),
                resources: res.clone(),
                ..Default::default()
            },
        );
        offer.metadata.namespace = Some("ns".into());
        let mut a = Agent::new("a1", AgentSpec::default());
        a.status = Some(AgentStatus::default());
        assert_eq!(unheld_offers(std::slice::from_ref(&a), std::slice::from_ref(&offer)).len(), 1);
        let hold = Claim {
            kind: ClaimKind::Hold,
            owner: "ns/o".into(),
            uid: String::new(),
            resources: res,
            ports: Vec::new(),
            created_at: None,
        };
        a.status.as_mut().unwrap().claims.push(hold);
        assert!(unheld_offers(std::slice::from_ref(&a), std::slice::from_ref(&offer)).is_empty());
        offer.status = Some(crate::OfferStatus { state: Some(OfferState::Rescinded), ..Default::default() });
        a.status.as_mut().unwrap().claims.clear();
        assert!(unheld_offers(&[a], &[offer]).is_empty(), "a closed offer needs no hold");
    }
}
