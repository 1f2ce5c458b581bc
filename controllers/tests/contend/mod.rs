//! The contention harness: a fleet of agents on held fake runtimes, the
//! contending frameworks, an observer that checks the invariants, and a
//! count of the SharedState schedulers' ledger conflicts.
//!
//! Layout:
//! - `fleet`: agents of several sizes and racks, a node agent and a held fake each.
//! - `frameworks`: an external Offers framework, and a SharedState framework's Job submitter.
//! - `observe`: one observation and the invariants checked on it.
//! - `conflicts`: counting the 409s the SharedState claim path retried.

pub mod conflicts;
pub mod fleet;
pub mod frameworks;
pub mod observe;
