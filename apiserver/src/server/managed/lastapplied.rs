//! Moving from client-side to server-side apply, as Kubernetes does for
//! `kubectl`: fields whose live values still match the
//! `last-applied-configuration` annotation may be taken from their old
//! owners without a conflict, and the annotation follows what `kubectl`
//! applies server-side, so a later client-side apply diffs correctly.

use serde_json::Value;

use super::updater::{Conflict, Scope};
use super::walk::{compare, to_set};

/// The manager `kubectl apply --server-side` uses by default.
pub const KUBECTL: &str = "kubectl";

pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn last_applied(obj: &Value) -> Option<Value> {
    let text = obj.pointer("/metadata/annotations")?.get(ANNOTATION)?.as_str()?;
    serde_json::from_str(text).ok().filter(Value::is_object)
}

/// Whether `kubectl`'s `conflicts` are all on fields the live object still
/// has as last applied client-side (`admitted` defaults the annotation's
/// object as the live one was).
pub fn forgives(
    sc: &Scope<'_>,
    manager: &str,
    live: &Value,
    conflicts: &[Conflict],
    admitted: impl Fn(&Value) -> Value,
) -> bool {
    if manager != KUBECTL {
        return false;
    }
    let Some(last) = last_applied(live).map(|l| admitted(&l)) else { return false };
    let c = compare(sc.ty, &last, live);
    let allowed = to_set(sc.ty, &last).difference(&c.modified).difference(&c.removed);
    conflicts.iter().all(|c| allowed.has(&c.path.0))
}

/// Replaces the annotation, where there is one, with the applied configuration.
pub fn sync(obj: &mut Value, config: &Value) {
    if last_applied(obj).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(a) = applied.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove(ANNOTATION);
    }
    let text = serde_json::to_string(&applied).unwrap_or_default();
    if let Some(a) = obj.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.insert(ANNOTATION.into(), Value::String(text));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::entries::{Id, Managers};
    use super::super::fieldset::Set;
    use super::super::typed::Ty;
    use super::*;

    fn scope(schema: &Value) -> Scope<'_> {
        Scope { ty: Ty::root(Some(schema)), ignored: Set::default(), api_version: "g/v1".into(), now: "t".into() }
    }

    fn annotated(spec: Value, last: &Value) -> Value {
        json!({"metadata": {"annotations": {ANNOTATION: last.to_string()}}, "spec": spec})
    }

    #[test]
    fn kubectl_takes_over_fields_it_applied_client_side() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "integer"}}}}});
        let sc = scope(&schema);
        let csa = Id::new("kubectl-client-side-apply", false, "", "g/v1");
        let last = json!({"spec": {"a": 1}});
        let live = annotated(json!({"a": 1, "b": 2}), &last);
        let managers = sc.update(&json!({"metadata": {}}), &live, Managers::new(), &csa);
        let me = Id::new(KUBECTL, true, "", "");
        let conflicts =
            sc.apply(&live, &json!({"spec": {"a": 5}}), managers.clone(), &me, false).expect_err("conflict");
        let same = |v: &Value| v.clone();
        assert!(forgives(&sc, KUBECTL, &live, &conflicts, same), "a is as last applied");
        assert!(!forgives(&sc, "ci", &live, &conflicts, same), "only kubectl migrates");
        let conflicts = sc.apply(&live, &json!({"spec": {"b": 5}}), managers, &me, false).expect_err("conflict");
        assert!(!forgives(&sc, KUBECTL, &live, &conflicts, same), "b was never applied client-side");
        let drifted = annotated(json!({"a": 3, "b": 2}), &last);
        let managers = sc.update(&json!({"metadata": {}}), &drifted, Managers::new(), &csa);
        let conflicts = sc.apply(&drifted, &json!({"spec": {"a": 5}}), managers, &me, false).expect_err("conflict");
        assert!(!forgives(&sc, KUBECTL, &drifted, &conflicts, same), "a changed since it was applied");
    }

    #[test]
    fn the_annotation_follows_what_kubectl_applies() {
        let mut obj = annotated(json!({"a": 1}), &json!({"spec": {"a": 1}}));
        sync(&mut obj, &json!({"spec": {"a": 2}}));
        assert_eq!(last_applied(&obj), Some(json!({"spec": {"a": 2}})));
        let mut plain = json!({"metadata": {}});
        sync(&mut plain, &json!({"spec": {"a": 2}}));
        assert_eq!(plain, json!({"metadata": {}}), "no annotation, none added");
    }
}
