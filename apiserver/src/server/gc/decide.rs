//! What the collector does about one object, as a pure function of the
//! graph (after Kubernetes' garbage collector):
//!
//! - an owner deleted with `orphan` first has every dependent's reference
//!   to it removed, then loses the finalizer;
//! - an owner deleted with `foregroundDeletion` loses the finalizer once no
//!   dependent with `blockOwnerDeletion: true` is left;
//! - a dependent none of whose owners exists any more (a reference whose
//!   uid, kind or name does not match the live owner counts as gone) is
//!   deleted — in the foreground when an owner waits for it; a dependent
//!   that keeps a live owner only has its references to the others removed.

use super::graph::{FOREGROUND, Graph, Node, ORPHAN};
use crate::server::delete::Policy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deletes the object at `key` if it is still at `revision`.
    Delete { key: String, uid: String, revision: u64, policy: Policy },
    /// Removes the ownerReferences with these uids.
    RemoveOwners { key: String, owners: Vec<String> },
    /// Removes one finalizer.
    RemoveFinalizer { key: String, finalizer: &'static str },
}

pub fn decide(graph: &Graph, uid: &str) -> Vec<Action> {
    let Some(node) = graph.get(uid) else { return Vec::new() };
    if node.deleting {
        return as_owner(graph, node);
    }
    as_dependent(graph, node).into_iter().collect()
}

/// An owner being deleted with `orphan` or `foregroundDeletion`.
fn as_owner(graph: &Graph, node: &Node) -> Vec<Action> {
    let dependents = graph.dependents_of(&node.uid);
    if node.has_finalizer(ORPHAN) {
        let releases: Vec<Action> = dependents
            .iter()
            .map(|d| Action::RemoveOwners { key: d.key.clone(), owners: vec![node.uid.clone()] })
            .collect();
        if !releases.is_empty() {
            return releases;
        }
        return vec![Action::RemoveFinalizer { key: node.key.clone(), finalizer: ORPHAN }];
    }
    if node.has_finalizer(FOREGROUND) {
        let blocking = dependents.iter().any(|d| d.owners.iter().any(|r| r.uid == node.uid && r.block));
        if !blocking {
            return vec![Action::RemoveFinalizer { key: node.key.clone(), finalizer: FOREGROUND }];
        }
    }
    Vec::new()
}

/// A live object with owners.
fn as_dependent(graph: &Graph, node: &Node) -> Option<Action> {
    if node.owners.is_empty() {
        return None;
    }
    let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for r in &node.owners {
        match graph.owner(node, r) {
            None => dangling.push(r.uid.clone()),
            Some(o) if o.waiting_for_dependents() => waiting.push(r.uid.clone()),
            Some(_) => solid.push(r.uid.clone()),
        }
    }
    if dangling.is_empty() && waiting.is_empty() {
        return None;
    }
    if !solid.is_empty() {
        dangling.extend(waiting);
        return Some(Action::RemoveOwners { key: node.key.clone(), owners: dangling });
    }
    // The dependent's own finalizers say how its dependents go; else it
    // goes in the foreground when an owner waits for it and it has dependents.
    let policy = if node.has_finalizer(ORPHAN) {
        Policy::Orphan
    } else if node.has_finalizer(FOREGROUND) || (!waiting.is_empty() && !graph.dependents_of(&node.uid).is_empty()) {
        Policy::Foreground
    } else {
        Policy::Background
    };
    Some(Action::Delete { key: node.key.clone(), uid: node.uid.clone(), revision: node.revision, policy })
}

#[cfg(test)]
mod tests {
    use super::super::graph::OwnerRef;
    use super::*;

    fn node(name: &str, owners: &[(&str, bool)]) -> Node {
        Node {
            key: format!("/registry/berth.dev/jobs/default/{name}"),
            uid: format!("uid-{name}"),
            group: "berth.dev".into(),
            kind: "Job".into(),
            namespace: Some("default".into()),
            name: name.into(),
            revision: 7,
            owners: owners
                .iter()
                .map(|(o, block)| OwnerRef {
                    uid: format!("uid-{o}"),
                    group: "berth.dev".into(),
                    kind: "Job".into(),
                    name: o.to_string(),
                    block: *block,
                })
                .collect(),
            deleting: false,
            finalizers: Vec::new(),
        }
    }

    fn deleting(mut n: Node, finalizer: &str) -> Node {
        n.deleting = true;
        n.finalizers.push(finalizer.into());
        n
    }

    fn graph(nodes: Vec<Node>) -> Graph {
        let mut g = Graph::default();
        for n in nodes {
            g.put(n);
        }
        g
    }

    #[test]
    fn a_dependent_without_owners_is_deleted_in_the_background() {
        let g = graph(vec![node("child", &[("gone", false)])]);
        assert_eq!(
            decide(&g, "uid-child"),
            [Action::Delete {
                key: node("child", &[]).key,
                uid: "uid-child".into(),
                revision: 7,
                policy: Policy::Background
            }]
        );
    }

    #[test]
    fn an_owner_with_the_wrong_name_or_uid_counts_as_gone() {
        let mut impostor = node("owner", &[]);
        impostor.name = "other".into();
        let g = graph(vec![impostor, node("child", &[("owner", false)])]);
        assert!(matches!(decide(&g, "uid-child")[..], [Action::Delete { .. }]));
    }

    #[test]
    fn a_dependent_keeping_a_live_owner_loses_only_the_dangling_reference() {
        let g = graph(vec![node("alive", &[]), node("child", &[("alive", false), ("gone", false)])]);
        assert_eq!(
            decide(&g, "uid-child"),
            [Action::RemoveOwners { key: node("child", &[]).key, owners: vec!["uid-gone".into()] }]
        );
        assert!(decide(&g, "uid-alive").is_empty());
    }

    #[test]
    fn foreground_owners_wait_for_blocking_dependents_only() {
        let owner = deleting(node("owner", &[]), FOREGROUND);
        let g = graph(vec![owner.clone(), node("child", &[("owner", true)])]);
        assert!(decide(&g, "uid-owner").is_empty(), "a blocking dependent holds the owner");
        assert!(matches!(decide(&g, "uid-child")[..], [Action::Delete { policy: Policy::Background, .. }]));
        let g = graph(vec![owner, node("child", &[("owner", false)])]);
        assert_eq!(
            decide(&g, "uid-owner"),
            [Action::RemoveFinalizer { key: node("owner", &[]).key, finalizer: FOREGROUND }]
        );
    }

    #[test]
    fn orphaning_releases_dependents_then_the_owner() {
        let owner = deleting(node("owner", &[]), ORPHAN);
        let g = graph(vec![owner.clone(), node("child", &[("owner", true)])]);
        assert_eq!(
            decide(&g, "uid-owner"),
            [Action::RemoveOwners { key: node("child", &[]).key, owners: vec!["uid-owner".into()] }]
        );
        assert!(decide(&g, "uid-child").is_empty(), "an orphaning owner is still solid");
        let g = graph(vec![owner]);
        assert_eq!(
            decide(&g, "uid-owner"),
            [Action::RemoveFinalizer { key: node("owner", &[]).key, finalizer: ORPHAN }]
        );
    }

    #[test]
    fn a_dependent_goes_as_its_finalizers_say_or_in_the_foreground_behind_a_waiting_owner() {
        let mut keeps = node("child", &[("gone", false)]);
        keeps.finalizers.push(ORPHAN.into());
        let g = graph(vec![keeps]);
        assert!(matches!(decide(&g, "uid-child")[..], [Action::Delete { policy: Policy::Orphan, .. }]));
        let owner = deleting(node("owner", &[]), FOREGROUND);
        let g = graph(vec![owner, node("child", &[("owner", true)]), node("grandchild", &[("child", true)])]);
        assert!(matches!(decide(&g, "uid-child")[..], [Action::Delete { policy: Policy::Foreground, .. }]));
        assert!(decide(&g, "uid-grandchild").is_empty(), "its owner is alive until it is deleted");
    }
}
