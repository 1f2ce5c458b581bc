//! A Job's placements as its reconciler must see them: the shared cache,
//! plus the placements this process created that the cache does not show
//! yet.
//!
//! Why this cannot lag what triggered the reconcile: the cache and the
//! Job controller's placement trigger are fed by one watch
//! ([`crate::shared_placements`]), which hands an event on only after the
//! cache has applied it. What the watch has not delivered yet are the
//! placements a reconcile created a moment ago; those are remembered here
//! (Kubernetes controllers' "expectations") from the create's answer until
//! the watch reports them, so the next reconcile neither plans them again
//! nor counts them missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_api::Placement;
use kube::ResourceExt;

use crate::Context;

/// How long a created placement the watch never reported stays expected:
/// the watch reports a create within moments, so this only bounds what a
/// placement deleted again before the cache saw it can hold.
const EXPECTED_FOR: Duration = Duration::from_secs(60);

/// One Job's created placements by name, with when each was created.
type Created = HashMap<String, (Arc<Placement>, Instant)>;

/// Created placements the shared cache may not show yet, by owner (Job) UID.
#[derive(Default)]
pub struct Expected {
    by_owner: Mutex<HashMap<String, Created>>,
}

impl Expected {
    /// Remembers placements just created for the Job with UID `owner`.
    pub fn created(&self, owner: &str, placements: &[Arc<Placement>]) {
        if placements.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut by_owner = self.by_owner.lock().expect("expectations lock");
        let mine = by_owner.entry(owner.to_string()).or_default();
        for p in placements {
            mine.insert(p.name_any(), (p.clone(), now));
        }
    }

    /// The watch (after the cache) reported `p`: it is no longer expected.
    pub fn observed(&self, p: &Placement) {
        let Some(owner) = controller_uid(p) else { return };
        let mut by_owner = self.by_owner.lock().expect("expectations lock");
        if let Some(mine) = by_owner.get_mut(owner) {
            mine.remove(&p.name_any());
            if mine.is_empty() {
                by_owner.remove(owner);
            }
        }
    }

    /// Adds to `seen` (the cache's view) what is still expected for
    /// `owner`, forgetting what the cache already has or is too old.
    fn merge_into(&self, owner: &str, seen: &mut BTreeMap<String, Arc<Placement>>) {
        let mut by_owner = self.by_owner.lock().expect("expectations lock");
        let Some(mine) = by_owner.get_mut(owner) else { return };
        mine.retain(|name, (_, at)| !seen.contains_key(name) && at.elapsed() < EXPECTED_FOR);
        for (name, (p, _)) in mine.iter() {
            seen.insert(name.clone(), p.clone());
        }
        if mine.is_empty() {
            by_owner.remove(owner);
        }
    }
}

/// The UID of the controller owner of `p`.
fn controller_uid(p: &Placement) -> Option<&str> {
    let owners = p.metadata.owner_references.as_deref().unwrap_or_default();
    owners.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

/// The placements of Job `job` (name, UID) in `ns`, by name: the shared
/// cache's and those created but not yet reported by its watch.
pub fn job_placements(ctx: &Context, ns: &str, job: &str, uid: &str) -> BTreeMap<String, Arc<Placement>> {
    let mut seen: BTreeMap<String, Arc<Placement>> = ctx
        .placements
        .state()
        .into_iter()
        .filter(|p| p.spec.job == job && p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| p.owner_references().iter().any(|o| o.uid == uid))
        .map(|p| (p.name_any(), p))
        .collect();
    ctx.expected.merge_into(uid, &mut seen);
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn placement(name: &str, owner: &str) -> Arc<Placement> {
        let mut p = Placement::new(name, Default::default());
        p.metadata.owner_references =
            Some(vec![OwnerReference { uid: owner.into(), controller: Some(true), ..Default::default() }]);
        Arc::new(p)
    }

    #[test]
    fn created_placements_count_until_the_watch_reports_them() {
        let expected = Expected::default();
        expected.created("job-uid", &[placement("a", "job-uid"), placement("b", "job-uid")]);
        let mut seen = BTreeMap::new();
        expected.merge_into("job-uid", &mut seen);
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["a", "b"]);

        expected.observed(&placement("a", "job-uid"));
        let mut seen = BTreeMap::new();
        expected.merge_into("job-uid", &mut seen);
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["b"], "a was reported by the watch");

        // The cache shows b (the create's answer raced ahead of the watch): forgotten.
        let mut seen = BTreeMap::from([("b".to_string(), placement("b", "job-uid"))]);
        expected.merge_into("job-uid", &mut seen);
        assert!(expected.by_owner.lock().unwrap().is_empty());
    }

    #[test]
    fn another_jobs_placements_are_not_mixed_in() {
        let expected = Expected::default();
        expected.created("one", &[placement("a", "one")]);
        let mut seen = BTreeMap::new();
        expected.merge_into("two", &mut seen);
        assert!(seen.is_empty());
    }
}
