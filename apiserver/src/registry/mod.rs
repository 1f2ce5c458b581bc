//! The kinds the server serves: built-in ones and one per served version
//! of each registered CRD. Lookups go by group, version and plural.

pub mod builtin;
pub mod crd;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::jsonpath::JsonPath;

/// A printer column (`additionalPrinterColumns`).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub path: JsonPath,
}

/// One served group/version/resource.
#[derive(Clone, Debug)]
pub struct Kind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// The version's `openAPIV3Schema`; `None` accepts any object.
    pub schema: Option<Value>,
    pub columns: Vec<Column>,
    pub status_subresource: bool,
    /// Field selector paths besides `metadata.name`/`metadata.namespace` (no leading dot).
    pub selectable_fields: Vec<String>,
    /// Served from code rather than from a CRD.
    pub builtin: bool,
    /// The CRD's storage version (the preferred one in discovery).
    pub preferred: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `jobs.berth.dev`, or `namespaces` for the core group.
    pub fn resource(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn group_dir(&self) -> &str {
        if self.group.is_empty() { "core" } else { &self.group }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{ns}/{name}", self.group_dir(), self.plural),
            _ => format!("/registry/{}/{}/{name}", self.group_dir(), self.plural),
        }
    }

    /// The storage prefix of a collection (one namespace, or all).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{ns}/", self.group_dir(), self.plural),
            _ => format!("/registry/{}/{}/", self.group_dir(), self.plural),
        }
    }

    /// Whether a field selector may use `field`.
    pub fn selectable(&self, field: &str) -> bool {
        field == "metadata.name"
            || (field == "metadata.namespace" && self.namespaced)
            || self.selectable_fields.iter().any(|f| f == field)
    }
}

type Gvr = (String, String, String);

/// Every served kind, shared by all requests.
#[derive(Default)]
pub struct Registry {
    kinds: RwLock<BTreeMap<Gvr, Arc<Kind>>>,
}

impl Registry {
    pub fn with_builtins() -> Registry {
        let r = Registry::default();
        for k in builtin::kinds() {
            r.insert(k);
        }
        r
    }

    fn insert(&self, k: Kind) {
        let key = (k.group.clone(), k.version.clone(), k.plural.clone());
        if let Ok(mut kinds) = self.kinds.write() {
            kinds.insert(key, Arc::new(k));
        }
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Kind>> {
        let kinds = self.kinds.read().ok()?;
        kinds.get(&(group.to_string(), version.to_string(), plural.to_string())).cloned()
    }

    /// A kind of `group`/`plural` in any served version (the preferred one
    /// if there is one): what a storage key names.
    pub fn by_resource(&self, group: &str, plural: &str) -> Option<Arc<Kind>> {
        let kinds = self.kinds.read().ok()?;
        let mut found = kinds.values().filter(|k| k.group == group && k.plural == plural);
        let first = found.next()?;
        Some(found.find(|k| k.preferred).unwrap_or(first).clone())
    }

    /// Every kind, ordered by group, version, plural.
    pub fn all(&self) -> Vec<Arc<Kind>> {
        self.kinds.read().map(|k| k.values().cloned().collect()).unwrap_or_default()
    }

    /// Replaces the kinds of the CRD for `group`/`plural` with `kinds`.
    /// In one step under the lock: a request never finds the kind missing
    /// while its CRD is registered again (as `crd_sync` does for every CRD
    /// bootstrap wrote, just after the server starts).
    pub fn set_crd(&self, group: &str, plural: &str, kinds: Vec<Kind>) {
        if let Ok(mut all) = self.kinds.write() {
            all.retain(|(g, _, p), k| k.builtin || g != group || p != plural);
            for k in kinds {
                all.insert((k.group.clone(), k.version.clone(), k.plural.clone()), Arc::new(k));
            }
        }
    }

    pub fn remove_crd(&self, group: &str, plural: &str) {
        if let Ok(mut kinds) = self.kinds.write() {
            kinds.retain(|(g, _, p), k| k.builtin || g != group || p != plural);
        }
    }

    /// Served groups with their versions, preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for k in self.all() {
            if k.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == k.group) {
                Some((_, vs)) if !vs.contains(&k.version) => {
                    if k.preferred {
                        vs.insert(0, k.version.clone())
                    } else {
                        vs.push(k.version.clone())
                    }
                }
                Some(_) => {}
                None => out.push((k.group.clone(), vec![k.version.clone()])),
            }
        }
        out
    }

    /// The kinds of one group/version.
    pub fn of(&self, group: &str, version: &str) -> Vec<Arc<Kind>> {
        self.all().into_iter().filter(|k| k.group == group && k.version == version).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_registered_again_is_never_missing_in_between() {
        let crd = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Agent").expect("crd");
        let kinds = crd::kinds_of(&serde_json::to_value(&crd).expect("json"));
        let registry = Arc::new(Registry::with_builtins());
        registry.set_crd("berth.dev", "agents", kinds.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let again = {
            let (registry, stop) = (registry.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    registry.set_crd("berth.dev", "agents", kinds.clone());
                }
            })
        };
        let missing = (0..200_000).filter(|_| registry.lookup("berth.dev", "v1alpha1", "agents").is_none()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        again.join().expect("thread");
        assert_eq!(missing, 0, "lookups found the kind missing while it was registered again");
    }
}
