//! The built-in batch scheduler's decisions, all pure (the Job, its
//! placements of every attempt and the clock in; decisions out), shared by
//! the shared-state path (`placing::place`) and the `Offers` path
//! (`offers::builtin::pending`), so both obey the same rules:
//!
//! - `history`: one instance's attempts: how many, how many failed (lost,
//!   evicted and suspended attempts never count), its last exit code.
//! - `dag`: `dependsOn`: a task group waits until the groups it depends on
//!   are complete, and is skipped when one of them failed.
//! - `decide`: what the Job needs now: which instances get which attempt
//!   (parallelism, retries with backoff, suspend, deadline), whether the Job
//!   stopped, and when to look again.
//! - `groups`: per task group and per instance status.

pub mod dag;
pub mod decide;
pub mod groups;
pub mod history;

pub use decide::{Assessment, State, Stop, assess, needed};
