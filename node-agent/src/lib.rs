//! `berth-agent`: the node agent.
pub mod runtime;
