//! The allocator: which free capacity to offer to which `mode: Offers`
//! framework, and which offers to withdraw. The planner ([`plan_round`]) is
//! pure — agents, frameworks, policy, declines and open offers in, a
//! [`RoundPlan`] out; time comes in as an argument — so unit and property
//! tests drive it. The applier ([`apply::apply`]) writes a plan to the API.
//! Run by `crate::offers::allocation_loop`.
//!
//! Rules, in the order they bind:
//! - an offer is never made on capacity another offer or a placement holds
//!   (offer exclusivity, no overcommit);
//! - a role's limit is never exceeded by its placements and offers;
//! - frameworks without pending tasks get nothing (suppressed);
//! - a framework is offered only agents its pending tasks can use
//!   (`FrameworkInput::usable`, from their constraints);
//! - a framework is not offered an agent it declined until the filter ends;
//! - roles below their guarantee are served first, and fair sharing leaves
//!   the capacity their pending tasks need;
//! - then weighted DRF among roles and among the frameworks of a role
//!   (or strict priority, per the cluster), one task's worth at a time;
//! - the first framework whose task fits nowhere gets an agent kept for it,
//!   so large tasks are not starved by small ones.
//!
//! Layout:
//! - `apply`: the applier — hold claims with resourceVersion preconditions, Offer objects, rescinds.
//! - `input`: the round's input and output types, and the policy from a `Cluster`.
//! - `snapshot`: the inputs read from Agents, Frameworks and Offers.
//! - `tally`: consumption, shares and the serving order.
//! - `round`: the round itself.
//! - `why`: why a framework got nothing.

pub mod apply;
mod input;
mod round;
pub mod snapshot;
mod tally;
mod why;

#[cfg(test)]
mod fairness;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;

pub use input::{
    AgentInput, DeclineFilter, Demand, FrameworkInput, Idle, IdleReason, Input, NewOffer, OutstandingOffer, Policy,
    PolicyError, RescindReason, RoleQuota, RoundPlan,
};
pub use round::plan_round;
pub use tally::dominant_share;
