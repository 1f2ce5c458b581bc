//! What some kinds need besides storage: CRDs keep the registry in step
//! and get a status; Namespaces get a phase and take their contents with
//! them when deleted.

use serde_json::{Value, json};

use super::{App, object};
use crate::error::{Error, Result};
use crate::registry::builtin::{CRD_GROUP, CRD_PLURAL};
use crate::registry::{Kind, crd};
use crate::storage::Storage;

fn is_crd(kind: &Kind) -> bool {
    kind.builtin && kind.group == CRD_GROUP && kind.plural == CRD_PLURAL
}

fn is_namespace(kind: &Kind) -> bool {
    kind.builtin && kind.group.is_empty() && kind.plural == "namespaces"
}

/// Namespaces that exist from the start and may not be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Kind-specific checks and server-owned fields, before a write.
pub fn before_write(kind: &Kind, obj: &mut Value) -> Result<()> {
    if is_crd(kind) {
        let causes = crd::validate(obj);
        if !causes.is_empty() {
            let name = object::name(obj).unwrap_or_default().to_string();
            return Err(Error::Invalid(object::invalid_subject(kind, &name), causes));
        }
        crd::set_status(obj, &object::now());
    }
    if kind.builtin && kind.group.is_empty() && kind.plural == "secrets" {
        secret_defaults(kind, obj)?;
    }
    if is_namespace(kind) && obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
    Ok(())
}

/// A Secret's `type` defaults to `Opaque`; its write-only `stringData` is
/// folded into `data` (base64), winning over a `data` key of the same name.
fn secret_defaults(kind: &Kind, obj: &mut Value) -> Result<()> {
    use base64::Engine;
    if obj.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
    let Some(strings) = obj.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return Ok(());
    };
    let Value::Object(strings) = strings else {
        return Err(type_invalid(kind, obj, "stringData".into(), "must be a map of strings"));
    };
    let mut data = obj.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    for (key, value) in strings {
        let Value::String(text) = value else {
            return Err(type_invalid(kind, obj, format!("stringData.{key}"), "must be a string"));
        };
        data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
    }
    obj["data"] = Value::Object(data);
    Ok(())
}

fn type_invalid(kind: &Kind, obj: &Value, field: String, message: &str) -> Error {
    let name = object::name(obj).unwrap_or_default().to_string();
    let cause = crate::error::Cause { reason: "FieldValueTypeInvalid", field, message: message.into() };
    Error::Invalid(object::invalid_subject(kind, &name), vec![cause])
}

/// After a write is durable.
pub fn after_write<S: Storage>(app: &App<S>, kind: &Kind, obj: &Value) {
    if is_crd(kind) {
        register(app, obj);
    }
}

/// Serves the kinds of a stored CRD object.
pub fn register<S: Storage>(app: &App<S>, crd_obj: &Value) {
    let kinds = crd::kinds_of(crd_obj);
    let group = crd_obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let plural = crd_obj.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default();
    app.registry.set_crd(group, plural, kinds);
}

/// Refuses deletes Kubernetes refuses.
pub fn before_delete(kind: &Kind, name: &str) -> Result<()> {
    if is_namespace(kind) && SYSTEM_NAMESPACES.contains(&name) {
        return Err(Error::Forbidden(format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")));
    }
    Ok(())
}

/// After a delete is durable: a CRD's objects and a namespace's contents go too.
pub async fn after_delete<S: Storage>(app: &App<S>, kind: &Kind, obj: &Value) -> Result<()> {
    let name = object::name(obj).unwrap_or_default();
    let prefixes: Vec<String> = if is_crd(kind) {
        let group = obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
        let plural = obj.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default();
        let kinds = app.registry.all();
        let prefix = kinds.iter().find(|k| k.group == group && k.plural == plural).map(|k| k.prefix(None));
        app.registry.remove_crd(group, plural);
        prefix.into_iter().collect()
    } else if is_namespace(kind) {
        let mut seen = Vec::new();
        for k in app.registry.all().iter().filter(|k| k.namespaced) {
            let p = k.prefix(Some(name));
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        seen
    } else {
        return Ok(());
    };
    for prefix in prefixes {
        let range = app.store.range(&prefix, None, 0, 0).await?;
        for kv in range.kvs {
            match app.store.delete(&kv.key, None).await {
                Ok(_) | Err(crate::storage::StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
