//! Health checks (Marathon's `healthChecks`, Kubernetes' liveness probes):
//! the agent runs each of a placement's checks while its container runs —
//! an HTTP GET or a TCP connect to one of its host ports, or a command run
//! inside the container — and reports the outcome in
//! `PlacementStatus.health`. Failures during the grace period do not count;
//! after `maxConsecutiveFailures` failures in a row the agent stops the
//! container, which ends `Failed` with reason [`REASON_UNHEALTHY`], and its
//! framework replaces it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `status.reason` of a placement its agent stopped because a health check
/// failed `maxConsecutiveFailures` times in a row.
pub const REASON_UNHEALTHY: &str = "Unhealthy";

/// Default seconds after the container starts during which failures do not count.
pub const DEFAULT_GRACE_PERIOD_SECONDS: u32 = 15;
/// Default seconds between two checks.
pub const DEFAULT_INTERVAL_SECONDS: u32 = 10;
/// Default seconds a check may take before it counts as failed.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5;
/// Default failures in a row after which the container is stopped.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// One health check: exactly one of `http`, `tcp` or `command`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Healthy when a GET of `path` on the host port answers 200–399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// Healthy when a TCP connection to the host port opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    /// Healthy when this command, run inside the container, exits 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Seconds after the container starts during which failures do not
    /// count (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 3600))]
    pub grace_period_seconds: Option<u32>,
    /// Seconds between checks (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: Option<u32>,
    /// Seconds a check may take; longer is a failure (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<u32>,
    /// Failures in a row after which the container is stopped (default 3);
    /// 0 reports the container unhealthy but never stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub max_consecutive_failures: Option<u32>,
}

/// An HTTP GET against one of the container's host ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// The path requested (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Which of the container's `ports` (0-based, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
}

/// A TCP connect to one of the container's host ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpCheck {
    /// Which of the container's `ports` (0-based, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
}

/// What a check is, once validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe<'a> {
    Http { path: &'a str, port_index: u32 },
    Tcp { port_index: u32 },
    Command(&'a [String]),
}

impl HealthCheck {
    /// The probe, or why the check is not exactly one kind.
    pub fn probe(&self) -> Result<Probe<'_>, String> {
        let kinds = [self.http.is_some(), self.tcp.is_some(), !self.command.is_empty()];
        match kinds.iter().filter(|k| **k).count() {
            0 => return Err("needs one of http, tcp or command".into()),
            1 => {}
            _ => return Err("must have only one of http, tcp or command".into()),
        }
        Ok(if let Some(h) = &self.http {
            Probe::Http { path: h.path.as_deref().unwrap_or("/"), port_index: h.port_index.unwrap_or(0) }
        } else if let Some(t) = &self.tcp {
            Probe::Tcp { port_index: t.port_index.unwrap_or(0) }
        } else {
            Probe::Command(&self.command)
        })
    }

    pub fn grace_period_seconds(&self) -> u32 {
        self.grace_period_seconds.unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS)
    }

    pub fn interval_seconds(&self) -> u32 {
        self.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS).max(1)
    }

    pub fn timeout_seconds(&self) -> u32 {
        self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).max(1)
    }

    pub fn max_consecutive_failures(&self) -> u32 {
        self.max_consecutive_failures.unwrap_or(DEFAULT_MAX_CONSECUTIVE_FAILURES)
    }
}

/// The agent's view of a running placement's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// True once every check last passed; false while one fails (or has
    /// not passed yet).
    pub healthy: bool,
    /// Failures in a row of the failing check (0 when healthy).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When it last became healthy or unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// What the failing check saw (`GET /health: 500`, `connection refused`,
    /// `exit code 1`), or none when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every health check of a container well formed and its `portIndex`
/// among its `ports`; problems named by field path under `prefix`
/// (`spec.taskGroups[0]`).
pub fn validate(container: &crate::Container, prefix: &str, out: &mut Vec<crate::validate::FieldError>) {
    for (i, check) in container.health_checks.iter().enumerate() {
        let field = format!("{prefix}.healthChecks[{i}]");
        match check.probe() {
            Err(why) => out.push(crate::validate::FieldError::new(field, why)),
            Ok(Probe::Http { port_index, .. }) | Ok(Probe::Tcp { port_index }) => {
                let kind = if check.http.is_some() { "http" } else { "tcp" };
                if port_index as usize >= container.ports.len() {
                    out.push(crate::validate::FieldError::new(
                        format!("{field}.{kind}.portIndex"),
                        format!("port {port_index} is not among the container's {} ports", container.ports.len()),
                    ));
                }
                if let Some(path) = check.http.as_ref().and_then(|h| h.path.as_deref())
                    && !path.starts_with('/')
                {
                    out.push(crate::validate::FieldError::new(format!("{field}.http.path"), "must start with '/'"));
                }
            }
            Ok(Probe::Command(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_exactly_one_kind() {
        let none = HealthCheck::default();
        assert_eq!(none.probe().unwrap_err(), "needs one of http, tcp or command");
        let both = HealthCheck { tcp: Some(TcpCheck::default()), command: vec!["true".into()], ..Default::default() };
        assert!(both.probe().unwrap_err().contains("only one"));
        let http = HealthCheck { http: Some(HttpCheck::default()), ..Default::default() };
        assert_eq!(http.probe().unwrap(), Probe::Http { path: "/", port_index: 0 });
        assert_eq!((http.interval_seconds(), http.max_consecutive_failures()), (10, 3));
    }

    #[test]
    fn a_port_index_must_name_a_port() {
        let container = crate::Container {
            health_checks: vec![HealthCheck {
                http: Some(HttpCheck { path: Some("/health".into()), port_index: Some(1) }),
                ..Default::default()
            }],
            ports: vec![Default::default()],
            ..Default::default()
        };
        let mut out = Vec::new();
        validate(&container, "spec.taskGroups[0]", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "spec.taskGroups[0].healthChecks[0].http.portIndex");
    }
}
