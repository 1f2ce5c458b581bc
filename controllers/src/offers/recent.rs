//! Offers the loop made that its Offer cache may not show yet. The next
//! round may start before the watch delivers them; planned without them,
//! their frameworks would look as if they held nothing and be offered the
//! next agent as if fresh — fair within each round, unfair across them.
//! Each is kept until the cache shows it (in any state) or it expires.

use std::collections::HashSet;

use berth_api::Offer;
use jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::allocator::apply::{Applied, offer_id};
use crate::allocator::{Input, OutstandingOffer, RoundPlan};

#[derive(Debug, Default)]
pub struct Made(Vec<OutstandingOffer>);

impl Made {
    /// Remembers the offers of `plan` that `applied` made.
    pub fn record(&mut self, plan: &RoundPlan, applied: &Applied) {
        let made: HashSet<&str> = applied.made.iter().map(String::as_str).collect();
        for o in &plan.offers {
            let id = offer_id(o);
            if made.contains(id.as_str()) && !self.0.iter().any(|m| m.id == id) {
                self.0.push(OutstandingOffer {
                    id,
                    framework: o.framework.clone(),
                    agent: o.agent.clone(),
                    resources: o.resources,
                    expires_at: o.expires_at,
                });
            }
        }
    }

    /// Adds to `input` the remembered offers `cached` does not show yet;
    /// forgets those it shows and those expired by `now`.
    pub fn complete(&mut self, input: &mut Input, cached: &Store<Offer>, now: Timestamp) {
        self.0.retain(|o| {
            let (ns, name) = o.id.split_once('/').unwrap_or(("default", &o.id));
            o.expires_at > now && cached.get(&ObjectRef::new(name).within(ns)).is_none()
        });
        for o in &self.0 {
            if !input.offers.iter().any(|x| x.id == o.id) {
                input.offers.push(o.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::NewOffer;
    use berth_api::ResourceVec;

    #[test]
    fn a_made_offer_counts_until_the_cache_shows_it_or_it_expires() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let new = |fw: &str, agent: &str| NewOffer {
            framework: fw.into(),
            agent: agent.into(),
            resources: ResourceVec::new(1000, 1 << 30),
            expires_at: now + jiff::SignedDuration::from_secs(30),
        };
        let plan = RoundPlan { offers: vec![new("ns/fa", "a1"), new("ns/fb", "a1")], ..Default::default() };
        // fb's offer was refused (the agent had no room left): only fa's was made.
        let applied = Applied {
            made: vec![offer_id(&plan.offers[0])],
            refused: vec![plan.offers[1].clone()],
            ..Default::default()
        };
        let mut made = Made::default();
        made.record(&plan, &applied);
        made.record(&plan, &applied);

        let (reader, mut writer) = kube::runtime::reflector::store::<Offer>();
        let mut input = Input::default();
        made.complete(&mut input, &reader, now);
        assert_eq!(input.offers.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [offer_id(&plan.offers[0])]);
        assert_eq!(input.offers[0].framework, "ns/fa");

        // Once the cache shows it, the cache's copy is the one that counts.
        let name = offer_id(&plan.offers[0]).split_once('/').unwrap().1.to_string();
        let mut cached = Offer::new(&name, Default::default());
        cached.metadata.namespace = Some("ns".into());
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(cached));
        let mut input = Input::default();
        made.complete(&mut input, &reader, now);
        assert!(input.offers.is_empty(), "{:?}", input.offers);
        assert!(made.0.is_empty());

        // One never seen is forgotten when it expires.
        let mut fresh = Made::default();
        fresh.record(&plan, &applied);
        let (empty, _w) = kube::runtime::reflector::store::<Offer>();
        let mut input = Input::default();
        fresh.complete(&mut input, &empty, now + jiff::SignedDuration::from_secs(31));
        assert!(input.offers.is_empty() && fresh.0.is_empty());
    }
}
