//! Admission: what an object must satisfy before it is stored — a valid
//! name, valid labels, and the kind's schema (which also prunes unknown
//! fields and applies defaults). Every problem is reported at once.

use serde_json::Value;

use super::object;
use super::params::{FieldValidation, Params};
use crate::error::{Cause, Error, Result};
use crate::registry::Kind;
use crate::validation::{names, schema};

const OBJECT_META: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Checks (and prunes and defaults) `obj`; returns warnings for the client.
pub fn admit(kind: &Kind, obj: &mut Value, params: &Params) -> Result<Vec<String>> {
    let name = object::name(obj).unwrap_or_default().to_string();
    let mut causes = Vec::new();
    let mut unknown = Vec::new();
    let check_name =
        if kind.group.is_empty() && kind.kind == "Namespace" { names::dns_label } else { names::dns_subdomain };
    let meta_value = |k: &str| object::meta(obj).and_then(|m| m.get(k)).filter(|v| !v.is_string() && !v.is_null());
    for field in ["name", "generateName", "namespace"] {
        if let Some(v) = meta_value(field) {
            causes.push(Cause {
                reason: "FieldValueTypeInvalid",
                field: format!("metadata.{field}"),
                message: format!("Invalid value: {v}: must be a string"),
            });
        }
    }
    let typed = causes.is_empty();
    if typed && name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else if let Some(why) = check_name(&name).filter(|_| typed) {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: "metadata.name".into(),
            message: format!("Invalid value: {name:?}: {why}"),
        });
    }
    let meta = object::meta_mut(obj);
    let extra: Vec<String> = meta.keys().filter(|k| !OBJECT_META.contains(&k.as_str())).cloned().collect();
    for k in extra {
        meta.remove(&k);
        unknown.push(format!("metadata.{k}"));
    }
    causes.extend(names::check_metadata(meta));
    if let Some(s) = &kind.schema {
        let out = schema::check(s, obj);
        causes.extend(out.errors);
        unknown.extend(out.unknown);
    }
    let mut warnings = Vec::new();
    match params.field_validation {
        // As Kubernetes: decoding fails before validation runs.
        FieldValidation::Strict if !unknown.is_empty() => {
            let fields = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect::<Vec<_>>().join(", ");
            return Err(Error::BadRequest(format!("strict decoding error: {fields}")));
        }
        FieldValidation::Strict | FieldValidation::Ignore => {}
        FieldValidation::Warn => warnings.extend(unknown.into_iter().map(|f| format!("unknown field \"{f}\""))),
    }
    if !causes.is_empty() {
        return Err(Error::Invalid(object::invalid_subject(kind, &name), causes));
    }
    check_size(obj)?;
    Ok(warnings)
}

/// The largest object stored: etcd's default request limit (1.5 MiB).
pub const OBJECT_LIMIT: usize = 1536 * 1024;

/// Refuses an object whose stored form is over [`OBJECT_LIMIT`].
pub fn check_size(obj: &Value) -> Result<()> {
    let size = object::encoded_len(obj);
    if size > OBJECT_LIMIT {
        return Err(Error::TooLarge(format!(
            "Request entity too large: the object is {size} bytes, over the limit of {OBJECT_LIMIT} bytes (1.5 MiB)"
        )));
    }
    Ok(())
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

    fn job(name: &str, tg: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"taskGroups": [tg]}})
    }

    #[test]
    fn strict_refuses_unknown_fields_and_names_them() {
        let params = Params { field_validation: FieldValidation::Strict, ..Default::default() };
        let mut obj = job("hello", json!({"name": "main", "image": "i", "imagee": "x"}));
        let err = admit(&job_kind(), &mut obj, &params).expect_err("strict");
        assert_eq!(err.to_string(), "strict decoding error: unknown field \"spec.taskGroups[0].imagee\"");
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn warn_prunes_and_warns() {
        let mut obj = job("hello", json!({"name": "main", "image": "i", "imagee": "x"}));
        let warnings = admit(&job_kind(), &mut obj, &Params::default()).expect("warn");
        assert_eq!(warnings, ["unknown field \"spec.taskGroups[0].imagee\""]);
        assert!(obj["spec"]["taskGroups"][0].get("imagee").is_none());
    }

    #[test]
    fn bad_names_and_values_are_invalid_together() {
        let mut obj = job("Hello_World", json!({"name": "main", "resources": {"memory": "12x"}}));
        let err = admit(&job_kind(), &mut obj, &Params::default()).expect_err("invalid");
        let Error::Invalid(_, causes) = err else { panic!("not Invalid") };
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "spec.taskGroups[0].image", "spec.taskGroups[0].resources.memory"]);
    }
}
