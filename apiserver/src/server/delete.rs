//! DELETE of one object (with `preconditions` from DeleteOptions) and of a
//! collection. An object with finalizers gets a `deletionTimestamp` and
//! stays until an update removes the last one.
//!
//! `propagationPolicy` (from the DeleteOptions body, else the query; or the
//! older `orphanDependents`) decides what happens to dependents: `Orphan`
//! and `Foreground` add the `orphan` / `foregroundDeletion` finalizer that
//! the garbage collector (`gc`) acts on; `Background` (the default) deletes
//! the object now and leaves its dependents to the collector.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::filter::Filter;
use super::gc::{FOREGROUND, ORPHAN};
use super::negotiate::{self, Output};
use super::{App, Ctx, hooks, list, object};
use crate::error::{CONFLICT_MESSAGE, Error, Result};
use crate::registry::Kind;
use crate::storage::{Storage, StorageError};

/// What happens to an object's dependents when it is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Orphan,
    Background,
    Foreground,
}

impl Policy {
    pub fn parse(v: &str) -> Result<Policy> {
        match v {
            "Orphan" => Ok(Policy::Orphan),
            "Background" => Ok(Policy::Background),
            "Foreground" => Ok(Policy::Foreground),
            other => Err(Error::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }

    /// The policy `propagationPolicy` or the deprecated `orphanDependents` asks for.
    fn from_options(policy: Option<&str>, orphan: Option<bool>) -> Result<Option<Policy>> {
        match (policy, orphan) {
            (Some(_), Some(_)) => Err(Error::BadRequest(
                "propagationPolicy: Invalid value: orphanDependents and propagationPolicy cannot both be set".into(),
            )),
            (Some(p), None) => Policy::parse(p).map(Some),
            (None, Some(true)) => Ok(Some(Policy::Orphan)),
            (None, Some(false)) => Ok(Some(Policy::Background)),
            (None, None) => Ok(None),
        }
    }
}

/// What a DeleteOptions (body and query) asks for.
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
    /// `None`: keep what the object's finalizers say (background by default).
    pub policy: Option<Policy>,
    /// `dryRun: [All]` in DeleteOptions (kube-rs sends it there).
    pub dry_run: bool,
}

fn options(ctx: &Ctx, body: &[u8]) -> Result<Preconditions> {
    let query = Policy::from_options(ctx.params.propagation_policy.as_deref(), ctx.params.orphan_dependents)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Preconditions { uid: None, resource_version: None, policy: query, dry_run: false });
    }
    let opts = negotiate::decode_body(&ctx.headers, body)?;
    if !opts.is_object() {
        return Err(Error::BadRequest("the request body must be a DeleteOptions object".into()));
    }
    let orphan = match opts.get("orphanDependents") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(Error::BadRequest(format!("orphanDependents: Invalid value: {other}: must be a boolean")));
        }
    };
    let policy = match opts.get("propagationPolicy") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(other) => {
            return Err(Error::BadRequest(format!("propagationPolicy: Invalid value: {other}: must be a string")));
        }
    };
    let policy = Policy::from_options(policy, orphan)?.or(query);
    let dry_run = match opts.get("dryRun").and_then(Value::as_array).map(Vec::as_slice) {
        None | Some([]) => false,
        Some([all]) if all == "All" => true,
        Some(other) => {
            return Err(Error::BadRequest(format!("dryRun: Unsupported value: {other:?}: supported values: \"All\"")));
        }
    };
    let pre = opts.get("preconditions");
    let uid = pre.and_then(|p| p.get("uid")).and_then(Value::as_str).map(str::to_string);
    let resource_version = match pre.and_then(|p| p.get("resourceVersion")).and_then(Value::as_str) {
        Some(rv) => {
            Some(rv.parse().map_err(|_| Error::BadRequest(format!("invalid precondition resourceVersion {rv:?}")))?)
        }
        None => None,
    };
    Ok(Preconditions { uid, resource_version, policy, dry_run })
}

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    let pre = options(ctx, body)?;
    hooks::before_delete(&ctx.kind, ctx.name())?;
    let obj = delete_one(app, &ctx.kind, &ctx.key(), ctx.name(), &pre, ctx.params.dry_run || pre.dry_run).await?;
    let code =
        if object::meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp")) && object::finalizers(&obj) > 0 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
    Ok(ctx.render_one(code, &obj))
}

/// Deletes (or marks for deletion) the object at `key`, as `pre` asks.
pub async fn delete_one<S: Storage>(
    app: &App<S>,
    kind: &Kind,
    key: &str,
    name: &str,
    pre: &Preconditions,
    dry_run: bool,
) -> Result<Value> {
    let subject = object::subject(kind, name);
    loop {
        let kv = app.store.get(key).await?.ok_or_else(|| Error::NotFound(subject.clone()))?;
        let mut obj = object::decode(kind, &kv)?;
        if let Some(uid) = &pre.uid
            && object::meta_str(&obj, "uid") != Some(uid.as_str())
        {
            let msg = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::meta_str(&obj, "uid").unwrap_or_default()
            );
            return Err(Error::Conflict(subject, msg));
        }
        if pre.resource_version.is_some_and(|rv| rv != kv.mod_revision) {
            let msg = format!(
                "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
                pre.resource_version.unwrap_or_default(),
                kv.mod_revision
            );
            return Err(Error::Conflict(subject, msg));
        }
        if dry_run {
            return Ok(obj);
        }
        let deleting = object::meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp"));
        let finalizers = finalizers_for(&obj, pre.policy);
        if !finalizers.is_empty() {
            let unchanged = finalizers == object::finalizer_names(&obj);
            if deleting && unchanged {
                return Ok(obj);
            }
            let m = object::meta_mut(&mut obj);
            if !deleting {
                m.insert("deletionTimestamp".into(), Value::String(object::now()));
                m.insert("deletionGracePeriodSeconds".into(), Value::from(0));
            }
            m.insert("finalizers".into(), json!(finalizers));
            match app.store.update(key, object::encode(&obj), kv.mod_revision).await {
                Ok(kv) => return object::decode(kind, &kv),
                Err(StorageError::Conflict { .. }) if pre.resource_version.is_none() => continue,
                Err(e) => return Err(Error::from_storage(e, &subject)),
            }
        }
        match app.store.delete(key, Some(kv.mod_revision)).await {
            Ok((_, rev)) => {
                object::set_revision(&mut obj, rev);
                hooks::after_delete(app, kind, &obj).await?;
                return Ok(obj);
            }
            Err(StorageError::Conflict { .. }) if pre.resource_version.is_none() => continue,
            Err(StorageError::Conflict { .. }) => return Err(Error::Conflict(subject, CONFLICT_MESSAGE.into())),
            Err(e) => return Err(Error::from_storage(e, &subject)),
        }
    }
}

/// The finalizers an object keeps when deleted with `policy`: the
/// collector's ones replaced by what the policy asks (kept as they are
/// when no policy is given).
fn finalizers_for(obj: &Value, policy: Option<Policy>) -> Vec<String> {
    let mut out = object::finalizer_names(obj);
    let Some(policy) = policy else { return out };
    out.retain(|f| f != ORPHAN && f != FOREGROUND);
    match policy {
        Policy::Orphan => out.push(ORPHAN.into()),
        Policy::Foreground => out.push(FOREGROUND.into()),
        Policy::Background => {}
    }
    out
}

/// DELETE on a collection: every object matching the selectors.
pub async fn collection<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    let pre = options(ctx, body)?;
    if ctx.kind.namespaced && ctx.namespace.is_none() {
        return Err(Error::MethodNotAllowed("deletecollection needs a namespace".into()));
    }
    let filter = Filter::new(ctx)?;
    let page = list::read_page(app, ctx, &filter).await?;
    let mut deleted = Vec::new();
    for obj in page.items {
        let name = object::name(&obj).unwrap_or_default().to_string();
        if hooks::before_delete(&ctx.kind, &name).is_err() {
            continue;
        }
        let key = ctx.kind.key(ctx.namespace.as_deref(), &name);
        match delete_one(app, &ctx.kind, &key, &name, &pre, ctx.params.dry_run || pre.dry_run).await {
            Ok(o) => deleted.push(o),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let body = match ctx.output {
        Output::Object => json!({
            "kind": ctx.kind.list_kind,
            "apiVersion": ctx.kind.api_version(),
            "metadata": {"resourceVersion": app.store.current_revision().await?.to_string()},
            "items": deleted,
        }),
        _ => json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    };
    Ok(negotiate::json(StatusCode::OK, &body, ctx.params.pretty))
}
