//! DELETE of one object (with `preconditions` from DeleteOptions) and of a
//! collection. An object with finalizers gets a `deletionTimestamp` and
//! stays until an update removes the last one.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::filter::Filter;
use super::negotiate::{self, Output};
use super::{App, Ctx, hooks, list, object};
use crate::error::{CONFLICT_MESSAGE, Error, Result};
use crate::registry::Kind;
use crate::storage::{Storage, StorageError};

struct Preconditions {
    uid: Option<String>,
    resource_version: Option<u64>,
    /// `dryRun: [All]` in DeleteOptions (kube-rs sends it there).
    dry_run: bool,
}

fn options(ctx: &Ctx, body: &[u8]) -> Result<Preconditions> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Preconditions { uid: None, resource_version: None, dry_run: false });
    }
    let opts = negotiate::decode_body(&ctx.headers, body)?;
    if let Some(p) = opts.get("propagationPolicy").and_then(Value::as_str)
        && !matches!(p, "Orphan" | "Background" | "Foreground")
    {
        return Err(Error::BadRequest(format!("unsupported propagationPolicy {p:?}")));
    }
    let dry_run = match opts.get("dryRun").and_then(Value::as_array).map(Vec::as_slice) {
        None | Some([]) => false,
        Some([all]) if all == "All" => true,
        Some(other) => {
            return Err(Error::BadRequest(format!("unsupported dryRun {other:?} in DeleteOptions: only [\"All\"]")));
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
    Ok(Preconditions { uid, resource_version, dry_run })
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

async fn delete_one<S: Storage>(
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
        if object::finalizers(&obj) > 0 {
            if object::meta(&obj).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Ok(obj);
            }
            let m = object::meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), Value::String(object::now()));
            m.insert("deletionGracePeriodSeconds".into(), Value::from(0));
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
