//! A Job's spec is checked beyond its schema before it is stored: unique
//! task group names, a `dependsOn` DAG without unknown names or cycles,
//! constraints, port names, health checks and update strategies
//! (`berth_api::validate`). Every problem is reported at once with 422,
//! naming its field, and nothing is stored. Status writes are not checked:
//! a controller must be able to report on a Job stored before a rule existed.

use serde_json::Value;

use super::object;
use crate::error::{Cause, Error, Result};
use crate::registry::Kind;

fn is_job(kind: &Kind) -> bool {
    !kind.builtin && kind.group == berth_api::GROUP && kind.kind == "Job"
}

/// Refuses a Job whose spec breaks a rule its schema cannot state.
pub fn check(kind: &Kind, obj: &Value) -> Result<()> {
    if !is_job(kind) {
        return Ok(());
    }
    // The schema was checked first: a spec that does not read is reported there.
    let Some(spec) = obj.get("spec").and_then(|s| serde_json::from_value::<berth_api::JobSpec>(s.clone()).ok()) else {
        return Ok(());
    };
    let causes: Vec<Cause> = berth_api::validate::job_spec(&spec)
        .into_iter()
        .map(|e| Cause {
            reason: "FieldValueInvalid",
            field: e.field,
            message: format!("Invalid value: {}", e.message),
        })
        .collect();
    if causes.is_empty() {
        return Ok(());
    }
    let name = object::name(obj).unwrap_or_default().to_string();
    Err(Error::Invalid(object::invalid_subject(kind, &name), causes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::crd;

    fn job_kind() -> Kind {
        let c = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Job").expect("crd");
        crd::kinds_of(&serde_json::to_value(&c).expect("json")).remove(0)
    }

    fn group(name: &str, deps: &[&str]) -> Value {
        json!({"name": name, "image": "busybox", "dependsOn": deps})
    }

    #[test]
    fn a_cycle_and_an_unknown_dependency_are_refused_naming_each_field() {
        let obj = json!({
            "metadata": {"name": "etl"},
            "spec": {"taskGroups": [group("a", &["b"]), group("b", &["a"]), group("c", &["nope"])]},
        });
        let Err(Error::Invalid(_, causes)) = check(&job_kind(), &obj) else { panic!("accepted") };
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.taskGroups[2].dependsOn[0]", "spec.taskGroups[1].dependsOn[0]"]);
        assert!(causes[1].message.contains("cycle: a -> b -> a"), "{}", causes[1].message);
    }

    #[test]
    fn a_dag_is_admitted() {
        let obj = json!({"metadata": {"name": "etl"}, "spec": {"taskGroups": [group("a", &[]), group("b", &["a"])]}});
        check(&job_kind(), &obj).unwrap();
    }
}
