//! Shared-state scheduling: a pure planner and a ledger applier.

pub mod claim;
pub mod plan;
