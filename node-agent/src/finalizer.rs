//! Releasing the agent finalizer (`berth.dev/agent`): once a placement is
//! terminal and its container removed, nothing on this machine holds its
//! resources any more, so the placement may go (and with it its claim).
//!
//! The finalizer list is written by a JSON merge patch on the placement with
//! its `resourceVersion` as precondition, so a finalizer another party
//! added meanwhile is never dropped; a 409 re-reads and tries again.

use berth_api::Placement;
use berth_api::placement::FINALIZER_AGENT;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::Error;

/// How often a conflicting write is retried before giving up.
const ATTEMPTS: usize = 10;

/// True when `p` carries the agent finalizer.
pub fn holds(p: &Placement) -> bool {
    p.finalizers().iter().any(|f| f == FINALIZER_AGENT)
}

/// Removes the agent finalizer from placement `name` (a no-op when it is
/// gone or has none).
pub async fn release(api: &Api<Placement>, name: &str) -> Result<(), Error> {
    for _ in 0..ATTEMPTS {
        let p = match api.get_opt(name).await? {
            Some(p) if holds(&p) => p,
            _ => return Ok(()),
        };
        let rest: Vec<&String> = p.finalizers().iter().filter(|f| *f != FINALIZER_AGENT).collect();
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": p.resource_version(), "finalizers": rest }
        });
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(placement = %name, "released the agent finalizer");
                return Ok(());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Config(format!("placement {name}: its finalizers kept changing under the agent")))
}
