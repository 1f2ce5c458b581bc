//! GET of one object: the most recent state (a `resourceVersion` newer
//! than the store's is a 504, as Kubernetes).

use axum::http::StatusCode;
use axum::response::Response;

use super::{App, Ctx, object, versions};
use crate::error::{Error, Result};
use crate::storage::Storage;

pub async fn run<S: Storage>(app: &App<S>, ctx: &Ctx) -> Result<Response> {
    if ctx.params.resource_version_match.is_some() {
        return Err(Error::BadRequest("resourceVersionMatch: not allowed on a get of one object".into()));
    }
    // A resourceVersion asks for a state at least that new.
    if let Some(wanted) = ctx.params.revision()? {
        versions::fresh_enough(wanted, app.store.current_revision().await?)?;
    }
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
