//! The planner's inputs read from API objects: agents (with the cluster's
//! selector), frameworks, open offers, decline filters, and demand from
//! pending tasks. Pure conversions, so the running allocator and tests
//! build rounds the same way.

use std::collections::BTreeMap;

use berth_api::{Agent, Framework, Offer, OfferState, ResourceVec};
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::input::{AgentInput, DeclineFilter, Demand, FrameworkInput, OutstandingOffer};
use super::tally::min_each;

/// `namespace/name` of a namespaced object.
fn id(obj: &impl ResourceExt) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// An agent as the planner sees it: schedulable only when ready, not
/// cordoned, its labels match the cluster's `selector`, and its ledger reads.
pub fn agent_input(agent: &Agent, selector: &BTreeMap<String, String>) -> AgentInput {
    let status = agent.status.clone().unwrap_or_default();
    let selected = crate::scheduler::plan::selected(agent, selector);
    let (allocatable, claimed) = (status.allocatable.to_vec(), status.claimed());
    let readable = allocatable.is_ok() && claimed.is_ok();
    AgentInput {
        name: agent.name_any(),
        allocatable: allocatable.unwrap_or_default(),
        claimed: claimed.unwrap_or_default(),
        holds: status.claims.iter().filter(|c| c.kind == berth_api::ClaimKind::Hold).map(|c| c.owner.clone()).collect(),
        schedulable: selected && readable && status.is_ready() && !agent.spec.unschedulable,
    }
}

/// What pending tasks of these sizes ask for: their sum, offered in units of
/// the smallest amount of each resource any of them needs; `None` (suppressed) when there are none.
pub fn demand_of(tasks: &[ResourceVec]) -> Option<Demand> {
    let first = *tasks.first()?;
    let task = tasks.iter().fold(first, |m, t| min_each(&m, t));
    Some(Demand { total: tasks.iter().copied().sum(), task })
}

/// A framework with what its placements hold and its demand.
pub fn framework_input(fw: &Framework, allocated: ResourceVec, demand: Option<Demand>) -> FrameworkInput {
    FrameworkInput {
        id: id(fw),
        role: fw.spec.role().to_string(),
        weight: fw.spec.weight(),
        priority: fw.spec.priority.unwrap_or(0),
        mode: fw.spec.mode,
        allocated,
        demand,
        usable: None,
        disconnected: None,
    }
}

/// An offer still open (`Outstanding`, or not yet marked), as the planner sees it.
/// One without a readable `expiresAt` counts as expired, so it is rescinded.
pub fn outstanding(offer: &Offer) -> Option<OutstandingOffer> {
    let state = offer.status.as_ref().and_then(|s| s.state).unwrap_or_default();
    if state != OfferState::Outstanding || offer.spec.decline.is_some() {
        return None;
    }
    let expires_at = offer.spec.expires_at.as_deref().and_then(|t| t.parse().ok()).unwrap_or(Timestamp::UNIX_EPOCH);
    Some(OutstandingOffer {
        id: id(offer),
        framework: format!("{}/{}", offer.namespace().unwrap_or_default(), offer.spec.framework),
        agent: offer.spec.agent.clone(),
        resources: offer.spec.resources.to_vec().ok()?,
        expires_at,
    })
}

/// The filter a declined offer leaves: its framework is not offered its
/// agent until `closedAt + refuseSeconds`.
pub fn decline_filter(offer: &Offer) -> Option<DeclineFilter> {
    let st = offer.status.as_ref()?;
    if st.state != Some(OfferState::Declined) {
        return None;
    }
    let closed: Timestamp = st.closed_at.as_deref()?.parse().ok()?;
    let refuse = SignedDuration::from_secs(st.refuse_seconds.unwrap_or(0).into());
    Some(DeclineFilter {
        framework: format!("{}/{}", offer.namespace().unwrap_or_default(), offer.spec.framework),
        agent: offer.spec.agent.clone(),
        until: closed.checked_add(refuse).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::framework::{FrameworkSpec, Mode};
    use berth_api::{AgentSpec, AgentStatus, Condition, OfferSpec, OfferStatus, Resources};

    fn ready_agent(labels: &[(&str, &str)]) -> Agent {
        let mut a = Agent::new("a1", AgentSpec::default());
        a.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        a.status = Some(AgentStatus {
            allocatable: Resources { cpu: Some("4".into()), memory: Some("8Gi".into()) },
            conditions: vec![Condition::new("Ready", true, "Heartbeat", "")],
            ..Default::default()
        });
        a
    }

    fn offer(state: Option<OfferState>) -> Offer {
        let spec = OfferSpec {
            framework: "f".into(),
            agent: "a1".into(),
            resources: Resources { cpu: Some("1".into()), memory: Some("1Gi".into()) },
            ports: Vec::new(),
            expires_at: Some("2026-01-01T00:00:30Z".into()),
            decline: None,
        };
        let mut o = Offer::new("o", spec);
        o.metadata.namespace = Some("ns".into());
        o.status = Some(OfferStatus { state, ..Default::default() });
        o
    }

    #[test]
    fn an_agent_outside_the_selector_or_not_ready_or_cordoned_takes_no_offers() {
        let selector: BTreeMap<String, String> = [("pool".to_string(), "gpu".to_string())].into();
        assert!(agent_input(&ready_agent(&[("pool", "gpu")]), &selector).schedulable);
        assert!(!agent_input(&ready_agent(&[("pool", "cpu")]), &selector).schedulable);
        let mut cordoned = ready_agent(&[]);
        cordoned.spec.unschedulable = true;
        assert!(!agent_input(&cordoned, &BTreeMap::new()).schedulable);
        let mut down = ready_agent(&[]);
        down.status.as_mut().unwrap().conditions.clear();
        assert!(!agent_input(&down, &BTreeMap::new()).schedulable);
    }

    #[test]
    fn demand_sums_tasks_and_offers_in_the_smallest_unit() {
        assert_eq!(demand_of(&[]), None);
        let d = demand_of(&[ResourceVec::new(500, 4), ResourceVec::new(2000, 1)]).unwrap();
        assert_eq!((d.total, d.task), (ResourceVec::new(2500, 5), ResourceVec::new(500, 1)));
    }

    #[test]
    fn a_framework_reads_with_its_defaults() {
        let mut fw = Framework::new("f", FrameworkSpec { mode: Mode::Offers, priority: Some(3), ..Default::default() });
        fw.metadata.namespace = Some("ns".into());
        let f = framework_input(&fw, ResourceVec::ZERO, None);
        assert_eq!((f.id.as_str(), f.role.as_str(), f.weight, f.priority), ("ns/f", "*", 1.0, 3));
    }

    #[test]
    fn only_open_offers_are_outstanding_and_declines_become_filters() {
        let open = outstanding(&offer(None)).unwrap();
        assert_eq!((open.id.as_str(), open.framework.as_str()), ("ns/o", "ns/f"));
        assert_eq!(open.expires_at, "2026-01-01T00:00:30Z".parse::<Timestamp>().unwrap());
        assert!(outstanding(&offer(Some(OfferState::Accepted))).is_none());
        let mut declined = offer(Some(OfferState::Declined));
        let st = declined.status.as_mut().unwrap();
        st.refuse_seconds = Some(60);
        st.closed_at = Some("2026-01-01T00:00:10Z".into());
        let f = decline_filter(&declined).unwrap();
        assert_eq!((f.framework.as_str(), f.agent.as_str()), ("ns/f", "a1"));
        assert_eq!(f.until, "2026-01-01T00:01:10Z".parse::<Timestamp>().unwrap());
        assert!(decline_filter(&offer(None)).is_none());
    }
}
