//! POST: create an object (`generateName`, uid, creationTimestamp,
//! generation 1), after admission; nothing is stored on any error.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::negotiate::{self, with_warnings};
use super::params::Params;
use super::{App, Ctx, admit, admit_job, admit_offer, admit_placement, hooks, managed, object};
use crate::error::{Error, Result, Subject};
use crate::registry::Kind;
use crate::storage::{Storage, StorageError};

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    let mut obj = negotiate::decode_body(&ctx.headers, body)?;
    object::check_type_meta(&ctx.kind, &mut obj)?;
    managed::on_create(ctx, &mut obj)?;
    let (obj, warnings) = create(app, &ctx.kind, ctx.namespace.as_deref(), obj, &ctx.params).await?;
    Ok(with_warnings(ctx.render_one(StatusCode::CREATED, &obj), &warnings))
}

/// The storage key of a Namespace.
pub fn namespace_key(ns: &str) -> String {
    format!("/registry/core/namespaces/{ns}")
}

/// Creates `obj` of `kind` in `namespace`; returns it as stored, with warnings.
pub async fn create<S: Storage>(
    app: &App<S>,
    kind: &Kind,
    namespace: Option<&str>,
    mut obj: Value,
    params: &Params,
) -> Result<(Value, Vec<String>)> {
    let meta = object::meta_mut(&mut obj);
    if kind.namespaced {
        let ns = namespace.ok_or_else(|| Error::BadRequest("a namespaced object needs a namespace".into()))?;
        match meta.get("namespace").and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != ns => {
                return Err(Error::BadRequest(format!(
                    "the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"
                )));
            }
            _ => {
                meta.insert("namespace".into(), Value::String(ns.into()));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let generate = meta.get("generateName").and_then(Value::as_str).filter(|g| !g.is_empty()).map(str::to_string);
    let named = meta.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    if let (false, Some(g)) = (named, &generate) {
        meta.insert("name".into(), Value::String(object::generated_name(g)));
    }
    meta.insert("uid".into(), Value::String(object::new_uid()));
    meta.insert("creationTimestamp".into(), Value::String(object::now()));
    meta.insert("generation".into(), Value::from(1));
    for k in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
        meta.remove(k);
    }
    if kind.status_subresource {
        // Status is written through /status only.
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    hooks::before_write(kind, &mut obj)?;
    let warnings = admit::admit(kind, &mut obj, params)?;
    admit_job::check(kind, &obj)?;
    admit_placement::add_agent_finalizer(kind, &mut obj);
    if let Some(ns) = namespace.filter(|_| kind.namespaced) {
        let exists = app.store.get(&namespace_key(ns)).await?.is_some();
        if !exists {
            let subject = Subject { group: String::new(), kind: "namespaces".into(), name: ns.into() };
            return Err(Error::NotFound(subject));
        }
    }
    admit_offer::check_create(app, kind, namespace, &obj).await?;
    if params.dry_run {
        return Ok((obj, warnings));
    }
    let mut attempts = 0;
    loop {
        let name = object::name(&obj).unwrap_or_default().to_string();
        let key = kind.key(namespace, &name);
        match app.store.create(&key, object::encode(&obj)).await {
            Ok(kv) => {
                let stored = object::as_stored(kind, obj, kv.mod_revision);
                hooks::after_write(app, kind, &stored);
                return Ok((stored, warnings));
            }
            Err(StorageError::AlreadyExists(_)) if !named && generate.is_some() && attempts < 5 => {
                attempts += 1;
                let fresh = object::generated_name(generate.as_deref().unwrap_or_default());
                object::meta_mut(&mut obj).insert("name".into(), Value::String(fresh));
            }
            Err(e) => return Err(Error::from_storage(e, &object::subject(kind, &name))),
        }
    }
}
