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
