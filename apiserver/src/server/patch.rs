//! PATCH: JSON merge patch (RFC 7386) and JSON patch (RFC 6902), on the
//! main resource and `/status`. Strategic merge patch is accepted for the
//! built-in kinds as a merge patch (their lists carry no merge keys Berth
//! relies on). Server-side apply is in `apply`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::negotiate::{self, with_warnings};
use super::update::{self, Target};
use super::{App, Ctx, apply, managed, object};
use crate::error::{Error, Result};
use crate::storage::Storage;

enum PatchType {
    Merge,
    Json,
}

const ACCEPTED: &str = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx, body: &[u8]) -> Result<Response> {
    let ctype = negotiate::content_type(&ctx.headers);
    let kind = match ctype.as_str() {
        "application/merge-patch+json" => PatchType::Merge,
        "application/json-patch+json" => PatchType::Json,
        "application/strategic-merge-patch+json" if ctx.kind.builtin => PatchType::Merge,
        "application/apply-patch+yaml" => return apply::run(app, ctx, body).await,
        other => {
            return Err(Error::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: {ACCEPTED}"
            )));
        }
    };
    if ctx.params.force.is_some() {
        return Err(apply::options_invalid(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("the patch is not valid JSON: {e}")))?;
    let (obj, warnings) = match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(Error::BadRequest("a merge patch must be a JSON object".into()));
            }
            let patch = strip_directives(patch);
            let precondition = update::revision_of(&patch)?;
            update::write(app, &Target::of(ctx), |current| {
                let mut doc = current.clone();
                json_patch::merge(&mut doc, &patch);
                managed::on_update(ctx, current, &mut doc)?;
                Ok((doc, precondition))
            })
            .await?
        }
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| Error::BadRequest(format!("the JSON patch is malformed: {e}")))?;
            update::write(app, &Target::of(ctx), |current| {
                let mut doc = current.clone();
                json_patch::patch(&mut doc, &ops)
                    .map_err(|e| Error::BadRequest(format!("the JSON patch cannot be applied: {e}")))?;
                let before = object::meta_str(current, "resourceVersion");
                let precondition = match object::meta_str(&doc, "resourceVersion") {
                    rv if rv == before => None,
                    _ => update::revision_of(&doc)?,
                };
                managed::on_update(ctx, current, &mut doc)?;
                Ok((doc, precondition))
            })
            .await?
        }
    };
    Ok(with_warnings(ctx.render_one(StatusCode::OK, &obj), &warnings))
}

/// Drops strategic-merge directives (`$patch`, `$setElementOrder/…`, `$retainKeys`, …).
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k, strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}
