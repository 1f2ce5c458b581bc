//! Staying connected and failover (Mesos' framework failover timeout). An
//! `external` framework is connected while it renews its Lease
//! `framework-<name>` in its namespace; once the Lease expires it is offered
//! nothing and its open offers are rescinded, and once its
//! `failoverTimeoutSeconds` has passed too, its tasks are killed. A
//! framework without a Lease never opted in and counts as connected;
//! built-in frameworks are always connected (the controllers schedule them).
//!
//! [`decide`] is pure — the Lease's expiry, the timeout and `now` in, a
//! [`Connection`] out; the loop applies it ([`kill`] deletes the placements).

use std::sync::Arc;

use berth_api::condition::Condition;
use berth_api::framework::{CONDITION_CONNECTED, Scheduler};
use berth_api::{Framework, Offer, Placement, format_time};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::inputs::live_placements;
use crate::Error;
use crate::events::{Note, record};

/// The name of `framework`'s Lease.
pub fn lease_name(framework: &str) -> String {
    format!("framework-{framework}")
}

/// When `lease` expires: `renewTime` (else `acquireTime`) plus
/// `leaseDurationSeconds`. A Lease missing either was never renewed: it
/// expired when it was created.
pub fn expiry(lease: &Lease) -> Timestamp {
    let spec = lease.spec.clone().unwrap_or_default();
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    let created = lease.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
    match (renewed, spec.lease_duration_seconds) {
        (Some(at), Some(secs)) => at.checked_add(SignedDuration::from_secs(secs.into())).unwrap_or(Timestamp::MAX),
        _ => created,
    }
}

/// Where a framework's scheduler stands at one moment.
#[derive(Clone, Debug, PartialEq)]
pub enum Connection {
    /// Built-in, or has no Lease (failover not in use): connected.
    Unleased,
    /// Its Lease holds.
    Connected,
    /// Its Lease expired at `since`; its tasks are killed at `kill_at`
    /// (`None`: no failover timeout, they are left alone).
    Disconnected { since: Timestamp, kill_at: Option<Timestamp> },
    /// Its Lease expired at `since` and the failover timeout passed at `at`: its tasks are killed.
    FailedOver { since: Timestamp, at: Timestamp, timeout_seconds: u32 },
}

/// The decision for a framework whose Lease (if any) expires at `lease_expiry`.
pub fn decide(
    builtin: bool,
    lease_expiry: Option<Timestamp>,
    failover_timeout_seconds: Option<u32>,
    now: Timestamp,
) -> Connection {
    let Some(since) = lease_expiry.filter(|_| !builtin) else { return Connection::Unleased };
    if now < since {
        return Connection::Connected;
    }
    let kill_at = failover_timeout_seconds
        .map(|s| since.checked_add(SignedDuration::from_secs(s.into())).unwrap_or(Timestamp::MAX));
    match (kill_at, failover_timeout_seconds) {
        (Some(at), Some(timeout_seconds)) if now >= at => Connection::FailedOver { since, at, timeout_seconds },
        _ => Connection::Disconnected { since, kill_at },
    }
}

impl Connection {
    /// Why the planner offers nothing, when it is disconnected.
    pub fn offers_stopped(&self, lease: &str) -> Option<String> {
        match self {
            Connection::Unleased | Connection::Connected => None,
            Connection::Disconnected { since, .. } | Connection::FailedOver { since, .. } => {
                Some(format!("its lease {lease} expired at {}", format_time(*since)))
            }
        }
    }

    /// The `Connected` condition; `None` for a framework without a Lease.
    pub fn condition(&self, lease: &str) -> Option<Condition> {
        let c = |status, reason, message: String| Some(Condition::new(CONDITION_CONNECTED, status, reason, message));
        match self {
            Connection::Unleased => None,
            Connection::Connected => c(true, "LeaseHeld", format!("its scheduler renews lease {lease}")),
            Connection::Disconnected { since, kill_at: Some(at) } => c(
                false,
                "LeaseExpired",
                format!(
                    "lease {lease} expired at {}; its tasks are killed at {} unless it is renewed",
                    format_time(*since),
                    format_time(*at)
                ),
            ),
            Connection::Disconnected { since, kill_at: None } => c(
                false,
                "LeaseExpired",
                format!(
                    "lease {lease} expired at {}; no failover timeout is set, so its tasks keep running",
                    format_time(*since)
                ),
            ),
            Connection::FailedOver { since, at, timeout_seconds } => c(
                false,
                "FailedOver",
                format!(
                    "lease {lease} expired at {}; the failover timeout of {timeout_seconds}s passed at {}: {}",
                    format_time(*since),
                    format_time(*at),
                    "its tasks were killed"
                ),
            ),
        }
    }
}

/// `fw`'s connection at `now`, from the Lease cache.
pub fn connection(fw: &Framework, leases: &Store<Lease>, now: Timestamp) -> Connection {
    let ns = fw.namespace().unwrap_or_default();
    let lease = leases.get(&ObjectRef::new(&lease_name(&fw.name_any())).within(&ns));
    let builtin = fw.spec.scheduler != Scheduler::External;
    decide(builtin, lease.as_deref().map(expiry), fw.spec.failover_timeout_seconds, now)
}

/// Deletes the live placements of a failed-over `fw` (the agents stop their
/// containers, the ledger releases their claims) and tells it in an Event.
/// Placements already being deleted are not counted again.
pub async fn kill(
    client: &Client,
    fw: &Framework,
    timeout_seconds: u32,
    offers: &[Arc<Offer>],
    placements: &[Arc<Placement>],
) -> Result<(), Error> {
    let ns = fw.namespace().unwrap_or_default();
    let api: Api<Placement> = Api::namespaced(client.clone(), &ns);
    let mut killed = 0;
    for p in live_placements(fw, offers, placements).filter(|p| p.metadata.deletion_timestamp.is_none()) {
        match api.delete(&p.name_any(), &DeleteParams::default()).await {
            Ok(_) => killed += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    if killed > 0 {
        let message = format!("failover timeout of {timeout_seconds}s passed: killed {killed} tasks");
        tracing::warn!(framework = %format!("{ns}/{}", fw.name_any()), killed, "failover timeout passed");
        let note = Note { type_: "Warning", reason: "FailedOver".into(), message };
        record(client, fw, &note).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_framework_without_a_lease_or_built_in_is_connected() {
        let now = at("2026-01-01T00:00:10Z");
        assert_eq!(decide(false, None, Some(2), now), Connection::Unleased);
        assert_eq!(decide(true, Some(at("2026-01-01T00:00:00Z")), Some(2), now), Connection::Unleased);
        assert_eq!(Connection::Unleased.condition("framework-f"), None);
    }

    #[test]
    fn a_lease_renewed_in_time_keeps_it_connected() {
        let c = decide(false, Some(at("2026-01-01T00:00:10Z")), Some(2), at("2026-01-01T00:00:09Z"));
        assert_eq!(c, Connection::Connected);
        assert_eq!(c.offers_stopped("framework-f"), None);
        assert!(c.condition("framework-f").unwrap().is_true());
    }

    #[test]
    fn an_expired_lease_disconnects_until_the_failover_timeout_then_fails_over() {
        let since = at("2026-01-01T00:00:10Z");
        let c = decide(false, Some(since), Some(2), at("2026-01-01T00:00:11Z"));
        assert_eq!(c, Connection::Disconnected { since, kill_at: Some(at("2026-01-01T00:00:12Z")) });
        assert_eq!(c.offers_stopped("framework-f").unwrap(), "its lease framework-f expired at 2026-01-01T00:00:10Z");
        let cond = c.condition("framework-f").unwrap();
        assert_eq!((cond.is_true(), cond.reason.as_str()), (false, "LeaseExpired"));
        assert!(cond.message.contains("killed at 2026-01-01T00:00:12Z"), "{}", cond.message);

        let c = decide(false, Some(since), Some(2), at("2026-01-01T00:00:12Z"));
        assert_eq!(c, Connection::FailedOver { since, at: at("2026-01-01T00:00:12Z"), timeout_seconds: 2 });
        let cond = c.condition("framework-f").unwrap();
        assert_eq!(cond.reason, "FailedOver");
        assert!(cond.message.contains("failover timeout of 2s"), "{}", cond.message);
    }

    #[test]
    fn without_a_failover_timeout_its_tasks_are_never_killed() {
        let since = at("2026-01-01T00:00:10Z");
        let c = decide(false, Some(since), None, at("2027-01-01T00:00:00Z"));
        assert_eq!(c, Connection::Disconnected { since, kill_at: None });
        assert!(c.condition("framework-f").unwrap().message.contains("keep running"));
    }

    #[test]
    fn a_lease_expires_at_its_renewal_plus_its_duration() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
        let mut lease = Lease::default();
        lease.metadata.creation_timestamp = Some(Time(at("2026-01-01T00:00:00Z")));
        assert_eq!(expiry(&lease), at("2026-01-01T00:00:00Z"), "never renewed: expired when made");
        lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            renew_time: Some(MicroTime(at("2026-01-01T00:00:05Z"))),
            lease_duration_seconds: Some(3),
            ..Default::default()
        });
        assert_eq!(expiry(&lease), at("2026-01-01T00:00:08Z"));
        // As the Python client writes it: an offset, not `Z`.
        let python = serde_json::json!({"metadata": {"name": "framework-f"}, "spec": {
            "renewTime": "2026-01-01T00:00:05.000000+00:00", "leaseDurationSeconds": 3}});
        assert_eq!(expiry(&serde_json::from_value(python).unwrap()), at("2026-01-01T00:00:08Z"));
    }
}
