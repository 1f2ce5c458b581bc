//! DESIGN.md's invariants as checks any test can call on what it observed.

use crate::{Agent, Placement};

/// Invariant 1, no overcommit: on every agent, the claims in its ledger fit
/// its allocatable. Returns each violation as a sentence.
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
    }
    out
}

/// Panics, naming the agents, if any agent is overcommitted.
pub fn assert_no_overcommit(agents: &[Agent]) {
    let v = overcommits(agents);
    assert!(v.is_empty(), "overcommitted: {}", v.join("; "));
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
    use crate::{AgentSpec, AgentStatus, Claim, ClaimKind, Resources};

    #[test]
    fn a_ledger_over_allocatable_is_reported() {
        let mut a = Agent::new("a1", AgentSpec::default());
        let claim = |mem: &str| Claim {
            kind: ClaimKind::Placement,
            owner: format!("default/{mem}"),
            uid: String::new(),
            resources: Resources { cpu: None, memory: Some(mem.into()) },
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
}
