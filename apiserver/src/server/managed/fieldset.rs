//! Field sets: which fields of an object a manager owns, and their
//! `FieldsV1` wire form (`f:` fields, `k:` list keys, `v:` set values,
//! `i:` indexes, `.` for "this node itself"), after Kubernetes'
//! structured-merge-diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. Keys and values are kept as canonical JSON text
/// (object keys sorted), so elements compare and order as plain strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// A map field (`f:name`).
    Field(String),
    /// An item of a `map` list by its key fields (`k:{"name":"main"}`).
    Key(String),
    /// An item of a `set` list by its value (`v:"a"`).
    Value(String),
    /// An item of a list by position (`i:0`).
    Index(usize),
}

impl Element {
    /// The `FieldsV1` key of this element.
    pub fn encode(&self) -> String {
        match self {
            Element::Field(f) => format!("f:{f}"),
            Element::Key(k) => format!("k:{k}"),
            Element::Value(v) => format!("v:{v}"),
            Element::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn decode(s: &str) -> Result<Element, String> {
        let (prefix, rest) = s.split_at_checked(2).ok_or_else(|| format!("{s:?} is not a field path element"))?;
        let json = |r: &str| -> Result<String, String> {
            let v: Value = serde_json::from_str(r).map_err(|e| format!("{s:?}: {e}"))?;
            Ok(v.to_string())
        };
        match prefix {
            "f:" => Ok(Element::Field(rest.to_string())),
            "k:" => {
                let k = json(rest)?;
                if !k.starts_with('{') {
                    return Err(format!("{s:?}: a key must be a JSON object"));
                }
                Ok(Element::Key(k))
            }
            "v:" => Ok(Element::Value(json(rest)?)),
            "i:" => rest.parse().map(Element::Index).map_err(|_| format!("{s:?}: not an index")),
            _ => Err(format!("{s:?} is not a field path element")),
        }
    }
}

impl fmt::Display for Element {
    /// As Kubernetes prints paths in conflicts: `.spec`, `[name="main"]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Field(n) => write!(f, ".{n}"),
            Element::Key(k) => {
                let m: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Element::Value(v) => write!(f, "[={v}]"),
            Element::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Element>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| write!(f, "{e}"))
    }
}

impl Path {
    pub fn child(&self, e: Element) -> Path {
        let mut p = self.0.clone();
        p.push(e);
        Path(p)
    }
}

/// A set of paths, as a tree: `members` are paths ending here, `children`
/// hold longer ones. Children are never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<Element>,
    children: BTreeMap<Element, Set>,
}

impl Set {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &[Element]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[Element]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The set under one element (empty if none).
    pub fn child(&self, e: &Element) -> Set {
        self.children.get(e).cloned().unwrap_or_default()
    }

    pub fn is_member(&self, e: &Element) -> bool {
        self.members.contains(e)
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (e, c) in &other.children {
            let merged = match out.children.get(e) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(e.clone(), merged);
        }
        out
    }

    /// The paths of `self` that are not in `other` (a member of `other`
    /// does not remove the paths below it).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(e, c)| (e.clone(), other.children.get(e).map_or_else(|| c.clone(), |o| c.difference(o))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        Set { members, children }
    }

    /// [`Set::difference`], also dropping everything below a member of `other`.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(e, _)| !other.members.contains(*e))
            .map(|(e, c)| (e.clone(), other.children.get(e).map_or_else(|| c.clone(), |o| c.recursive_difference(o))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        Set { members, children }
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(e, c)| other.children.get(e).map(|o| (e.clone(), c.intersection(o))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        Set { members, children }
    }

    /// Every node that has paths below it counts as a member too (so that
    /// removing it removes the whole field).
    pub fn with_parents(&self) -> Set {
        let mut out = self.clone();
        for (e, c) in &self.children {
            out.members.insert(e.clone());
            out.children.insert(e.clone(), c.with_parents());
        }
        out
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&Path::default(), &mut out);
        out
    }

    fn collect(&self, at: &Path, out: &mut Vec<Path>) {
        let keys: BTreeSet<&Element> = self.members.iter().chain(self.children.keys()).collect();
        for e in keys {
            let p = at.child(e.clone());
            if self.members.contains(e) {
                out.push(p.clone());
            }
            if let Some(c) = self.children.get(e) {
                c.collect(&p, out);
            }
        }
    }

    /// The `fieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for e in &self.members {
            m.insert(e.encode(), Value::Object(Map::new()));
        }
        for (e, c) in &self.children {
            let mut inner = c.to_fields_v1();
            if self.members.contains(e)
                && let Some(o) = inner.as_object_mut()
            {
                o.insert(".".into(), Value::Object(Map::new()));
            }
            m.insert(e.encode(), inner);
        }
        Value::Object(m)
    }

    /// Reads `fieldsV1` JSON.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let m = v.as_object().ok_or("fieldsV1 must be an object")?;
        let mut set = Set::default();
        for (k, inner) in m {
            if k == "." {
                continue;
            }
            let e = Element::decode(k)?;
            let im = inner.as_object().ok_or_else(|| format!("{k:?} must map to an object"))?;
            if im.is_empty() || im.contains_key(".") {
                set.members.insert(e.clone());
            }
            let c = Set::from_fields_v1(inner)?;
            if !c.is_empty() {
                set.children.insert(e, c);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn f(s: &str) -> Element {
        Element::Field(s.into())
    }

    #[test]
    fn kubernetes_encoding_round_trips() {
        let wire = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:taskGroups": {}, "f:tags": {"v:\"a\"": {}},
                "f:ports": {"k:{\"name\":\"http\",\"port\":80}": {".": {}, "f:name": {}}}}
        });
        let set = Set::from_fields_v1(&wire).expect("decode");
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("spec")]));
        assert_eq!(set.to_fields_v1(), wire);
        let paths: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
        assert!(paths.contains(&".spec.ports[name=\"http\",port=80].name".to_string()), "{paths:?}");
        assert!(paths.contains(&".spec.tags[=\"a\"]".to_string()), "{paths:?}");
    }

    #[test]
    fn malformed_fields_v1_is_refused() {
        assert!(Set::from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(Set::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(Set::from_fields_v1(&json!({"k:[1]": {}})).is_err());
        assert!(Set::from_fields_v1(&json!([])).is_err());
    }

    fn element() -> impl Strategy<Value = Element> {
        prop_oneof![
            "[a-c]{1,2}".prop_map(Element::Field),
            "[a-c]{1,2}".prop_map(|s| Element::Key(json!({"name": s}).to_string())),
            (0..3i64).prop_map(|n| Element::Value(json!(n).to_string())),
            (0..3usize).prop_map(Element::Index),
        ]
    }

    fn set() -> impl Strategy<Value = Set> {
        prop::collection::vec(prop::collection::vec(element(), 1..4), 0..8).prop_map(|paths| {
            let mut s = Set::default();
            for p in paths {
                s.insert(&p);
            }
            s
        })
    }

    proptest! {
        #[test]
        fn fields_v1_round_trips(s in set()) {
            prop_assert_eq!(Set::from_fields_v1(&s.to_fields_v1()).expect("decode"), s);
        }

        #[test]
        fn union_and_difference_laws(a in set(), b in set()) {
            let u = a.union(&b);
            for p in a.paths().iter().chain(b.paths().iter()) {
                prop_assert!(u.has(&p.0));
            }
            prop_assert_eq!(a.union(&b), b.union(&a));
            let d = a.difference(&b);
            for p in d.paths() {
                prop_assert!(a.has(&p.0) && !b.has(&p.0));
            }
            prop_assert_eq!(d.union(&a.intersection(&b)), a.clone());
            prop_assert!(a.difference(&a).is_empty());
            prop_assert_eq!(a.intersection(&b), b.intersection(&a));
            for p in a.recursive_difference(&b).paths() {
                prop_assert!((1..=p.0.len()).all(|n| !b.has(&p.0[..n])));
            }
        }
    }
}
