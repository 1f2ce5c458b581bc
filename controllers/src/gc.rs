//! Placement garbage collection: a placement whose Job is gone is deleted,
//! so its agent stops the container and the ledger releases its claim.

use std::sync::Arc;
use std::time::Duration;

use berth_api::{Job, Placement};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;

use crate::{Context, Error};

pub async fn reconcile(placement: Arc<Placement>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = placement.namespace().unwrap_or_default();
    let Some(owner) = placement.owner_references().iter().find(|o| o.kind == "Job").cloned() else {
        return Ok(Action::await_change());
    };
    // Ask the store, not the cache: the Job's deletion may not have reached
    // the cache when this placement is looked at, and nothing else would
    // bring it back here.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    if jobs.get_opt(&owner.name).await?.is_some_and(|j| j.uid().as_deref() == Some(owner.uid.as_str())) {
        return Ok(Action::await_change());
    }
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), &ns);
    match api.delete(&placement.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(placement = %placement.name_any(), job = %owner.name, "deleted placement of a deleted job")
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

pub fn error_policy(p: Arc<Placement>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::debug!(placement = %p.name_any(), %error, "gc failed; retrying");
    Action::requeue(Duration::from_secs(2))
}
