//! A Placement that cannot take the offer it names is marked `Failed` with
//! reason `OfferRefused` and a message naming why — but only while it has
//! no claim in its agent's ledger (read fresh), so an accepted placement is
//! never failed on a stale cache, and only while it is `Pending`.

use berth_api::{Agent, Phase, Placement};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::Error;

/// The reason a refused placement carries.
pub const REASON: &str = "OfferRefused";

/// Marks `p` Failed with `why`, unless its agent's ledger holds a claim for it.
pub async fn refuse(client: &kube::Client, p: &Placement, why: &str, now: &str) -> Result<(), Error> {
    let ns = p.namespace().unwrap_or_default();
    if p.status.as_ref().is_some_and(|s| s.phase != Phase::Pending) {
        // Begun or finished: a refusal can no longer stop it.
        return Ok(());
    }
    let owner = format!("{ns}/{}", p.name_any());
    let agents: Api<Agent> = Api::all(client.clone());
    if let Some(a) = agents.get_opt(&p.spec.agent).await?
        && a.status.as_ref().is_some_and(|s| s.claims.iter().any(|c| c.owner == owner))
    {
        return Ok(());
    }
    let api: Api<Placement> = Api::namespaced(client.clone(), &ns);
    let patch = json!({
        "metadata": {"resourceVersion": p.resource_version()},
        "status": {"phase": "Failed", "reason": REASON, "message": why, "finishedAt": now},
    });
    match api.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => tracing::info!(placement = %owner, why, "refused"),
        // It moved (the agent began it, or another round refused it): look again next round.
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
