//! Liveness: the agent renews a `coordination.k8s.io/v1` Lease named after
//! itself in [`LEASE_NAMESPACE`] every heartbeat, as the kubelet does. The
//! node-lifecycle controller marks an agent whose Lease stops moving
//! `NotReady` and its placements `Lost`. A Lease write is small and cheap
//! to watch, so the `Agent` status (capacity) is written far more rarely.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use crate::Error;

/// Where agents' Leases live: Kubernetes' namespace for node Leases, which
/// Berth's API server creates at bootstrap and kube-apiserver has already.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// `leaseDurationSeconds` the agent writes: how long it promises to be
/// alive after a renewal (five heartbeats). The controller judges an agent
/// by its own `--agent-ttl-seconds`, as kube-controller-manager judges nodes
/// by its grace period rather than by this field.
pub fn lease_duration(heartbeat: Duration) -> i32 {
    i32::try_from((heartbeat.as_secs() * 5).max(1)).unwrap_or(i32::MAX)
}

/// Renews (creating it the first time) agent `name`'s Lease.
pub async fn renew(api: &Api<Lease>, name: &str, heartbeat: Duration) -> Result<(), Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let spec = LeaseSpec {
        holder_identity: Some(name.to_string()),
        lease_duration_seconds: Some(lease_duration(heartbeat)),
        renew_time: Some(now.clone()),
        ..Default::default()
    };
    let patch = serde_json::json!({ "spec": spec });
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
                spec: Some(LeaseSpec { acquire_time: Some(now), ..spec }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                // Created meanwhile (a previous run of this agent): renewed next beat.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_outlives_several_missed_heartbeats() {
        assert_eq!(lease_duration(Duration::from_secs(2)), 10);
        assert_eq!(lease_duration(Duration::from_millis(100)), 1);
    }
}
