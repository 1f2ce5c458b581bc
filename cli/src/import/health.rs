//! Marathon `healthChecks` as Berth health checks: `HTTP`/`MESOS_HTTP` →
//! `http`, `TCP`/`MESOS_TCP` → `tcp`, `COMMAND` → a shell `command`, each
//! with Marathon's timings (its defaults written out, as they differ from
//! Berth's).

use berth_api::health::{HealthCheck, HttpCheck, TcpCheck};

use super::app::{self, defaults};
use super::error::Problem;

/// Berth's largest grace period, interval and timeout.
const MAX_SECONDS: u32 = 3600;
/// Berth's largest `maxConsecutiveFailures`.
const MAX_FAILURES: u32 = 1000;

/// The check of `healthChecks[i]`, if it maps; problems go to `out`.
pub fn map(i: usize, hc: &app::HealthCheck, ports: usize, out: &mut Vec<Problem>) -> Option<HealthCheck> {
    let path = format!("healthChecks[{i}]");
    let mut check = HealthCheck::default();
    let protocol = hc.protocol.as_deref().unwrap_or("HTTP").to_ascii_uppercase();
    let port_index = hc.port_index.unwrap_or(0);
    match protocol.as_str() {
        "HTTP" | "MESOS_HTTP" => {
            let p = hc.path.clone().unwrap_or_else(|| "/".into());
            if !p.starts_with('/') {
                out.push(Problem::invalid(format!("{path}.path"), format!("{p:?} must start with '/'")));
            }
            check.http = Some(HttpCheck { path: Some(p), port_index: Some(port_index) });
        }
        "TCP" | "MESOS_TCP" => check.tcp = Some(TcpCheck { port_index: Some(port_index) }),
        "COMMAND" | "MESOS_COMMAND" => match hc.command.as_ref().and_then(|c| c.value.as_deref()) {
            Some(v) if !v.trim().is_empty() => check.command = vec!["/bin/sh".into(), "-c".into(), v.into()],
            _ => out.push(Problem::invalid(format!("{path}.command.value"), "a COMMAND check needs a command")),
        },
        "HTTPS" | "MESOS_HTTPS" => {
            out.push(Problem::unsupported(format!("{path}.protocol"), "Berth's HTTP checks are plain HTTP"));
            return None;
        }
        other => {
            out.push(Problem::invalid(
                format!("{path}.protocol"),
                format!("{other:?} is not one of HTTP, MESOS_HTTP, TCP, MESOS_TCP, COMMAND"),
            ));
            return None;
        }
    }
    if (check.http.is_some() || check.tcp.is_some()) && port_index as usize >= ports {
        out.push(Problem::invalid(
            format!("{path}.portIndex"),
            format!("port {port_index} is not among the app's {ports} ports"),
        ));
    }
    let mut seconds = |field: &str, v: Option<u32>, default: u32, min: u32, max: u32| {
        let v = v.unwrap_or(default);
        if v < min || v > max {
            out.push(Problem::invalid(format!("{path}.{field}"), format!("{v} is not within {min}–{max}")));
        }
        Some(v)
    };
    check.grace_period_seconds =
        seconds("gracePeriodSeconds", hc.grace_period_seconds, defaults::GRACE_PERIOD_SECONDS, 0, MAX_SECONDS);
    check.interval_seconds =
        seconds("intervalSeconds", hc.interval_seconds, defaults::INTERVAL_SECONDS, 1, MAX_SECONDS);
    check.timeout_seconds = seconds("timeoutSeconds", hc.timeout_seconds, defaults::TIMEOUT_SECONDS, 1, MAX_SECONDS);
    check.max_consecutive_failures = seconds(
        "maxConsecutiveFailures",
        hc.max_consecutive_failures,
        defaults::MAX_CONSECUTIVE_FAILURES,
        0,
        MAX_FAILURES,
    );
    Some(check)
}
