//! Constraint evaluation, pure: given the agents and the agents a task
//! group's instances already run on, which agents the next instance may go
//! to — and, for each one it may not, why (in the words the user wrote the
//! constraint in, so `0/5 agents fit: 2 excluded by UNIQUE hostname` points
//! at the line of YAML to change).
//!
//! Semantics follow Marathon: an agent lacking the attribute satisfies only
//! `UNLIKE`; `LIKE`/`UNLIKE` match the whole value; `CLUSTER` without a
//! value sticks to the value of the first placed instance; `GROUP_BY`
//! admits only agents whose value has the fewest instances, counting every
//! value a schedulable agent has (and, with `n`, at least `n` groups).

use std::collections::BTreeMap;

use berth_api::constraint::{Constraint, Operator};

use super::plan::AgentView;

/// For each of `agents`, `None` when the next instance may go there under
/// every constraint, or why not. `placed` are the agents the group's live
/// instances are on (an agent may appear once per instance).
pub fn exclusions(constraints: &[Constraint], agents: &[AgentView], placed: &[&AgentView]) -> Vec<Option<String>> {
    let checks: Vec<Check> = constraints.iter().map(|c| Check::new(c, agents, placed)).collect();
    agents.iter().map(|a| checks.iter().find_map(|c| c.why_not(a))).collect()
}

/// One constraint with what it needs counted once per planning step: the
/// instances per attribute value, and for `GROUP_BY` the fewest of any value.
struct Check<'a> {
    c: &'a Constraint,
    /// Placed instances per value of the attribute.
    counts: BTreeMap<&'a str, usize>,
    /// The value of the first placed instance (`CLUSTER` without a value).
    first: Option<&'a str>,
    /// `GROUP_BY`: the most instances a value may have for the next one to go there.
    fewest: usize,
}

impl<'a> Check<'a> {
    fn new(c: &'a Constraint, agents: &'a [AgentView], placed: &[&'a AgentView]) -> Check<'a> {
        let attr = c.attribute.as_str();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut first = None;
        for v in placed.iter().filter_map(|p| p.attributes.get(attr)) {
            first = first.or(Some(v.as_str()));
            *counts.entry(v).or_default() += 1;
        }
        let mut fewest = 0;
        if c.operator == Operator::GroupBy {
            // Every value a schedulable agent has is a group, used or not.
            let mut groups = counts.clone();
            for v in agents.iter().filter(|a| a.excluded.is_none()).filter_map(|a| a.attributes.get(attr)) {
                groups.entry(v).or_default();
            }
            if groups.len() as u32 >= c.number.unwrap_or(0) {
                fewest = groups.values().copied().min().unwrap_or(0);
            }
        }
        Check { c, counts, first, fewest }
    }

    /// Why the constraint keeps the next instance off `agent`, or `None`.
    fn why_not(&self, agent: &AgentView) -> Option<String> {
        let c = self.c;
        let Some(value) = agent.attributes.get(&c.attribute) else {
            return (c.operator != Operator::Unlike).then(|| format!("without attribute {} for {c}", c.attribute));
        };
        let count = self.counts.get(value.as_str()).copied().unwrap_or(0);
        let ok = match c.operator {
            Operator::Unique => count == 0,
            Operator::Cluster => match (&c.value, self.first) {
                (Some(want), _) => value == want,
                (None, Some(first)) => value == first,
                (None, None) => true,
            },
            Operator::GroupBy => count <= self.fewest,
            Operator::Like => c.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Operator::Unlike => !c.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Operator::MaxPer => (count as u32) < c.number.unwrap_or(u32::MAX),
        };
        (!ok).then(|| format!("excluded by {c}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::ResourceVec;

    fn agent(name: &str, rack: Option<&str>) -> AgentView {
        let mut attributes = BTreeMap::from([("hostname".to_string(), name.to_string())]);
        if let Some(r) = rack {
            attributes.insert("rack".into(), r.into());
        }
        AgentView { name: name.into(), free: ResourceVec::new(1000, 1 << 30), attributes, ..Default::default() }
    }

    fn constraint(raw: &[&str]) -> Constraint {
        Constraint::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn agents() -> Vec<AgentView> {
        vec![agent("a", Some("r1")), agent("b", Some("r1")), agent("c", Some("r2")), agent("d", None)]
    }

    /// The names of the agents the next instance may go to.
    fn allowed(raw: &[&str], placed: &[usize]) -> Vec<String> {
        let agents = agents();
        let placed: Vec<&AgentView> = placed.iter().map(|i| &agents[*i]).collect();
        let ex = exclusions(&[constraint(raw)], &agents, &placed);
        agents.iter().zip(ex).filter(|(_, e)| e.is_none()).map(|(a, _)| a.name.clone()).collect()
    }

    #[test]
    fn unique_keeps_one_instance_per_value() {
        assert_eq!(allowed(&["hostname", "UNIQUE"], &[0]), ["b", "c", "d"]);
        assert_eq!(allowed(&["rack", "UNIQUE"], &[0]), ["c"], "r1 is taken and d has no rack");
    }

    #[test]
    fn cluster_sticks_to_the_value_given_or_first_placed() {
        assert_eq!(allowed(&["rack", "CLUSTER", "r2"], &[]), ["c"]);
        assert_eq!(allowed(&["rack", "CLUSTER"], &[]), ["a", "b", "c"]);
        assert_eq!(allowed(&["rack", "CLUSTER"], &[2]), ["c"]);
    }

    #[test]
    fn group_by_admits_only_the_least_used_values() {
        assert_eq!(allowed(&["rack", "GROUP_BY"], &[]), ["a", "b", "c"]);
        assert_eq!(allowed(&["rack", "GROUP_BY"], &[0]), ["c"]);
        assert_eq!(allowed(&["rack", "GROUP_BY"], &[0, 2]), ["a", "b", "c"]);
        // Three groups are wanted but only two values exist: no value is "least used" yet
        // unless it has none.
        assert_eq!(allowed(&["rack", "GROUP_BY", "3"], &[0, 2]), Vec::<String>::new());
    }

    #[test]
    fn like_and_unlike_match_whole_values_and_unlike_admits_the_unlabelled() {
        assert_eq!(allowed(&["rack", "LIKE", "r1"], &[]), ["a", "b"]);
        assert_eq!(allowed(&["rack", "LIKE", "r"], &[]), Vec::<String>::new());
        assert_eq!(allowed(&["rack", "UNLIKE", "r1"], &[]), ["c", "d"]);
        assert_eq!(allowed(&["hostname", "LIKE", "[ab]"], &[]), ["a", "b"]);
    }

    #[test]
    fn max_per_caps_instances_per_value() {
        assert_eq!(allowed(&["rack", "MAX_PER", "2"], &[0]), ["a", "b", "c"]);
        assert_eq!(allowed(&["rack", "MAX_PER", "2"], &[0, 1]), ["c"]);
    }

    #[test]
    fn an_exclusion_names_the_constraint_as_written() {
        let agents = agents();
        let ex = exclusions(
            &[constraint(&["hostname", "UNIQUE"]), constraint(&["rack", "LIKE", "r1"])],
            &agents,
            &[&agents[0]],
        );
        assert_eq!(
            ex,
            [
                Some("excluded by UNIQUE hostname".to_string()),
                None,
                Some("excluded by LIKE rack r1".to_string()),
                Some("without attribute rack for LIKE rack r1".to_string()),
            ]
        );
    }
}
