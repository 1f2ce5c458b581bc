//! PUT: replace an object, with its `resourceVersion` as precondition. The
//! read-modify-write loop here is shared with PATCH.
//!
//! On the main resource `status` is kept from the stored object; on
//! `/status` only `status` changes. `metadata.generation` moves when
//! anything but metadata and status changes. An update that changes
//! nothing is not written (no new resourceVersion, no watch event).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::negotiate::{self, with_warnings};
use super::params::Params;
use super::{App, Ctx, admit, admit_job, admit_offer, admit_placement, hooks, managed, meta_update, object};
use crate::error::{CONFLICT_MESSAGE, Error, Result};
use crate::registry::Kind;
use crate::storage::{Storage, StorageError};

/// Attempts of an update without a precondition that keeps losing races.
const ATTEMPTS: usize = 16;

/// The object a write is about.
pub struct Target<'a> {
    pub kind: &'a Kind,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub status: bool,
    pub params: &'a Params,
    /// The agent writing, when it may only remove finalizers.
    pub finalizers_only: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn of(ctx: &'a Ctx) -> Target<'a> {
        Target {
            kind: &ctx.kind,
            namespace: ctx.namespace.as_deref(),
            name: ctx.name(),
            status: ctx.status,
            params: &ctx.params,
            finalizers_only: ctx.finalizers_only.as_deref(),
        }
    }
}

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    let mut new = negotiate::decode_body(&ctx.headers, body)?;
    object::check_type_meta(&ctx.kind, &mut new)?;
    match object::name(&new) {
        Some(n) if n != ctx.name() => {
            return Err(Error::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                ctx.name()
            )));
        }
        _ => {}
    }
    if let (Some(given), Some(ns)) = (object::meta_str(&new, "namespace").filter(|s| !s.is_empty()), &ctx.namespace)
        && given != ns
    {
        return Err(Error::BadRequest(format!(
            "the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"
        )));
    }
    let precondition = revision_of(&new)?;
    let (obj, warnings) = write(app, &Target::of(ctx), |current| {
        let mut next = new.clone();
        managed::on_update(ctx, current, &mut next)?;
        Ok((next, precondition))
    })
    .await?;
    Ok(with_warnings(ctx.render_one(StatusCode::OK, &obj), &warnings))
}

/// `metadata.resourceVersion` of a body, as a precondition.
pub fn revision_of(obj: &Value) -> Result<Option<u64>> {
    match object::meta_str(obj, "resourceVersion").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(rv) => rv
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("metadata.resourceVersion {rv:?} is not a valid resource version"))),
    }
}

/// Reads the object, asks `make` for the desired state (and an optional
/// precondition), and writes it with compare-and-swap, retrying lost races
/// when the client gave no precondition.
pub async fn write<S, F>(app: &App<S>, t: &Target<'_>, mut make: F) -> Result<(Value, Vec<String>)>
where
    S: Storage,
    F: FnMut(&Value) -> Result<(Value, Option<u64>)>,
{
    let subject = object::subject(t.kind, t.name);
    let key = t.kind.key(t.namespace, t.name);
    let conflict = || Error::Conflict(subject.clone(), CONFLICT_MESSAGE.into());
    for _ in 0..ATTEMPTS {
        let kv = app.store.get(&key).await?.ok_or_else(|| Error::NotFound(subject.clone()))?;
        let current = object::decode(t.kind, &kv)?;
        let (mut desired, precondition) = make(&current)?;
        if precondition.is_some_and(|rv| rv != kv.mod_revision) {
            return Err(conflict());
        }
        object::check_type_meta(t.kind, &mut desired)?;
        if !t.status {
            meta_update::check_immutable(t.kind, &current, &desired)?;
        }
        let mut next = merge(t, &current, desired);
        if let Some(agent) = t.finalizers_only {
            admit_placement::check_finalizers_only(agent, t.name, &current, &next)?;
        }
        if !t.status {
            admit_offer::check_update(t.kind, &current, &next)?;
        }
        object::keep_server_fields(&current, &mut next);
        meta_update::check_finalizers(t.kind, &current, &next)?;
        if object::spec_changed(&current, &next) {
            object::meta_mut(&mut next).insert("generation".into(), Value::from(object::generation(&current) + 1));
        }
        hooks::before_write(t.kind, &mut next)?;
        let warnings = admit::admit(t.kind, &mut next, t.params)?;
        if !t.status {
            admit_job::check(t.kind, &next)?;
        }
        let finished =
            object::meta(&next).is_some_and(|m| m.contains_key("deletionTimestamp")) && object::finalizers(&next) == 0;
        if finished {
            // The last finalizer is gone: the delete completes now.
            if t.params.dry_run {
                return Ok((next, warnings));
            }
            match app.store.delete(&key, Some(kv.mod_revision)).await {
                Ok((_, rev)) => {
                    object::set_revision(&mut next, rev);
                    hooks::after_delete(app, t.kind, &next).await?;
                    return Ok((next, warnings));
                }
                Err(StorageError::Conflict { .. }) if precondition.is_none() => continue,
                Err(e) => return Err(Error::from_storage(e, &subject)),
            }
        }
        let bytes = object::encode(&next);
        if bytes == kv.value {
            return Ok((current, warnings));
        }
        if t.params.dry_run {
            return Ok((next, warnings));
        }
        match app.store.update(&key, bytes, kv.mod_revision).await {
            Ok(kv) => {
                let stored = object::as_stored(t.kind, next, kv.mod_revision);
                hooks::after_write(app, t.kind, &stored);
                return Ok((stored, warnings));
            }
            Err(StorageError::Conflict { .. }) if precondition.is_none() => continue,
            Err(e) => return Err(Error::from_storage(e, &subject)),
        }
    }
    Err(conflict())
}

/// The object to store: on `/status` the current one with the new status;
/// on the main resource the new one with the current status.
fn merge(t: &Target<'_>, current: &Value, desired: Value) -> Value {
    let (mut next, status) = if t.status {
        let mut next = current.clone();
        // The managed fields are those recorded for this write.
        match desired.pointer("/metadata/managedFields") {
            Some(m) => object::meta_mut(&mut next).insert("managedFields".into(), m.clone()),
            None => object::meta_mut(&mut next).remove("managedFields"),
        };
        (next, desired.get("status").cloned())
    } else if t.kind.status_subresource {
        (desired, current.get("status").cloned())
    } else {
        return desired;
    };
    if let Some(o) = next.as_object_mut() {
        match status {
            Some(s) => o.insert("status".into(), s),
            None => o.remove("status"),
        };
    }
    next
}
