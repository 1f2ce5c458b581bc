//! Host ports as a resource (as Mesos treats its `ports` range resource):
//! an agent offers ranges of ports ([`PortRange`]), a container asks for a
//! number of them ([`PortRequest`], Marathon's `portDefinitions`), and a
//! placement's claim holds the concrete ports it was given. Ports are not
//! part of fairness (they are not in `ResourceVec`), but a task fits an
//! agent only if the agent has enough free ports.
//!
//! Port sets are kept as sorted, disjoint, non-adjacent ranges: an agent's
//! default `31000-32000` is one entry, not a thousand.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The ports from `begin` to `end`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct PortRange {
    #[schemars(range(min = 1))]
    pub begin: u16,
    #[schemars(range(min = 1))]
    pub end: u16,
}

/// One host port a container asks for; the scheduler picks which.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PortRequest {
    /// Names the port: the container also gets `PORT_<NAME>` (upper-cased,
    /// `-` as `_`). Lowercase letters, digits and `-`; unique in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"), length(max = 15))]
    pub name: Option<String>,
}

/// The default port ranges an agent offers.
pub const DEFAULT_PORTS: &str = "31000-32000";

/// A port range list that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a list of port ranges (example: 31000-32000,40000)")]
pub struct PortsError(pub String);

impl PortRange {
    /// How many ports it has.
    pub fn len(&self) -> u32 {
        (self.end as u32 + 1).saturating_sub(self.begin as u32)
    }

    /// True when it holds no port (`end < begin`).
    pub fn is_empty(&self) -> bool {
        self.end < self.begin
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.begin == self.end { write!(f, "{}", self.begin) } else { write!(f, "{}-{}", self.begin, self.end) }
    }
}

/// Reads `31000-32000,40000` (ranges and single ports, comma separated).
pub fn parse(s: &str) -> Result<Vec<PortRange>, PortsError> {
    let bad = || PortsError(s.to_string());
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (b, e) = part.split_once('-').unwrap_or((part, part));
        let begin: u16 = b.trim().parse().map_err(|_| bad())?;
        let end: u16 = e.trim().parse().map_err(|_| bad())?;
        if begin == 0 || end < begin {
            return Err(bad());
        }
        out.push(PortRange { begin, end });
    }
    Ok(normalize(out))
}

/// Sorted, merged, without empty ranges.
pub fn normalize(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort();
    let mut out: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.begin as u32 <= last.end as u32 + 1 => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// How many ports `ranges` hold.
pub fn count(ranges: &[PortRange]) -> u32 {
    ranges.iter().map(PortRange::len).sum()
}

/// True when `port` is in `ranges`.
pub fn contains(ranges: &[PortRange], port: u16) -> bool {
    ranges.iter().any(|r| r.begin <= port && port <= r.end)
}

/// `ranges` less `taken` (ports outside `ranges` are ignored).
pub fn minus(ranges: &[PortRange], taken: impl IntoIterator<Item = u16>) -> Vec<PortRange> {
    let mut taken: Vec<u16> = taken.into_iter().collect();
    taken.sort_unstable();
    taken.dedup();
    let mut out = Vec::new();
    for r in normalize(ranges.to_vec()) {
        let mut begin = r.begin as u32;
        for &p in taken.iter().filter(|p| r.begin <= **p && **p <= r.end) {
            if begin < p as u32 {
                out.push(PortRange { begin: begin as u16, end: p - 1 });
            }
            begin = p as u32 + 1;
        }
        if begin <= r.end as u32 {
            out.push(PortRange { begin: begin as u16, end: r.end });
        }
    }
    out
}

/// The `n` lowest ports of `ranges`, or `None` when it has fewer.
pub fn lowest(ranges: &[PortRange], n: u32) -> Option<Vec<u16>> {
    let ports: Vec<u16> = ranges.iter().flat_map(|r| r.begin..=r.end).take(n as usize).collect();
    (ports.len() == n as usize).then_some(ports)
}

/// The ports as ranges.
pub fn to_ranges(ports: &[u16]) -> Vec<PortRange> {
    normalize(ports.iter().map(|&p| PortRange { begin: p, end: p }).collect())
}

/// Port names unique and well formed in every task group; the first bad one
/// is named by its field path. (The CRD schema checks each name's shape;
/// uniqueness needs this check, which the Job controller reports.)
pub fn validate(groups: &[crate::TaskGroup]) -> Result<(), String> {
    for (i, g) in groups.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for (j, p) in g.container.ports.iter().enumerate() {
            let Some(name) = &p.name else { continue };
            let field = format!("spec.taskGroups[{i}].ports[{j}].name");
            let well_formed = name.len() <= 15
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && !name.ends_with('-')
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !well_formed {
                return Err(format!("{field}: {name:?} must be lowercase letters, digits and '-', at most 15"));
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("{field}: {name:?} is used by another port of this task group"));
            }
        }
    }
    Ok(())
}

/// The environment a container gets for its host `ports` (in request
/// order): `PORT0`, `PORT1`, …, `PORT` (= `PORT0`) and `PORT_<NAME>` for
/// named requests.
pub fn env(requests: &[PortRequest], ports: &[u16]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        out.push((format!("PORT{i}"), port.to_string()));
    }
    if let Some(first) = ports.first() {
        out.push(("PORT".to_string(), first.to_string()));
    }
    for (req, port) in requests.iter().zip(ports) {
        if let Some(name) = &req.name {
            out.push((format!("PORT_{}", name.to_ascii_uppercase().replace('-', "_")), port.to_string()));
        }
    }
    out
}

#[cfg(test)]
#[path = "ports_tests.rs"]
mod tests;
