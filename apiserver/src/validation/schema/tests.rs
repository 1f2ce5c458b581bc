use serde_json::json;

use super::*;

fn job_schema() -> Value {
    let crd = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Job").expect("Job CRD");
    serde_json::to_value(&crd.spec.versions[0].schema.as_ref().expect("schema").open_api_v3_schema).expect("json")
}

fn job(task_group: Value) -> Value {
    json!({
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"taskGroups": [task_group]},
    })
}

fn fields(out: &Outcome) -> Vec<(String, &'static str)> {
    out.errors.iter().map(|c| (c.field.clone(), c.reason)).collect()
}

#[test]
fn a_valid_job_passes_and_gets_defaults() {
    let mut obj = job(json!({"name": "main", "image": "img", "resources": {"cpu": "100m", "memory": 32}}));
    let out = check(&job_schema(), &mut obj);
    assert!(out.errors.is_empty() && out.unknown.is_empty(), "{out:?}");
    let mut no_resources = job(json!({"name": "main", "image": "img"}));
    check(&job_schema(), &mut no_resources);
    assert_eq!(no_resources["spec"]["taskGroups"][0]["resources"], json!({}), "default {{}} applied");
}

#[test]
fn a_bad_quantity_is_named_by_its_path() {
    let mut obj = job(json!({"name": "main", "image": "img", "resources": {"memory": "12x"}}));
    let out = check(&job_schema(), &mut obj);
    assert_eq!(fields(&out), [("spec.taskGroups[0].resources.memory".to_string(), "FieldValueInvalid")]);
    assert!(out.errors[0].message.starts_with("Invalid value: \"12x\""), "{}", out.errors[0].message);
}

#[test]
fn int_or_string_refuses_other_types() {
    let mut obj = job(json!({"name": "main", "image": "img", "resources": {"cpu": true}}));
    let out = check(&job_schema(), &mut obj);
    assert_eq!(fields(&out), [("spec.taskGroups[0].resources.cpu".to_string(), "FieldValueTypeInvalid")]);
}

#[test]
fn every_error_is_reported() {
    let mut obj = job(json!({"name": "Bad Name", "instances": -1, "command": "not-a-list"}));
    let out = check(&job_schema(), &mut obj);
    let got = fields(&out);
    for want in [
        ("spec.taskGroups[0].image", "FieldValueRequired"),
        ("spec.taskGroups[0].name", "FieldValueInvalid"),
        ("spec.taskGroups[0].instances", "FieldValueInvalid"),
        ("spec.taskGroups[0].command", "FieldValueTypeInvalid"),
    ] {
        assert!(got.contains(&(want.0.to_string(), want.1)), "missing {want:?} in {got:?}");
    }
}

#[test]
fn missing_spec_and_empty_lists() {
    let schema = job_schema();
    let mut obj = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Job", "metadata": {"name": "x"}});
    assert_eq!(fields(&check(&schema, &mut obj)), [("spec".to_string(), "FieldValueRequired")]);
    let mut empty = json!({"metadata": {}, "spec": {"taskGroups": []}});
    assert_eq!(fields(&check(&schema, &mut empty)), [("spec.taskGroups".to_string(), "FieldValueInvalid")]);
}

#[test]
fn unknown_fields_are_pruned_and_reported() {
    let mut obj = job(json!({"name": "main", "image": "img", "colour": "blue"}));
    obj["spec"]["extra"] = json!(1);
    obj["metadata"]["whatever"] = json!(1);
    let out = check(&job_schema(), &mut obj);
    assert!(out.errors.is_empty(), "{out:?}");
    assert_eq!(out.unknown, ["spec.extra", "spec.taskGroups[0].colour"]);
    assert!(obj["spec"].get("extra").is_none());
    assert_eq!(obj["metadata"]["whatever"], 1, "metadata is not the schema's business");
}

#[test]
fn enums_nullable_and_preserve_unknown() {
    let schema = json!({
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["A", "B"]},
            "opt": {"type": "string", "nullable": true},
            "strict": {"type": "string"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    });
    let mut obj = json!({"mode": "C", "opt": null, "strict": null, "free": {"a": {"b": 1}}, "labels": {"x": 1}});
    let out = check(&schema, &mut obj);
    assert_eq!(
        fields(&out),
        [("labels[x]".to_string(), "FieldValueTypeInvalid"), ("mode".to_string(), "FieldValueNotSupported")]
    );
    assert!(out.errors[1].message.contains("supported values: \"A\", \"B\""), "{}", out.errors[1].message);
    assert_eq!(obj["opt"], Value::Null, "nullable null is kept");
    assert!(obj.get("strict").is_none(), "non-nullable null is pruned");
    assert_eq!(obj["free"]["a"]["b"], 1);
}

#[test]
fn numbers_and_combinators() {
    let schema = json!({
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "f": {"type": "number", "exclusiveMinimum": true, "minimum": 0},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%$"}], "x-kubernetes-int-or-string": true},
        }
    });
    let mut obj = json!({"n": 4, "f": 0, "either": "50"});
    let got = fields(&check(&schema, &mut obj));
    assert_eq!(
        got,
        [
            ("either".to_string(), "FieldValueInvalid"),
            ("f".to_string(), "FieldValueInvalid"),
            ("n".to_string(), "FieldValueInvalid")
        ]
    );
    let mut ok = json!({"n": 2, "f": 0.5, "either": "50%"});
    assert!(check(&schema, &mut ok).errors.is_empty());
    let mut float_for_int = json!({"n": 1.5});
    assert_eq!(fields(&check(&schema, &mut float_for_int)), [("n".to_string(), "FieldValueTypeInvalid")]);
}
