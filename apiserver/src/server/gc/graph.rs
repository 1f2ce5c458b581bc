//! The collector's picture of every stored object: identity, owners and
//! deletion state, indexed by uid, by storage key and by owner. It mirrors
//! storage at one revision (the last event applied).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

/// The finalizer of an owner whose dependents go first.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an owner whose dependents are released.
pub const ORPHAN: &str = "orphan";

/// One `ownerReferences[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub uid: String,
    /// The group of its `apiVersion` (empty for the core group).
    pub group: String,
    pub kind: String,
    pub name: String,
    pub block: bool,
}

/// One stored object, as far as the collector cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub key: String,
    pub uid: String,
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// Its mod revision: the precondition of a delete the collector decides.
    pub revision: u64,
    pub owners: Vec<OwnerRef>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    /// Reads a node from an object's JSON; `None` without a uid.
    pub fn from_object(key: &str, revision: u64, group: &str, kind: &str, obj: &Value) -> Option<Node> {
        let meta = obj.get("metadata")?;
        let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
        let uid = text(meta, "uid");
        if uid.is_empty() {
            return None;
        }
        let owners = meta
            .get("ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .map(|r| OwnerRef {
                        uid: text(r, "uid"),
                        group: text(r, "apiVersion").rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default(),
                        kind: text(r, "kind"),
                        name: text(r, "name"),
                        block: r.get("blockOwnerDeletion").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let finalizers = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Some(Node {
            key: key.to_string(),
            uid,
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: meta.get("namespace").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
            name: text(meta, "name"),
            revision,
            owners,
            deleting: meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()),
            finalizers,
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Deleting, and waiting for its blocking dependents to go.
    pub fn waiting_for_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Whether `owner` is the object `r` (on this node) names: same uid,
    /// kind, name, group, and a namespace this node may be owned from.
    fn is_owner(&self, r: &OwnerRef, owner: &Node) -> bool {
        owner.uid == r.uid
            && owner.kind == r.kind
            && owner.name == r.name
            && owner.group == r.group
            && (owner.namespace.is_none() || owner.namespace == self.namespace)
    }
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    by_key: HashMap<String, String>,
    /// owner uid → the uids of objects naming it.
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The live objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<&Node> {
        self.dependents.get(uid).into_iter().flatten().filter_map(|d| self.nodes.get(d)).collect()
    }

    /// The owner `r` of `node` names, if it exists as named.
    pub fn owner(&self, node: &Node, r: &OwnerRef) -> Option<&Node> {
        self.nodes.get(&r.uid).filter(|o| node.is_owner(r, o))
    }

    /// Stores `node` (replacing what was at its key); returns the uids
    /// whose decisions may have changed.
    pub fn put(&mut self, node: Node) -> HashSet<String> {
        let mut touched = HashSet::new();
        let old = self.by_key.get(&node.key).cloned().and_then(|uid| self.take(&uid));
        let state_changed = old.as_ref().is_none_or(|o| o.deleting != node.deleting || o.finalizers != node.finalizers);
        if let Some(o) = &old {
            touched.extend(o.owners.iter().map(|r| r.uid.clone()));
            if o.uid != node.uid {
                touched.extend(self.dependents_uids(&o.uid));
            }
        }
        touched.insert(node.uid.clone());
        touched.extend(node.owners.iter().map(|r| r.uid.clone()));
        if state_changed {
            touched.extend(self.dependents_uids(&node.uid));
        }
        for r in &node.owners {
            self.dependents.entry(r.uid.clone()).or_default().insert(node.uid.clone());
        }
        self.by_key.insert(node.key.clone(), node.uid.clone());
        self.nodes.insert(node.uid.clone(), node);
        touched
    }

    /// Forgets the object at `key`; returns the uids whose decisions may have changed.
    pub fn remove(&mut self, key: &str) -> HashSet<String> {
        let mut touched = HashSet::new();
        if let Some(old) = self.by_key.get(key).cloned().and_then(|uid| self.take(&uid)) {
            touched.extend(old.owners.iter().map(|r| r.uid.clone()));
            touched.extend(self.dependents_uids(&old.uid));
        }
        touched
    }

    fn dependents_uids(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|d| d.iter().cloned().collect()).unwrap_or_default()
    }

    fn take(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        self.by_key.remove(&node.key);
        for r in &node.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
        Some(node)
    }
}
