//! Server-side apply and `metadata.managedFields`, as Kubernetes keeps
//! them: every create, update and patch records an `Update` entry for its
//! field manager, an apply (`application/apply-patch+yaml`) an `Apply`
//! entry, and an apply that would change another manager's fields is
//! refused with a `Conflict` naming each field, unless forced.
//!
//! Layout:
//! - `fieldset`: field sets and their `FieldsV1` encoding.
//! - `typed`: an object's shape from its schema (list types, atomic maps).
//! - `walk`: field sets of objects, comparison, removal, merge.
//! - `entries`: `managedFields` entries decoded into managers and back.
//! - `updater`: who owns what after an update or an apply.
//! - `lastapplied`: moving from client-side to server-side apply.

mod entries;
mod fieldset;
mod lastapplied;
mod typed;
mod updater;
mod walk;

use serde_json::{Value, json};

use super::{Ctx, object};
use crate::error::{Cause, Error, Result};
use crate::registry::Kind;
use crate::validation::schema;
use entries::{Id, Managers};
use fieldset::{Element, Set};
use typed::Ty;
use updater::Scope;

/// Longest manager name Kubernetes accepts.
const MAX_MANAGER: usize = 128;

/// The request's field manager: `fieldManager`, or else the first segment
/// of the User-Agent (`kubectl/v1.32.0 (…)` → `kubectl`).
pub fn manager(ctx: &Ctx) -> String {
    if let Some(m) = &ctx.params.field_manager {
        return m.clone();
    }
    let ua = ctx.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    ua.split('/').next().unwrap_or("").chars().take(MAX_MANAGER).collect()
}

fn scope<'a>(kind: &'a Kind, status: bool, objects: &[&Value]) -> Scope<'a> {
    let mut ignored = Set::default();
    if status {
        for o in objects {
            for k in o.as_object().into_iter().flat_map(|m| m.keys()).filter(|k| *k != "status") {
                ignored.insert(&[Element::Field(k.clone())]);
            }
        }
    } else if kind.status_subresource {
        ignored.insert(&[Element::Field("status".into())]);
    }
    Scope { ty: Ty::root(kind.schema.as_ref()), ignored, api_version: kind.api_version(), now: object::now() }
}

fn subresource(status: bool) -> &'static str {
    if status { "status" } else { "" }
}

/// `obj` without `metadata.managedFields`.
fn bare(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// `obj` as admission will store it (pruned and defaulted), for comparing.
fn admitted(kind: &Kind, obj: &Value) -> Value {
    let mut o = bare(obj);
    if let Some(s) = &kind.schema {
        schema::check(s, &mut o);
    }
    o
}

fn set_managers(obj: &mut Value, m: &Managers) {
    let list = entries::encode(m);
    let meta = object::meta_mut(obj);
    if list.as_array().is_some_and(Vec::is_empty) {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), list);
    }
}

/// The managers a client sent, if it sent a usable non-empty list;
/// entries with fields must be `Apply` or `Update`.
fn client_managers(kind: &Kind, obj: &Value) -> Result<Option<Managers>> {
    let Some(list) = obj.pointer("/metadata/managedFields").filter(|l| !l.is_null()) else { return Ok(None) };
    let Ok(m) = entries::decode(list) else { return Ok(None) };
    if m.is_empty() {
        return Ok(None);
    }
    let causes: Vec<Cause> = list
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| e.get("fieldsV1").is_some_and(|f| f.as_object().is_some_and(|o| !o.is_empty())))
        .filter_map(|(i, e)| {
            let op = e.get("operation").and_then(Value::as_str).unwrap_or("");
            (op != "Apply" && op != "Update").then(|| Cause {
                reason: "FieldValueInvalid",
                field: format!("metadata.managedFields[{i}].operation"),
                message: format!("Invalid value: {op:?}: must be `Apply` or `Update`"),
            })
        })
        .collect();
    if !causes.is_empty() {
        return Err(Error::Invalid(object::invalid_subject(kind, object::name(obj).unwrap_or_default()), causes));
    }
    Ok(Some(m))
}

/// The manager of the server's own writes (the CRDs it starts with, the
/// system namespaces).
pub const SERVER: &str = "berth-apiserver";

/// Records a create by the request's manager in `obj.metadata.managedFields`.
pub fn on_create(ctx: &Ctx, obj: &mut Value) -> Result<()> {
    on_update(ctx, &json!({"metadata": {}}), obj)
}

/// Records an update (PUT or a non-apply PATCH) from `current` to `desired`.
pub fn on_update(ctx: &Ctx, current: &Value, desired: &mut Value) -> Result<()> {
    record(&ctx.kind, ctx.status, &manager(ctx), current, desired)
}

/// Records a write by `manager` from `current` (`{"metadata": {}}` for a
/// create) to `desired`, on `/status` if `status`.
pub fn record(kind: &Kind, status: bool, manager: &str, current: &Value, desired: &mut Value) -> Result<()> {
    let given = if status { None } else { client_managers(kind, desired)? };
    let managers = given.unwrap_or_else(|| entries::of_object(current));
    let (old, new) = (bare(current), admitted(kind, desired));
    let sc = scope(kind, status, &[&old, &new]);
    let me = Id::new(manager, false, subresource(status), &kind.api_version());
    let m = sc.update(&old, &new, managers, &me);
    set_managers(desired, &m);
    Ok(())
}

/// Checks an apply configuration against the request.
pub fn check_config(ctx: &Ctx, config: &Value) -> Result<()> {
    if !config.is_object() {
        return Err(Error::BadRequest("the applied configuration must be an object".into()));
    }
    if config.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
        return Err(Error::BadRequest("metadata.managedFields must be nil".into()));
    }
    let av = config.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    if av.is_empty() || kind.is_empty() {
        return Err(Error::BadRequest("the applied configuration must set apiVersion and kind".into()));
    }
    if av != ctx.kind.api_version() {
        return Err(Error::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {av}, expected: {}",
            ctx.kind.api_version()
        )));
    }
    Ok(())
}

/// Applies `config` for the request's manager to `live` (`None`: the
/// object does not exist yet). Returns the object to store, with its
/// `managedFields`.
pub fn apply(ctx: &Ctx, live: Option<&Value>, config: &Value) -> Result<Value> {
    let kind = &ctx.kind;
    let name = manager(ctx);
    let force = ctx.params.force.unwrap_or(false);
    let old = live.map(bare).unwrap_or_else(|| json!({"metadata": {}}));
    let sc = scope(kind, ctx.status, &[&old, config]);
    let mut managers = live.map(entries::of_object).unwrap_or_default();
    if live.is_some() && managers.is_empty() {
        // Fields set before anyone applied belong to a manager of their own.
        let id = Id::new("before-first-apply", false, "", &kind.api_version());
        managers = sc.update(&json!({"metadata": {}}), &old, Managers::new(), &id);
    }
    let me = Id::new(&name, true, subresource(ctx.status), "");
    let outcome = match sc.apply(&old, config, managers.clone(), &me, force) {
        Err(conflicts) if lastapplied::forgives(&sc, &name, &old, &conflicts, |v| admitted(kind, v)) => {
            sc.apply(&old, config, managers, &me, true)
        }
        other => other,
    };
    let (mut new, m) = outcome.map_err(|conflicts| conflict_error(&conflicts))?;
    if name == lastapplied::KUBECTL {
        lastapplied::sync(&mut new, config);
    }
    set_managers(&mut new, &m);
    Ok(new)
}

/// `Apply failed with 1 conflict: conflict with "m" using v1: .spec.x`.
fn conflict_error(conflicts: &[updater::Conflict]) -> Error {
    let causes = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict",
            field: c.path.to_string(),
            message: format!("conflict with {}", c.manager.describe()),
        })
        .collect();
    let message = match conflicts {
        [one] => format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager.describe(), one.path),
        many => {
            let mut by: Vec<(String, Vec<String>)> = Vec::new();
            for c in many {
                let who = c.manager.describe();
                match by.iter_mut().find(|(w, _)| *w == who) {
                    Some((_, paths)) => paths.push(c.path.to_string()),
                    None => by.push((who, vec![c.path.to_string()])),
                }
            }
            by.sort();
            let lines: Vec<String> = by
                .into_iter()
                .flat_map(|(who, paths)| {
                    std::iter::once(format!("conflicts with {who}:")).chain(paths.into_iter().map(|p| format!("- {p}")))
                })
                .collect();
            format!("Apply failed with {} conflicts: {}", many.len(), lines.join("\n"))
        }
    };
    Error::ApplyConflict(message, causes)
}
