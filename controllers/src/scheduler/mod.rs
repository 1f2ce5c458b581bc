//! Shared-state scheduling: a pure planner and a ledger applier.
//!
//! - `plan`: agents and demand in, a plan out (strategies, gangs).
//! - `choose`: which agent a strategy prefers (a heap for runs of alike demands).
//! - `constraints`: which agents a task group's next instance may go to, and why not.
//! - `explain`: why a task fits nowhere, in numbers.
//! - `claim`: one agent's ledger write with a resourceVersion precondition.
//! - `apply`: a whole plan claimed, gangs kept whole across agents.

pub mod apply;
pub mod choose;
pub mod claim;
pub mod constraints;
pub mod explain;
pub mod plan;
