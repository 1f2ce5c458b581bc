//! Server-side apply: PATCH with `application/apply-patch+yaml` (a YAML
//! or JSON body). It needs `fieldManager`; it creates the object when it
//! does not exist, and otherwise merges the configuration into it with the
//! ownership rules of `managed`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::negotiate::with_warnings;
use super::update::{self, Target};
use super::{App, Ctx, create, managed, object};
use crate::error::{Cause, Error, Result, Subject};
use crate::storage::Storage;

/// A `PatchOptions` problem, worded as Kubernetes words it.
pub fn options_invalid(field: &str, reason: &'static str, message: &str) -> Error {
    let subject = Subject { group: "meta.k8s.io".into(), kind: "PatchOptions".into(), name: String::new() };
    Error::Invalid(subject, vec![Cause { reason, field: field.into(), message: message.into() }])
}

/// Reads the body: JSON, or else YAML.
fn config(body: &[u8]) -> Result<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| Error::BadRequest("the apply body is not UTF-8".into()))?;
    serde_saphyr::from_str(text).map_err(|e| Error::BadRequest(format!("error decoding YAML: {e}")))
}

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    if ctx.params.field_manager.is_none() {
        return Err(options_invalid(
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        ));
    }
    let mut config = config(body)?;
    managed::check_config(ctx, &config)?;
    object::check_type_meta(&ctx.kind, &mut config)?;
    let meta = object::meta_mut(&mut config);
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != ctx.name() => {
            return Err(Error::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                ctx.name()
            )));
        }
        _ => {
            meta.insert("name".into(), Value::String(ctx.name().into()));
        }
    }
    if let (Some(given), Some(ns)) = (meta.get("namespace").and_then(Value::as_str), &ctx.namespace)
        && !given.is_empty()
        && given != ns
    {
        return Err(Error::BadRequest(format!(
            "the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"
        )));
    }
    let precondition = update::revision_of(&config)?;
    object::meta_mut(&mut config).remove("resourceVersion");
    for _ in 0..2 {
        let written = update::write(app, &Target::of(ctx), |current| {
            Ok((managed::apply(ctx, Some(current), &config)?, precondition))
        })
        .await;
        match written {
            Ok((obj, warnings)) => return Ok(with_warnings(ctx.render_one(StatusCode::OK, &obj), &warnings)),
            Err(Error::NotFound(_)) if !ctx.status && precondition.is_none() => {}
            Err(e) => return Err(e),
        }
        let obj = managed::apply(ctx, None, &config)?;
        match create::create(app, &ctx.kind, ctx.namespace.as_deref(), obj, &ctx.params).await {
            Ok((obj, warnings)) => return Ok(with_warnings(ctx.render_one(StatusCode::CREATED, &obj), &warnings)),
            // Created by someone else meanwhile: apply to theirs.
            Err(Error::AlreadyExists(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(object::subject(&ctx.kind, ctx.name()), crate::error::CONFLICT_MESSAGE.into()))
}
