//! A Marathon app definition (`POST /v2/apps`, `marathon app add`), the
//! fields Berth maps. Every field is optional and `null` reads as absent,
//! as Marathon's own exports write them; fields Berth does not map are
//! found by `fields.rs` on the raw JSON, so none is silently dropped.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Marathon's defaults for what an app leaves out.
pub mod defaults {
    pub const CPUS: f64 = 1.0;
    pub const MEM_MIB: f64 = 128.0;
    pub const INSTANCES: u32 = 1;
    pub const BACKOFF_SECONDS: u32 = 1;
    pub const MAX_LAUNCH_DELAY_SECONDS: u32 = 300;
    pub const MINIMUM_HEALTH_CAPACITY: f64 = 1.0;
    pub const MAXIMUM_OVER_CAPACITY: f64 = 1.0;
    pub const GRACE_PERIOD_SECONDS: u32 = 300;
    pub const INTERVAL_SECONDS: u32 = 60;
    pub const TIMEOUT_SECONDS: u32 = 20;
    pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: Option<String>,
    pub cmd: Option<String>,
    pub args: Option<Vec<String>>,
    pub cpus: Option<f64>,
    pub mem: Option<f64>,
    pub instances: Option<u32>,
    /// Values are strings, or `{"secret": …}` references (refused).
    pub env: Option<BTreeMap<String, Value>>,
    pub port_definitions: Option<Vec<PortDefinition>>,
    /// The legacy form of `portDefinitions`: port numbers only.
    pub ports: Option<Vec<u32>>,
    pub require_ports: Option<bool>,
    pub constraints: Option<Vec<Vec<String>>>,
    pub container: Option<Container>,
    pub health_checks: Option<Vec<HealthCheck>>,
    pub upgrade_strategy: Option<UpgradeStrategy>,
    pub backoff_seconds: Option<u32>,
    pub max_launch_delay_seconds: Option<u32>,
    pub labels: Option<BTreeMap<String, String>>,
    pub task_kill_grace_period_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    pub port: Option<u32>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `DOCKER` or `MESOS` (both run `docker.image`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub docker: Option<Docker>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    pub image: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `HTTP` (default), `MESOS_HTTP`, `TCP`, `MESOS_TCP` or `COMMAND`.
    pub protocol: Option<String>,
    pub path: Option<String>,
    pub port_index: Option<u32>,
    pub command: Option<CommandCheck>,
    pub grace_period_seconds: Option<u32>,
    pub interval_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub max_consecutive_failures: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CommandCheck {
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    pub minimum_health_capacity: Option<f64>,
    pub maximum_over_capacity: Option<f64>,
}
