//! The offers protocol, running: allocation rounds over the watch caches,
//! and the frameworks' answers — accepts (Placements naming an offer) and
//! declines (`spec.decline` on the Offer).
//!
//! An `external` framework in `Offers` mode states its demand the Mesos
//! way: it wants offers unless `spec.suppressed` is true (suppress / revive),
//! in multiples of `spec.offerUnit`. A `builtin-batch` framework in
//! `Offers` mode wants what its Jobs' unplaced instances need, only on the
//! agents their constraints allow, and the loop answers its offers itself.
//!
//! Layout:
//! - `inputs`: the caches and a round's planner input read from them.
//! - `builtin`: the built-in batch scheduler in `Offers` mode: waiting instances, demand, usable agents, the plan.
//! - `builtin_answer`: its answers: placements naming offers, accepts, declines.
//! - `failover`: is an external framework's scheduler connected (its Lease); its tasks killed after the timeout.
//! - `answers`: accepts and declines turned into ledger writes and Offer states.
//! - `recent`: offers made that the cache does not show yet, counted in the next round.
//! - `refuse`: marking a Placement that cannot take its offer `Failed`.
//! - `status`: `Framework.status` from a round.
//! - `run`: the loop: a round on every change and on a short period.

pub mod answers;
pub mod builtin;
pub mod builtin_answer;
pub mod failover;
pub mod inputs;
pub mod recent;
mod refuse;
pub mod run;
pub mod status;
#[cfg(test)]
mod tests;

pub use inputs::Caches;
pub use run::allocation_loop;
