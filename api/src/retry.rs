//! Retries of failed task instances and restarts of service instances:
//! how many, and how long to wait before each (exponential backoff, as
//! Kubernetes' Job `backoffLimit` and Marathon's `backoffSeconds`). An
//! attempt that ended through no fault of its own (its agent was lost, it
//! was evicted or suspended) is not a failure and is never counted.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default seconds before the first retry.
pub const DEFAULT_BACKOFF_SECONDS: u32 = 10;
/// Default longest wait between two attempts.
pub const DEFAULT_MAX_BACKOFF_SECONDS: u32 = 300;

/// How failed instances of a task group are retried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Batch: how many times one instance may fail and be retried; one
    /// more failure fails the Job (default 0: the first failure does).
    /// Services restart their instances without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub limit: Option<u32>,
    /// Seconds before the first retry (default 10); each further failure
    /// of the same instance doubles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 86400))]
    pub backoff_seconds: Option<u32>,
    /// The longest wait between two attempts (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 86400))]
    pub max_backoff_seconds: Option<u32>,
}

impl RetryPolicy {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(0)
    }

    /// How long to wait before the attempt that follows the `failures`-th
    /// failure in a row (1 for the first): `backoff × 2^(failures-1)`,
    /// at most `maxBackoffSeconds`; zero with no failure.
    pub fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let base = u64::from(self.backoff_seconds.unwrap_or(DEFAULT_BACKOFF_SECONDS));
        let max = u64::from(self.max_backoff_seconds.unwrap_or(DEFAULT_MAX_BACKOFF_SECONDS));
        let doubled = base.saturating_mul(1u64 << (failures - 1).min(32));
        Duration::from_secs(doubled.min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let p = RetryPolicy { limit: Some(5), backoff_seconds: Some(2), max_backoff_seconds: Some(10) };
        let waits: Vec<u64> = (0..6).map(|f| p.backoff(f).as_secs()).collect();
        assert_eq!(waits, [0, 2, 4, 8, 10, 10]);
        let default = RetryPolicy::default();
        assert_eq!((default.limit(), default.backoff(1).as_secs(), default.backoff(60).as_secs()), (0, 10, 300));
    }
}
