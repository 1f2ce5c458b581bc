//! Ownership bookkeeping for one write, after structured-merge-diff's
//! updater: an update takes the fields it changed from everyone else; an
//! apply merges a configuration, removes the fields its manager applied
//! before and no one owns any more, and refuses to change fields other
//! managers own unless forced.

use serde_json::Value;

use super::entries::{Entry, Id, Managers, tidy};
use super::fieldset::{Element, Path, Set};
use super::typed::Ty;
use super::walk::{compare, merge, remove, to_set};

/// What a write is judged with.
pub struct Scope<'a> {
    pub ty: Ty<'a>,
    /// Fields this endpoint does not write (`status` on the main resource,
    /// everything else on `/status`); nobody gains or loses them here.
    pub ignored: Set,
    pub api_version: String,
    pub now: String,
}

/// A field another manager owns that the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub path: Path,
    pub manager: Id,
}

/// Fields no manager owns: type and identity, set by the server.
fn stripped() -> Set {
    let mut s = Set::default();
    for f in ["apiVersion", "kind", "metadata"] {
        s.insert(&[Element::Field(f.into())]);
    }
    let meta = Element::Field("metadata".into());
    for f in
        ["name", "namespace", "creationTimestamp", "selfLink", "uid", "generation", "managedFields", "resourceVersion"]
    {
        s.insert(&[meta.clone(), Element::Field(f.into())]);
    }
    s
}

impl Scope<'_> {
    fn owned(&self, s: &Set) -> Set {
        s.difference(&stripped()).recursive_difference(&self.ignored)
    }

    /// Takes what changed from `old` to `new` out of the other managers'
    /// sets; returns the changed and removed fields and the conflicts.
    fn settle(&self, old: &Value, new: &Value, managers: &mut Managers, me: &Id) -> (Set, Set, Vec<Conflict>) {
        let c = compare(self.ty, old, new);
        let changed = self.owned(&c.modified.union(&c.added));
        let removed = self.owned(&c.removed);
        let mut conflicts = Vec::new();
        for (id, e) in managers.iter_mut().filter(|(id, _)| *id != me) {
            let taken = e.set.intersection(&changed);
            conflicts.extend(taken.paths().into_iter().map(|path| Conflict { path, manager: id.clone() }));
            e.set = e.set.difference(&changed).difference(&removed);
        }
        (changed, removed, conflicts)
    }

    /// An update from `old` to `new` by `me`.
    pub fn update(&self, old: &Value, new: &Value, mut managers: Managers, me: &Id) -> Managers {
        let (changed, removed, _) = self.settle(old, new, &mut managers, me);
        let mine = managers.entry(me.clone()).or_default();
        mine.set = mine.set.difference(&removed);
        if !changed.is_empty() {
            mine.set = mine.set.union(&changed);
            mine.api_version = self.api_version.clone();
            mine.time = Some(self.now.clone());
        }
        tidy(managers)
    }

    /// Applies `config` to `live` for `me`: the new object and managers, or
    /// the conflicts (when not forced).
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        mut managers: Managers,
        me: &Id,
        force: bool,
    ) -> Result<(Value, Managers), Vec<Conflict>> {
        let merged = merge(self.ty, live, config);
        let last = managers.get(me).map(|e| e.set.clone()).unwrap_or_default();
        let time = managers.get(me).and_then(|e| e.time.clone());
        let set = self.owned(&to_set(self.ty, config));
        managers.insert(me.clone(), Entry { set, api_version: self.api_version.clone(), time });
        let everyone = managers.values().fold(Set::default(), |acc, e| acc.union(&e.set));
        let gone = last.with_parents().difference(&everyone.with_parents());
        let new = remove(self.ty, &merged, &self.ignored_kept(&gone));
        let mut after = managers.clone();
        let (_, _, conflicts) = self.settle(live, &new, &mut after, me);
        if !force && !conflicts.is_empty() {
            return Err(conflicts);
        }
        if new != *live
            && let Some(e) = after.get_mut(me)
        {
            e.time = Some(self.now.clone());
        }
        Ok((new, tidy(after)))
    }

    /// `gone` without the fields this endpoint may not touch.
    fn ignored_kept(&self, gone: &Set) -> Set {
        gone.recursive_difference(&self.ignored.with_parents()).difference(&stripped().with_parents())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope(schema: &Value) -> Scope<'_> {
        let mut ignored = Set::default();
        ignored.insert(&[Element::Field("status".into())]);
        Scope { ty: Ty::root(Some(schema)), ignored, api_version: "g/v1".into(), now: "2024-01-01T00:00:00Z".into() }
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "priority": {"type": "integer"}, "suspend": {"type": "boolean"}, "image": {"type": "string"}}}}})
    }

    fn wire(m: &Managers, id: &Id) -> Value {
        m.get(id).map(|e| e.set.to_fields_v1()).unwrap_or(Value::Null)
    }

    #[test]
    fn updates_take_changed_fields_from_others() {
        let s = schema();
        let sc = scope(&s);
        let a = Id::new("a", false, "", "g/v1");
        let b = Id::new("b", false, "", "g/v1");
        let empty = json!({"metadata": {}});
        let v1 = json!({"metadata": {"name": "x"}, "spec": {"priority": 1, "image": "i"}, "status": {"s": 1}});
        let m = sc.update(&empty, &v1, Managers::new(), &a);
        assert_eq!(wire(&m, &a), json!({"f:spec": {".": {}, "f:priority": {}, "f:image": {}}}));
        let v2 = json!({"metadata": {"name": "x"}, "spec": {"priority": 2, "image": "i"}});
        let m = sc.update(&v1, &v2, m, &b);
        assert_eq!(wire(&m, &a), json!({"f:spec": {".": {}, "f:image": {}}}));
        assert_eq!(wire(&m, &b), json!({"f:spec": {"f:priority": {}}}));
        let unchanged = sc.update(&v2, &v2, m.clone(), &a);
        assert_eq!(unchanged, m, "a write that changes nothing changes no ownership");
    }

    #[test]
    fn apply_conflicts_then_forces_then_prunes() {
        let s = schema();
        let sc = scope(&s);
        let applier = Id::new("ssa", true, "", "");
        let editor = Id::new("edit", false, "", "g/v1");
        let live = json!({"metadata": {}});
        let cfg = json!({"spec": {"priority": 1, "image": "i"}});
        let (live, m) = sc.apply(&live, &cfg, Managers::new(), &applier, false).expect("create");
        assert_eq!(wire(&m, &applier), json!({"f:spec": {"f:priority": {}, "f:image": {}}}));
        let edited = json!({"metadata": {}, "spec": {"priority": 5, "image": "i", "suspend": true}});
        let m = sc.update(&live, &edited, m, &editor);
        let cfg2 = json!({"spec": {"priority": 2, "image": "i"}});
        let err = sc.apply(&edited, &cfg2, m.clone(), &applier, false).expect_err("conflict");
        assert_eq!(
            err,
            [Conflict {
                path: Path(vec![Element::Field("spec".into()), Element::Field("priority".into())]),
                manager: editor.clone()
            }]
        );
        assert_eq!(err[0].path.to_string(), ".spec.priority");
        let (forced, m) = sc.apply(&edited, &cfg2, m, &applier, true).expect("forced");
        assert_eq!(forced["spec"]["priority"], 2);
        assert_eq!(wire(&m, &editor), json!({"f:spec": {"f:suspend": {}}}));
        // Dropping `image` from the configuration removes it: nobody else owns it.
        let (pruned, m) = sc.apply(&forced, &json!({"spec": {"priority": 2}}), m, &applier, false).expect("prune");
        assert_eq!(pruned["spec"], json!({"priority": 2, "suspend": true}));
        assert_eq!(wire(&m, &applier), json!({"f:spec": {"f:priority": {}}}));
    }

    #[test]
    fn shared_fields_stay_when_one_applier_lets_go() {
        let s = schema();
        let sc = scope(&s);
        let (a, b) = (Id::new("a", true, "", ""), Id::new("b", true, "", ""));
        let cfg = json!({"spec": {"image": "i"}});
        let (live, m) = sc.apply(&json!({"metadata": {}}), &cfg, Managers::new(), &a, false).expect("a");
        let (live, m) = sc.apply(&live, &cfg, m, &b, false).expect("same value: no conflict");
        let (live, _) = sc.apply(&live, &json!({"spec": {"priority": 1}}), m, &a, false).expect("a lets go");
        assert_eq!(live["spec"], json!({"image": "i", "priority": 1}), "b still owns image");
    }
}
