//! Walks over typed objects: the field set of an object, the difference of
//! two objects, removing a set of fields, and merging an applied
//! configuration into a live object.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::fieldset::{Element, Path, Set};
use super::typed::Ty;

/// The fields an object sets: leaves, list items, and map keys that are
/// not named fields of a schema, empty maps, or null.
pub fn to_set(ty: Ty<'_>, v: &Value) -> Set {
    let mut set = Set::default();
    fields(ty, v, &Path::default(), &mut set);
    set
}

fn fields(ty: Ty<'_>, v: &Value, at: &Path, set: &mut Set) {
    if ty.is_leaf(v) {
        set.insert(&at.0);
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let (cty, named) = ty.field(k);
                let p = at.child(Element::Field(k.clone()));
                fields(cty, child, &p, set);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || !named {
                    set.insert(&p.0);
                }
            }
        }
        Value::Array(items) => {
            let ity = ty.items();
            for (e, item) in ty.keyed(items) {
                let p = at.child(e);
                fields(ity, item, &p, set);
                set.insert(&p.0);
            }
        }
        _ => {}
    }
}

/// What changed from one object to another.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

pub fn compare(ty: Ty<'_>, old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    diff(ty, Some(old), Some(new), &Path::default(), &mut c);
    c
}

fn diff(ty: Ty<'_>, old: Option<&Value>, new: Option<&Value>, at: &Path, c: &mut Comparison) {
    let leaf = match (old, new) {
        // Nothing under an unchanged value was added, removed or modified:
        // one comparison instead of a walk (most of a large object is
        // unchanged by one write).
        (Some(o), Some(n)) if o == n => return,
        (Some(o), Some(n)) => ty.is_leaf(o) || ty.is_leaf(n) || kind_differs(o, n),
        (Some(v), None) | (None, Some(v)) => ty.is_leaf(v),
        (None, None) => return,
    };
    if !at.0.is_empty() {
        match (old, new) {
            (None, Some(_)) => c.added.insert(&at.0),
            (Some(_), None) => c.removed.insert(&at.0),
            (Some(o), Some(n)) if leaf && o != n => c.modified.insert(&at.0),
            _ => {}
        }
    }
    if leaf {
        return;
    }
    if old.or(new).is_some_and(Value::is_object) {
        let empty = Map::new();
        let om = old.and_then(Value::as_object).unwrap_or(&empty);
        let nm = new.and_then(Value::as_object).unwrap_or(&empty);
        for k in om.keys().chain(nm.keys().filter(|k| !om.contains_key(*k))) {
            let (cty, _) = ty.field(k);
            diff(cty, om.get(k), nm.get(k), &at.child(Element::Field(k.clone())), c);
        }
    } else {
        let empty = Vec::new();
        let ol = ty.keyed(old.and_then(Value::as_array).unwrap_or(&empty));
        let nl = ty.keyed(new.and_then(Value::as_array).unwrap_or(&empty));
        let ity = ty.items();
        let by_element: HashMap<&Element, &Value> = nl.iter().map(|(e, v)| (e, *v)).collect();
        for (e, o) in &ol {
            diff(ity, Some(o), by_element.get(e).copied(), &at.child(e.clone()), c);
        }
        let before: HashSet<&Element> = ol.iter().map(|(e, _)| e).collect();
        for (e, n) in nl.iter().filter(|(e, _)| !before.contains(e)) {
            diff(ity, None, Some(n), &at.child(e.clone()), c);
        }
    }
}

fn kind_differs(a: &Value, b: &Value) -> bool {
    a.is_object() != b.is_object() || a.is_array() != b.is_array()
}

/// `v` without the fields that are members of `set` (whole subtrees go).
pub fn remove(ty: Ty<'_>, v: &Value, set: &Set) -> Value {
    match v {
        Value::Object(m) if !ty.is_leaf(v) => {
            let mut out = Map::new();
            for (k, child) in m {
                let e = Element::Field(k.clone());
                if set.is_member(&e) {
                    continue;
                }
                let (cty, _) = ty.field(k);
                out.insert(k.clone(), remove(cty, child, &set.child(&e)));
            }
            Value::Object(out)
        }
        Value::Array(items) if !ty.is_leaf(v) => {
            let ity = ty.items();
            let kept = items.iter().enumerate().filter_map(|(i, item)| {
                let e = ty.item_element(i, item);
                (!set.is_member(&e)).then(|| remove(ity, item, &set.child(&e)))
            });
            Value::Array(kept.collect())
        }
        other => other.clone(),
    }
}

/// `config` merged into `live`: maps by key, non-atomic lists by item
/// (live order, new items appended), leaves replaced; a null in `config`
/// removes the field.
pub fn merge(ty: Ty<'_>, live: &Value, config: &Value) -> Value {
    match (live, config) {
        (Value::Object(lm), Value::Object(cm)) if !ty.is_leaf(config) => {
            let mut out = lm.clone();
            for (k, cv) in cm {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let (cty, _) = ty.field(k);
                let merged = match lm.get(k) {
                    Some(lv) => merge(cty, lv, cv),
                    None => strip_nulls(cv),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(ll), Value::Array(cl)) if !ty.is_leaf(config) => {
            let ity = ty.items();
            let given = ty.keyed(cl);
            let by_element: HashMap<&Element, &Value> = given.iter().map(|(e, v)| (e, *v)).collect();
            let mut out: Vec<Value> = Vec::new();
            let mut seen = HashSet::new();
            for (e, lv) in ty.keyed(ll) {
                match by_element.get(&e) {
                    Some(cv) => out.push(merge(ity, lv, cv)),
                    None => out.push(lv.clone()),
                }
                seen.insert(e);
            }
            out.extend(given.iter().filter(|(e, _)| !seen.contains(e)).map(|(_, cv)| strip_nulls(cv)));
            Value::Array(out)
        }
        (_, c) => strip_nulls(c),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "priority": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "groups": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}},
            "args": {"type": "array", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
        }}}})
    }

    fn wire(s: &Set) -> Value {
        s.to_fields_v1()
    }

    #[test]
    fn field_sets_follow_the_schema() {
        let s = schema();
        let obj = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"priority": 1, "tags": ["a", "b"],
            "groups": [{"name": "main", "image": "i"}], "args": ["x"], "selector": {"a": "b"}}});
        assert_eq!(
            wire(&to_set(Ty::root(Some(&s)), &obj)),
            json!({"f:metadata": {"f:name": {}, "f:labels": {"f:x": {}}}, "f:spec": {"f:priority": {}, "f:args": {},
                "f:selector": {}, "f:tags": {"v:\"a\"": {}, "v:\"b\"": {}},
                "f:groups": {"k:{\"name\":\"main\"}": {".": {}, "f:name": {}, "f:image": {}}}}})
        );
        // Without a schema maps merge by key, so every key is owned itself.
        assert_eq!(
            wire(&to_set(Ty::root(None), &json!({"data": {"k": "v"}, "list": [1]}))),
            json!({"f:data": {".": {}, "f:k": {}}, "f:list": {}})
        );
    }

    #[test]
    fn comparison_names_added_modified_and_removed_fields() {
        let s = schema();
        let ty = Ty::root(Some(&s));
        let old = json!({"spec": {"priority": 1, "tags": ["a"], "groups": [{"name": "main", "image": "i"}]}});
        let new =
            json!({"spec": {"priority": 2, "tags": ["b"], "groups": [{"name": "main", "image": "j"}], "args": []}});
        let c = compare(ty, &old, &new);
        assert_eq!(
            wire(&c.modified),
            json!({"f:spec": {"f:priority": {}, "f:groups": {"k:{\"name\":\"main\"}": {"f:image": {}}}}})
        );
        assert_eq!(wire(&c.added), json!({"f:spec": {"f:args": {}, "f:tags": {"v:\"b\"": {}}}}));
        assert_eq!(wire(&c.removed), json!({"f:spec": {"f:tags": {"v:\"a\"": {}}}}));
        assert_eq!(compare(ty, &old, &old), Comparison::default());
    }

    #[test]
    fn merge_follows_list_types() {
        let s = schema();
        let ty = Ty::root(Some(&s));
        let live = json!({"spec": {"priority": 1, "tags": ["a"], "args": ["x", "y"], "selector": {"a": "1", "b": "2"},
            "groups": [{"name": "main", "image": "i"}, {"name": "side", "image": "s"}]}});
        let config = json!({"spec": {"tags": ["b"], "args": ["z"], "selector": {"c": "3"},
            "groups": [{"name": "main", "image": "j"}]}});
        assert_eq!(
            merge(ty, &live, &config),
            json!({"spec": {"priority": 1, "tags": ["a", "b"], "args": ["z"], "selector": {"c": "3"},
                "groups": [{"name": "main", "image": "j"}, {"name": "side", "image": "s"}]}})
        );
    }

    #[test]
    fn removing_fields_takes_whole_items() {
        let s = schema();
        let ty = Ty::root(Some(&s));
        let obj = json!({"spec": {"priority": 1, "tags": ["a", "b"], "groups": [{"name": "main", "image": "i"}]}});
        let set = Set::from_fields_v1(&json!({"f:spec": {"f:priority": {}, "f:tags": {"v:\"a\"": {}},
            "f:groups": {"k:{\"name\":\"main\"}": {}}}}))
        .expect("set");
        assert_eq!(remove(ty, &obj, &set), json!({"spec": {"tags": ["b"], "groups": []}}));
    }
}
