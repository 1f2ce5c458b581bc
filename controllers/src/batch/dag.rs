//! `dependsOn`: task groups form a DAG. A group starts only once every
//! group it depends on is complete (all its instances' latest attempts
//! succeeded); it is skipped, and never starts, when one of them failed or
//! was itself skipped. The API server refuses cycles and unknown names; here
//! they only keep a group waiting, never loop.

use std::collections::{BTreeMap, BTreeSet};

use berth_api::TaskGroup;

/// How a group's own instances stand, its dependencies aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every instance succeeded.
    Complete,
    /// An instance failed beyond its retries.
    Failed,
    /// Neither yet.
    Open,
}

/// Whether a group may start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Waiting for these groups to complete, in `dependsOn` order.
    Waiting(Vec<String>),
    /// This dependency failed or was skipped.
    Skipped(String),
}

/// The gate of each of `groups` (same order), given each group's own outcome by name.
pub fn gates(groups: &[TaskGroup], own: &BTreeMap<&str, Outcome>) -> Vec<Gate> {
    let by_name: BTreeMap<&str, &TaskGroup> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut memo: BTreeMap<String, Gate> = BTreeMap::new();
    groups.iter().map(|g| gate(g, &by_name, own, &mut memo, &mut BTreeSet::new())).collect()
}

fn gate(
    g: &TaskGroup,
    by_name: &BTreeMap<&str, &TaskGroup>,
    own: &BTreeMap<&str, Outcome>,
    memo: &mut BTreeMap<String, Gate>,
    visiting: &mut BTreeSet<String>,
) -> Gate {
    if let Some(known) = memo.get(&g.name) {
        return known.clone();
    }
    if !visiting.insert(g.name.clone()) {
        return Gate::Waiting(vec![g.name.clone()]);
    }
    let mut waiting = Vec::new();
    let mut skipped = None;
    for d in &g.depends_on {
        let Some(dep) = by_name.get(d.as_str()) else {
            waiting.push(d.clone());
            continue;
        };
        let dep_gate = gate(dep, by_name, own, memo, visiting);
        match (own.get(d.as_str()).copied().unwrap_or(Outcome::Open), dep_gate) {
            (Outcome::Failed, _) | (_, Gate::Skipped(_)) => {
                skipped = Some(d.clone());
                break;
            }
            (Outcome::Complete, _) => {}
            _ => waiting.push(d.clone()),
        }
    }
    visiting.remove(&g.name);
    let out = match (skipped, waiting.is_empty()) {
        (Some(d), _) => Gate::Skipped(d),
        (None, true) => Gate::Open,
        (None, false) => Gate::Waiting(waiting),
    };
    memo.insert(g.name.clone(), out.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, deps: &[&str]) -> TaskGroup {
        TaskGroup { name: name.into(), depends_on: deps.iter().map(|d| d.to_string()).collect(), ..Default::default() }
    }

    fn etl() -> Vec<TaskGroup> {
        vec![
            group("load", &["transform", "extract"]),
            group("extract", &[]),
            group("transform", &["extract"]),
            group("report", &["load"]),
        ]
    }

    #[test]
    fn a_group_waits_until_every_dependency_is_complete() {
        let groups = etl();
        let own = BTreeMap::from([("extract", Outcome::Open)]);
        let g = gates(&groups, &own);
        assert_eq!(g[0], Gate::Waiting(vec!["transform".into(), "extract".into()]));
        assert_eq!(g[1], Gate::Open);
        assert_eq!(g[2], Gate::Waiting(vec!["extract".into()]));
        assert_eq!(g[3], Gate::Waiting(vec!["load".into()]));

        let own = BTreeMap::from([("extract", Outcome::Complete), ("transform", Outcome::Complete)]);
        assert_eq!(gates(&groups, &own)[0], Gate::Open);
        assert_eq!(gates(&groups, &own)[3], Gate::Waiting(vec!["load".into()]));
    }

    #[test]
    fn a_failed_dependency_skips_every_group_downstream() {
        let own = BTreeMap::from([("extract", Outcome::Complete), ("transform", Outcome::Failed)]);
        let g = gates(&etl(), &own);
        assert_eq!(g[0], Gate::Skipped("transform".into()));
        assert_eq!(g[3], Gate::Skipped("load".into()));
        assert_eq!((g[1].clone(), g[2].clone()), (Gate::Open, Gate::Open));
    }

    #[test]
    fn a_cycle_or_unknown_name_waits_instead_of_looping() {
        let groups = vec![group("a", &["b"]), group("b", &["a"]), group("c", &["nope"])];
        let g = gates(&groups, &BTreeMap::new());
        assert!(matches!(g[0], Gate::Waiting(_)) && matches!(g[1], Gate::Waiting(_)));
        assert_eq!(g[2], Gate::Waiting(vec!["nope".into()]));
    }
}
