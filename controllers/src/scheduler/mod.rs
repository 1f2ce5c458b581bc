//! Shared-state scheduling: a pure planner and a ledger applier.
//!
//! - `plan`: agents and demand in, a plan out (strategies, gangs).
//! - `constraints`: which agents a task group's next instance may go to, and why not.
//! - `explain`: why a task fits nowhere, in numbers.
//! - `claim`: the applier writing claims with resourceVersion preconditions.

pub mod claim;
pub mod constraints;
pub mod explain;
pub mod plan;
