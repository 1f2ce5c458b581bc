//! GET of one object.

use axum::http::StatusCode;
use axum::response::Response;

use super::{App, Ctx, object};
use crate::error::{Error, Result};
use crate::storage::Storage;

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx) -> Result<Response> {
    let obj = read(app, ctx).await?;
    Ok(ctx.render_one(StatusCode::OK, &obj))
}

/// The current object the request names, or 404.
pub async fn read<S: Storage>(app: &App<S>, ctx: &Ctx) -> Result<serde_json::Value> {
    let subject = object::subject(&ctx.kind, ctx.name());
    let kv = app.store.get(&ctx.key()).await.map_err(|e| Error::from_storage(e, &subject))?;
    let kv = kv.ok_or(Error::NotFound(subject))?;
    object::decode(&ctx.kind, &kv)
}
