//! Everything about a Job's spec that its CRD schema cannot say: unique
//! task group names, `dependsOn` naming groups that exist and forming no
//! cycle, constraints, port names, health checks and update strategies.
//! Berth's API server refuses a Job that fails any of it with 422, naming
//! each bad field, and stores nothing; the Job controller checks again (a
//! Job stored by another API server) and reports `InvalidSpec`.

use std::collections::BTreeMap;

use crate::JobSpec;

/// One problem, at one field path (`spec.taskGroups[1].dependsOn[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem of `spec`, in field order.
pub fn job_spec(spec: &JobSpec) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in spec.task_groups.iter().enumerate() {
        if let Some(first) = index.insert(&g.name, i) {
            index.insert(&g.name, first);
            out.push(FieldError::new(
                format!("spec.taskGroups[{i}].name"),
                format!("{:?} is already the name of spec.taskGroups[{first}]", g.name),
            ));
        }
    }
    for (i, g) in spec.task_groups.iter().enumerate() {
        let prefix = format!("spec.taskGroups[{i}]");
        for (j, dep) in g.depends_on.iter().enumerate() {
            let field = format!("{prefix}.dependsOn[{j}]");
            if dep == &g.name {
                out.push(FieldError::new(field, "a task group cannot depend on itself"));
            } else if !index.contains_key(dep.as_str()) {
                let known: Vec<&str> = index.keys().copied().collect();
                out.push(FieldError::new(
                    field,
                    format!("no task group named {dep:?} (task groups: {})", known.join(", ")),
                ));
            }
        }
        for (j, raw) in g.constraints.iter().enumerate() {
            if let Err(e) = crate::constraint::Constraint::parse(raw) {
                out.push(FieldError::new(format!("{prefix}.constraints[{j}]"), e.to_string()));
            }
        }
        if let Some(s) = &g.update_strategy {
            for (name, v) in [("maxSurge", &s.max_surge), ("maxUnavailable", &s.max_unavailable)] {
                if let Some(Err(why)) = v.as_ref().map(|v| v.resolve(g.instances(), true)) {
                    out.push(FieldError::new(format!("{prefix}.updateStrategy.{name}"), why));
                }
            }
        }
        crate::health::validate(&g.container, &prefix, &mut out);
    }
    if let Err(e) = crate::ports::validate(&spec.task_groups) {
        let (field, message) = e.split_once(": ").unwrap_or(("spec.taskGroups", &e));
        out.push(FieldError::new(field, message));
    }
    if let Some(cycle) = dependency_cycle(spec) {
        out.push(cycle);
    }
    out
}

/// The first problem of `spec`, as `field: message`.
pub fn first_problem(spec: &JobSpec) -> Option<String> {
    job_spec(spec).first().map(ToString::to_string)
}

/// A cycle among `dependsOn` (ignoring unknown names), reported at the
/// edge that closes it, with the whole path.
fn dependency_cycle(spec: &JobSpec) -> Option<FieldError> {
    let groups = &spec.task_groups;
    let index: BTreeMap<&str, usize> = groups.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; groups.len()];
    let mut path: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        groups: &[crate::TaskGroup],
        index: &BTreeMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<FieldError> {
        state[i] = 1;
        path.push(i);
        for (j, dep) in groups[i].depends_on.iter().enumerate() {
            let Some(&d) = index.get(dep.as_str()) else { continue };
            if d == i {
                continue;
            }
            if state[d] == 1 {
                let start = path.iter().position(|p| *p == d).unwrap_or(0);
                let mut names: Vec<&str> = path[start..].iter().map(|p| groups[*p].name.as_str()).collect();
                names.push(&groups[d].name);
                return Some(FieldError::new(
                    format!("spec.taskGroups[{i}].dependsOn[{j}]"),
                    format!("dependencies form a cycle: {}", names.join(" -> ")),
                ));
            }
            if state[d] == 0
                && let Some(e) = visit(d, groups, index, state, path)
            {
                return Some(e);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    (0..groups.len()).find_map(|i| if state[i] == 0 { visit(i, groups, &index, &mut state, &mut path) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskGroup;

    fn group(name: &str, deps: &[&str]) -> TaskGroup {
        TaskGroup { name: name.into(), depends_on: deps.iter().map(|d| d.to_string()).collect(), ..Default::default() }
    }

    fn spec(groups: Vec<TaskGroup>) -> JobSpec {
        JobSpec { task_groups: groups, ..Default::default() }
    }

    #[test]
    fn a_dag_is_valid() {
        let s = spec(vec![
            group("extract", &[]),
            group("transform", &["extract"]),
            group("load", &["transform", "extract"]),
        ]);
        assert_eq!(job_spec(&s), vec![]);
    }

    #[test]
    fn a_cycle_is_named_with_its_path() {
        let s = spec(vec![group("a", &["c"]), group("b", &["a"]), group("c", &["b"])]);
        let errs = job_spec(&s);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec.taskGroups[1].dependsOn[0]", "b closes the cycle");
        assert_eq!(errs[0].message, "dependencies form a cycle: a -> c -> b -> a");
    }

    #[test]
    fn unknown_self_and_duplicate_names_are_refused() {
        let s = spec(vec![group("a", &["nope"]), group("b", &["b"]), group("a", &[])]);
        let fields: Vec<String> = job_spec(&s).into_iter().map(|e| e.to_string()).collect();
        assert_eq!(
            fields,
            [
                "spec.taskGroups[2].name: \"a\" is already the name of spec.taskGroups[0]",
                "spec.taskGroups[0].dependsOn[0]: no task group named \"nope\" (task groups: a, b)",
                "spec.taskGroups[1].dependsOn[0]: a task group cannot depend on itself",
            ]
        );
    }

    #[test]
    fn bad_constraints_and_strategies_are_named() {
        let mut g = group("a", &[]);
        g.constraints = vec![vec!["hostname".into(), "NEAR".into()]];
        g.update_strategy = Some(crate::rollout::UpdateStrategy {
            max_surge: Some(crate::rollout::IntOrPercent::Percent("lots".into())),
            ..Default::default()
        });
        let fields: Vec<String> = job_spec(&spec(vec![g])).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["spec.taskGroups[0].constraints[0]", "spec.taskGroups[0].updateStrategy.maxSurge"]);
    }
}
