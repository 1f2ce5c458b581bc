//! What a round reads: the watch caches, turned into the planner's input.

use std::collections::HashSet;
use std::sync::Arc;

use berth_api::framework::{Mode, Scheduler};
use berth_api::{Agent, Cluster, ClusterSpec, Framework, Job, Offer, OfferState, Placement, ResourceVec};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use super::builtin;
use super::builtin_answer::is_builtin_offers;
use super::failover::{connection, lease_name};
use crate::allocator::snapshot::{agent_input, decline_filter, framework_input, outstanding};
use crate::allocator::{DeclineFilter, Demand, FrameworkInput, Input, Policy};
use crate::scheduler::plan::AgentView;

/// The offer unit of an external framework that names none: 100m CPU, 64Mi.
pub const DEFAULT_OFFER_UNIT: ResourceVec = ResourceVec { cpu_millis: 100, memory_bytes: 64 << 20 };

/// The caches the allocator reads.
#[derive(Clone)]
pub struct Caches {
    pub agents: Store<Agent>,
    pub frameworks: Store<Framework>,
    pub offers: Store<Offer>,
    pub placements: Store<Placement>,
    pub clusters: Store<Cluster>,
    pub jobs: Store<Job>,
    /// Every Lease: external frameworks renew `framework-<name>` to stay connected.
    pub leases: Store<Lease>,
}

/// The cluster's policy: the first `Cluster` by name, or the defaults.
pub fn cluster_spec(clusters: &Store<Cluster>) -> ClusterSpec {
    let mut all = clusters.state();
    all.sort_by_key(|c| c.name_any());
    all.first().map(|c| c.spec.clone()).unwrap_or_default()
}

/// True when the offer is still open: not answered and not closed.
pub fn is_open(o: &Offer) -> bool {
    o.status.as_ref().and_then(|s| s.state).unwrap_or_default() == OfferState::Outstanding
}

/// What an external `fw` asks for: nothing unless it is in `Offers` mode
/// and not suppressed; then all it can get, in units of its offer unit.
/// (A builtin-batch framework's demand is its waiting tasks: see `builtin`.)
pub fn demand(fw: &Framework, cluster_total: ResourceVec) -> Option<Demand> {
    let spec = &fw.spec;
    if spec.mode != Mode::Offers || spec.scheduler != Scheduler::External || spec.suppressed == Some(true) {
        return None;
    }
    let unit = spec.offer_unit.as_ref().and_then(|u| u.to_vec().ok()).unwrap_or(DEFAULT_OFFER_UNIT);
    let task = if unit == ResourceVec::ZERO { DEFAULT_OFFER_UNIT } else { unit };
    Some(Demand {
        total: ResourceVec::new(
            cluster_total.cpu_millis.max(task.cpu_millis),
            cluster_total.memory_bytes.max(task.memory_bytes),
        ),
        task,
    })
}

/// `fw`'s live placements: those not finished that accepted its offers.
pub fn live_placements<'a>(
    fw: &Framework,
    offers: &[Arc<Offer>],
    placements: &'a [Arc<Placement>],
) -> impl Iterator<Item = &'a Arc<Placement>> {
    let ns = fw.namespace().unwrap_or_default();
    let own: HashSet<String> = offers
        .iter()
        .filter(|o| o.namespace().unwrap_or_default() == ns && o.spec.framework == fw.name_any())
        .map(|o| o.name_any())
        .collect();
    placements
        .iter()
        .filter(move |p| p.namespace().unwrap_or_default() == ns)
        .filter(move |p| p.spec.offer.as_ref().is_some_and(|o| own.contains(o)))
        .filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
}

/// The resources of `fw`'s live placements.
pub fn allocated(fw: &Framework, offers: &[Arc<Offer>], placements: &[Arc<Placement>]) -> ResourceVec {
    live_placements(fw, offers, placements).filter_map(|p| p.spec.container.resources.to_vec().ok()).sum()
}

/// The filter of a decline the allocator has not yet recorded: from now.
fn pending_decline(o: &Offer, default_refuse: u32, now: Timestamp) -> Option<DeclineFilter> {
    let d = o.spec.decline.as_ref()?;
    if !is_open(o) {
        return None;
    }
    let secs = d.refuse_seconds.unwrap_or(default_refuse);
    Some(DeclineFilter {
        framework: format!("{}/{}", o.namespace().unwrap_or_default(), o.spec.framework),
        agent: o.spec.agent.clone(),
        until: now.checked_add(SignedDuration::from_secs(secs.into())).ok()?,
    })
}

/// The planner's input for a round at `now`.
pub fn input(c: &Caches, now: Timestamp) -> Input {
    let spec = cluster_spec(&c.clusters);
    let policy = Policy::from_spec(&spec).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the cluster's policy cannot be used; allocating with the defaults");
        Policy::default()
    });
    let agents: Vec<_> = c.agents.state().iter().map(|a| agent_input(a, &spec.agent_selector)).collect();
    let total: ResourceVec = agents.iter().filter(|a| a.schedulable).map(|a| a.allocatable).sum();
    let offers = c.offers.state();
    let placements = c.placements.state();
    let jobs = c.jobs.state();
    let views: Vec<AgentView> = c.agents.state().iter().map(|a| AgentView::of(a, &spec.agent_selector)).collect();
    let frameworks = c
        .frameworks
        .state()
        .iter()
        .map(|fw| {
            let held = allocated(fw, &offers, &placements);
            if !is_builtin_offers(fw) {
                let disconnected = connection(fw, &c.leases, now).offers_stopped(&lease_name(&fw.name_any()));
                return FrameworkInput { disconnected, ..framework_input(fw, held, demand(fw, total)) };
            }
            let (demand, usable) =
                builtin::wants(&builtin::pending(fw, &jobs, &placements, &HashSet::new(), now), &views);
            FrameworkInput { usable, ..framework_input(fw, held, demand) }
        })
        .collect();
    let filters = offers
        .iter()
        .filter_map(|o| decline_filter(o).or_else(|| pending_decline(o, spec.refuse_seconds(), now)))
        .collect();
    Input { agents, frameworks, policy, filters, offers: offers.iter().filter_map(|o| outstanding(o)).collect() }
}
