//! Why a task fits nowhere, in numbers: each agent counted under the first
//! reason that keeps the task off it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use berth_api::ports::{self, PortRange};
use berth_api::{Quantity, ResourceVec};

use super::plan::{AgentView, Demand};

/// "0/5 agents fit: 3 insufficient memory (need 2Gi, most free 1Gi), 2 excluded by UNIQUE hostname".
/// Each agent counts under its first reason: not schedulable, then a
/// constraint, then resources (under each resource it is short of, host
/// ports included: "insufficient ports (need 2, most free 1)").
pub fn explain(
    agents: &[AgentView],
    free: &[ResourceVec],
    free_ports: &[Vec<PortRange>],
    ruled_out: &[Option<String>],
    demand: &Demand,
) -> String {
    let need = &demand.resources;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut open = Vec::new();
    let mut open_ports = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        match (a.excluded, &ruled_out[i]) {
            (Some(why), _) => *reasons.entry(why.to_string()).or_default() += 1,
            (None, Some(why)) => *reasons.entry(why.clone()).or_default() += 1,
            (None, None) => {
                open.push(free[i]);
                open_ports.push(ports::count(&free_ports[i]));
            }
        }
    }
    let short_of_ports: Vec<u32> = open_ports.iter().copied().filter(|n| *n < demand.ports).collect();
    if let Some(most) = short_of_ports.iter().max() {
        let need = demand.ports;
        reasons.insert(format!("insufficient ports (need {need}, most free {most})"), short_of_ports.len());
    }
    for name in ["cpu", "memory"] {
        let short: Vec<&ResourceVec> = open.iter().filter(|f| need.shortfalls(f).iter().any(|s| s.0 == name)).collect();
        if short.is_empty() {
            continue;
        }
        let (need_q, most) = match name {
            "cpu" => (
                Quantity::from_millis(need.cpu_millis),
                Quantity::from_millis(short.iter().map(|f| f.cpu_millis).max().unwrap_or(0)),
            ),
            _ => (
                Quantity::from_bytes(need.memory_bytes),
                Quantity::from_bytes(short.iter().map(|f| f.memory_bytes).max().unwrap_or(0)),
            ),
        };
        reasons.insert(format!("insufficient {name} (need {need_q}, most free {most})"), short.len());
    }
    let mut msg = format!("0/{} agents fit", agents.len());
    if agents.is_empty() {
        msg.push_str(": no agents are registered");
    }
    for (i, (why, n)) in reasons.iter().enumerate() {
        let _ = write!(msg, "{}{n} {why}", if i == 0 { ": " } else { ", " });
    }
    msg
}
