//! One observation of the running system and the invariants checked on it.
//!
//! Read in this order, so that every check is sound without a global
//! snapshot: offers, the running containers, agents, placements, offers
//! again. An offer `Outstanding` with the same resourceVersion in both
//! offer lists was open the whole time, so its hold must be in the agents
//! read between. A container running when the fakes were read is running
//! still (only the test ends containers, after observing), so the claim
//! that covers it cannot have been released before the agents were read.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use berth_api::invariants::{assert_no_overcommit, assert_offers_held};
use berth_api::{Agent, ClaimKind, Offer, OfferState, Placement, ResourceVec};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::fleet::{self, Member, Running};
use super::frameworks::NS;

/// How long a hold may exist with no open offer owning it: between the
/// hold's write and its Offer's creation, or an answer's close and the
/// hold's conversion or release. The allocator sweeps leftovers each round.
const HOLD_ORPHAN_LIMIT: Duration = Duration::from_secs(10);

pub struct Observation {
    pub agents: Vec<Agent>,
    pub placements: Vec<Placement>,
    pub running: Vec<Running>,
    /// The offers as read last.
    pub offers: Vec<Offer>,
}

/// Remembers since when each hold without an open offer has been seen.
#[derive(Default)]
pub struct Watchkeeper {
    orphans: HashMap<String, Instant>,
    pub observations: u64,
}

fn key(o: &impl ResourceExt) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

fn open(o: &Offer) -> bool {
    o.status.as_ref().and_then(|s| s.state).unwrap_or_default() == OfferState::Outstanding
}

impl Watchkeeper {
    /// Observes once and panics, naming what it saw, if an invariant is broken.
    pub async fn observe(&mut self, client: &Client, members: &[Member]) -> Observation {
        let offers: Api<Offer> = Api::namespaced(client.clone(), NS);
        let before = offers.list(&ListParams::default()).await.unwrap().items;
        let running = fleet::running(members).await;
        let agents = Api::<Agent>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
        let placements = Api::<Placement>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
        let after = offers.list(&ListParams::default()).await.unwrap().items;
        self.observations += 1;

        // Invariant 1: no ledger exceeds its agent's allocatable.
        assert_no_overcommit(&agents);
        // Invariant 3: an offer open throughout is held, once, on its own agent.
        let rv: HashMap<String, Option<String>> = after.iter().map(|o| (key(o), o.resource_version())).collect();
        let steady: Vec<Offer> =
            before.into_iter().filter(|o| open(o) && rv.get(&key(o)) == Some(&o.resource_version())).collect();
        assert_offers_held(&agents, &steady);
        let mut holds: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in &agents {
            let claims = a.status.as_ref().map(|s| s.claims.as_slice()).unwrap_or_default();
            let mut owners: Vec<&str> = claims.iter().map(|c| c.owner.as_str()).collect();
            owners.sort();
            owners.dedup();
            assert_eq!(owners.len(), claims.len(), "agent {} has two claims with one owner: {claims:?}", a.name_any());
            for c in claims.iter().filter(|c| c.kind == ClaimKind::Hold) {
                holds.entry(c.owner.clone()).or_default().push(a.name_any());
            }
        }
        let open_after: HashMap<String, &Offer> = after.iter().filter(|o| open(o)).map(|o| (key(o), o)).collect();
        for (owner, on) in &holds {
            assert_eq!(on.len(), 1, "hold {owner} is in the ledgers of {on:?}");
            match open_after.get(owner) {
                Some(o) => assert_eq!(o.spec.agent, on[0], "offer {owner} is held on another agent"),
                None => {
                    let since = *self.orphans.entry(owner.clone()).or_insert_with(Instant::now);
                    assert!(since.elapsed() < HOLD_ORPHAN_LIMIT, "hold {owner} on {on:?} has no open offer");
                }
            }
        }
        self.orphans.retain(|owner, _| holds.contains_key(owner) && !open_after.contains_key(owner));
        // Every running container has its placement's claim on its agent
        // (an offer's placement starts only once its accept is settled).
        let by_key: HashMap<String, &Placement> = placements.iter().map(|p| (key(p), p)).collect();
        for r in &running {
            let p = by_key.get(&r.placement).unwrap_or_else(|| panic!("container {r:?} runs without a placement"));
            assert_eq!(p.spec.agent, r.agent, "container {r:?} runs on another agent than its placement");
            let agent = agents.iter().find(|a| a.name_any() == r.agent).expect("every fleet agent is listed");
            let claims = agent.status.as_ref().map(|s| s.claims.as_slice()).unwrap_or_default();
            let covered = claims.iter().any(|c| c.kind == ClaimKind::Placement && c.owner == r.placement);
            assert!(covered, "container {r:?} runs with no claim on its agent; placement status {:?}", p.status);
        }
        Observation { agents, placements, running, offers: after }
    }
}

/// What each Offers framework holds in the agents' ledgers, as the
/// allocator counts it: the claims of its placements (by the
/// `berth.dev/framework` label) and the holds of its open offers.
pub fn claimed_by_framework(seen: &Observation) -> BTreeMap<String, ResourceVec> {
    let framework_of: HashMap<String, String> = seen
        .placements
        .iter()
        .filter_map(|p| Some((key(p), p.labels().get("berth.dev/framework")?.clone())))
        .chain(seen.offers.iter().map(|o| (key(o), o.spec.framework.clone())))
        .collect();
    let mut by = BTreeMap::new();
    for c in seen.agents.iter().filter_map(|a| a.status.as_ref()).flat_map(|s| &s.claims) {
        if let Some(fw) = framework_of.get(&c.owner) {
            *by.entry(fw.clone()).or_insert(ResourceVec::ZERO) += c.resources.to_vec().unwrap();
        }
    }
    by
}

/// The resources of each Offers framework's live placements alone.
pub fn placed_by_framework(placements: &[Placement]) -> BTreeMap<String, ResourceVec> {
    let mut by = BTreeMap::new();
    for p in placements.iter().filter(|p| !p.status.as_ref().is_some_and(|s| s.phase.is_terminal())) {
        if let Some(fw) = p.labels().get("berth.dev/framework") {
            *by.entry(fw.clone()).or_insert(ResourceVec::ZERO) += p.spec.container.resources.to_vec().unwrap();
        }
    }
    by
}
