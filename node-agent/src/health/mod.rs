//! Health checks (`Container.healthChecks`) of a running placement, run by
//! its supervisor while the container runs — and again for a container the
//! agent adopts after a restart. Each check runs every `intervalSeconds`,
//! bounded by `timeoutSeconds` (`probe`); the outcomes add up to the
//! placement's `status.health` (`tally`), written only when it changes
//! (healthiness flips or the failure count moves), never every interval.
//! Failures within `gracePeriodSeconds` of the container's start are
//! reported but not counted; once a check has failed
//! `maxConsecutiveFailures` times in a row (0: never) the container is
//! stopped and the placement ends `Failed`/`Unhealthy`.
//!
//! The checks are futures inside the supervisor's, not tasks of their own:
//! they end with the container's wait or a stop, or with the supervisor.

mod probe;
mod tally;

use std::time::Duration;

use berth_api::health::{HealthCheck, Probe};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::{Instant, MissedTickBehavior};

pub use tally::{Tally, to_write};

use crate::Error;
use crate::kill::StopCause;
use crate::report::Reporter;
use crate::runtime::Runtime;

/// One check's outcome: which check, what it saw, and whether a failure counts.
type Outcome = (usize, Result<(), String>, bool);

/// Runs `checks` against container `id` until one has failed its
/// `maxConsecutiveFailures` times in a row, and resolves with the cause to
/// stop it for; reports `status.health` through `reporter` as it changes.
/// Never resolves for a placement without checks, or whose checks never
/// stop it. Fails only when the placement ended meanwhile (another writer).
pub async fn watch<R: Runtime>(
    runtime: &R,
    id: &str,
    checks: &[HealthCheck],
    reporter: &mut Reporter,
) -> Result<StopCause, Error> {
    if checks.is_empty() {
        return std::future::pending().await;
    }
    let ports = reporter.status.ports.clone();
    let started = started_at(reporter.status.started_at.as_deref());
    let mut tally = Tally::new(checks.iter().map(HealthCheck::max_consecutive_failures));
    let mut runs: Vec<BoxStream<'_, Outcome>> = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        match check.probe() {
            Ok(probe) => runs.push(every(runtime, id, i, check, probe, &ports, started)),
            // The API server refuses such a check; one that got through never passes.
            Err(why) => tally.record(i, Err(format!("healthChecks[{i}]: {why}")), false),
        }
    }
    let mut outcomes = futures::stream::select_all(runs);
    loop {
        if let Some(next) = tally.status()
            && let Some(health) = to_write(reporter.status.health.as_ref(), next, &berth_api::now_rfc3339())
        {
            tracing::info!(
                placement = %reporter.name,
                healthy = health.healthy,
                failures = health.consecutive_failures,
                message = health.message.as_deref().unwrap_or_default(),
                "health changed"
            );
            match reporter.health(health).await {
                Ok(()) => {}
                // Written with the next outcome: the API may be back by then.
                Err(Error::Kube(e)) => {
                    tracing::warn!(placement = %reporter.name, error = %e, "reporting health failed")
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(why) = tally.verdict() {
            return Ok(StopCause::Unhealthy(why));
        }
        match outcomes.next().await {
            Some((i, outcome, counts)) => tally.record(i, outcome, counts),
            None => return std::future::pending().await,
        }
    }
}

/// Check `i` run every `intervalSeconds` from now on (the first at once);
/// its failures count from `gracePeriodSeconds` after `started`.
fn every<'a, R: Runtime>(
    runtime: &'a R,
    id: &'a str,
    i: usize,
    check: &HealthCheck,
    probe: Probe<'a>,
    ports: &'a [u16],
    started: Instant,
) -> BoxStream<'a, Outcome> {
    let mut tick = tokio::time::interval(Duration::from_secs(check.interval_seconds().into()));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let timeout = Duration::from_secs(check.timeout_seconds().into());
    let grace_ends = started + Duration::from_secs(check.grace_period_seconds().into());
    futures::stream::unfold((tick, probe), move |(mut tick, probe)| async move {
        tick.tick().await;
        let outcome = probe::run(runtime, id, &probe, ports, timeout).await;
        let counts = Instant::now() >= grace_ends;
        Some(((i, outcome, counts), (tick, probe)))
    })
    .boxed()
}

/// The container's start (`status.startedAt`, so the grace period survives
/// an agent restart) on this process's clock; now when it is unknown.
fn started_at(started: Option<&str>) -> Instant {
    let now = Instant::now();
    let Some(at) = started.and_then(|s| s.parse::<jiff::Timestamp>().ok()) else { return now };
    let ago = jiff::Timestamp::now().duration_since(at);
    if ago.is_negative() {
        return now;
    }
    now.checked_sub(ago.unsigned_abs()).unwrap_or(now)
}
