//! What an update may change in an object's metadata, as Kubernetes'
//! `ValidateObjectMetaUpdate`: `name`, `namespace` and `uid` never change;
//! an object being deleted may lose finalizers but gain none. The other
//! fields the server owns are kept from the stored object silently.

use serde_json::Value;

use super::object;
use crate::error::{Cause, Error, Result};
use crate::registry::Kind;

fn invalid(kind: &Kind, current: &Value, causes: Vec<Cause>) -> Error {
    Error::Invalid(object::invalid_subject(kind, object::name(current).unwrap_or_default()), causes)
}

/// Refuses a desired object that renames, moves or re-identifies the current one.
pub fn check_immutable(kind: &Kind, current: &Value, desired: &Value) -> Result<()> {
    let causes: Vec<Cause> = ["name", "namespace", "uid"]
        .into_iter()
        .filter_map(|field| {
            let want = object::meta_str(desired, field).filter(|v| !v.is_empty())?;
            let have = object::meta_str(current, field).unwrap_or_default();
            (want != have).then(|| Cause {
                reason: "FieldValueInvalid",
                field: format!("metadata.{field}"),
                message: format!("Invalid value: {want:?}: field is immutable"),
            })
        })
        .collect();
    if causes.is_empty() { Ok(()) } else { Err(invalid(kind, current, causes)) }
}

/// An object being deleted may lose finalizers but gain none.
pub fn check_finalizers(kind: &Kind, current: &Value, next: &Value) -> Result<()> {
    if !object::meta(current).is_some_and(|m| m.contains_key("deletionTimestamp")) {
        return Ok(());
    }
    let had = object::finalizer_names(current);
    let added: Vec<String> = object::finalizer_names(next).into_iter().filter(|f| !had.contains(f)).collect();
    if added.is_empty() {
        return Ok(());
    }
    let cause = Cause {
        reason: "FieldValueForbidden",
        field: "metadata.finalizers".into(),
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        ),
    };
    Err(invalid(kind, current, vec![cause]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kind() -> Kind {
        crate::registry::builtin::kinds().into_iter().find(|k| k.plural == "secrets").expect("secrets")
    }

    #[test]
    fn names_namespaces_and_uids_are_immutable() {
        let current = json!({"metadata": {"name": "a", "namespace": "default", "uid": "u1"}});
        assert!(check_immutable(&kind(), &current, &json!({"metadata": {"name": "a"}})).is_ok());
        assert!(check_immutable(&kind(), &current, &json!({"metadata": {}})).is_ok(), "unset keeps");
        let e = check_immutable(&kind(), &current, &json!({"metadata": {"name": "b", "uid": "u2"}})).expect_err("x");
        assert_eq!(e.code(), 422);
        let text = e.to_string();
        assert!(
            text.contains("metadata.name") && text.contains("metadata.uid") && text.contains("immutable"),
            "{text}"
        );
    }

    #[test]
    fn deleting_objects_gain_no_finalizers() {
        let current = json!({"metadata": {"name": "a", "deletionTimestamp": "t", "finalizers": ["x", "y"]}});
        assert!(check_finalizers(&kind(), &current, &json!({"metadata": {"finalizers": ["y"]}})).is_ok());
        let e = check_finalizers(&kind(), &current, &json!({"metadata": {"finalizers": ["x", "z"]}})).expect_err("z");
        assert!(e.to_string().contains("metadata.finalizers"), "{e}");
        let live = json!({"metadata": {"name": "a"}});
        assert!(check_finalizers(&kind(), &live, &json!({"metadata": {"finalizers": ["z"]}})).is_ok());
    }
}
