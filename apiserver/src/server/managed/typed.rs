//! Objects seen through their schema: which maps merge by key and which
//! are atomic, and how lists merge (`x-kubernetes-list-type`: `atomic`,
//! the default; `set`; `map` by `x-kubernetes-list-map-keys`). Without a
//! schema, maps merge by key and lists are atomic. `metadata` always has
//! `ObjectMeta`'s shape.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::fieldset::Element;

/// `ObjectMeta` as structured-merge-diff sees it.
static OBJECT_META: LazyLock<Value> = LazyLock::new(|| {
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({"type": "object", "properties": {
        "labels": strings,
        "annotations": strings,
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
            "items": {"type": "object", "properties": {"apiVersion": {}, "kind": {}, "name": {}, "uid": {},
                "controller": {}, "blockOwnerDeletion": {}}}},
        "managedFields": {"type": "array"},
        "name": {}, "generateName": {}, "namespace": {}, "selfLink": {}, "uid": {}, "resourceVersion": {},
        "generation": {}, "creationTimestamp": {}, "deletionTimestamp": {}, "deletionGracePeriodSeconds": {},
    }})
});

/// A node's type: its schema, or none (deduced from the value).
#[derive(Clone, Copy, Debug)]
pub struct Ty<'a> {
    schema: Option<&'a Value>,
    root: bool,
}

/// How the items of a list are told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

impl<'a> Ty<'a> {
    /// The type of a whole object with the kind's `openAPIV3Schema` (if any).
    pub fn root(schema: Option<&'a Value>) -> Ty<'a> {
        Ty { schema, root: true }
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.schema.and_then(|s| s.get(k))
    }

    /// The type of a map's field, and whether the schema names that field.
    pub fn field(&self, key: &str) -> (Ty<'a>, bool) {
        if self.root && key == "metadata" {
            return (Ty { schema: Some(&OBJECT_META), root: false }, true);
        }
        if let Some(p) = self.get("properties").and_then(|p| p.get(key)) {
            return (Ty { schema: Some(p), root: false }, true);
        }
        let named = self.root && matches!(key, "apiVersion" | "kind");
        match self.get("additionalProperties").filter(|a| a.is_object()) {
            Some(a) => (Ty { schema: Some(a), root: false }, named),
            None => (Ty { schema: None, root: false }, named),
        }
    }

    pub fn items(&self) -> Ty<'a> {
        Ty { schema: self.get("items"), root: false }
    }

    pub fn list_kind(&self) -> ListKind {
        match self.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListKind::Set,
            Some("map") => ListKind::Map(
                self.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            ),
            _ => ListKind::Atomic,
        }
    }

    /// Whether a map value of this type is replaced whole.
    pub fn atomic_map(&self) -> bool {
        self.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
    }

    /// Whether `v` is a leaf (owned and replaced as one value).
    pub fn is_leaf(&self, v: &Value) -> bool {
        match v {
            Value::Object(_) => self.atomic_map(),
            Value::Array(_) => self.list_kind() == ListKind::Atomic,
            _ => true,
        }
    }

    /// The path element of one item of a (non-atomic) list.
    pub fn item_element(&self, index: usize, item: &Value) -> Element {
        match self.list_kind() {
            ListKind::Set => Element::Value(item.to_string()),
            ListKind::Map(keys) => {
                let mut m = Map::new();
                for k in &keys {
                    match item.get(k) {
                        Some(v) if !v.is_null() => {
                            m.insert(k.clone(), v.clone());
                        }
                        _ => {}
                    }
                }
                if m.is_empty() { Element::Index(index) } else { Element::Key(Value::Object(m).to_string()) }
            }
            ListKind::Atomic => Element::Index(index),
        }
    }

    /// A list's items by their elements (the first of duplicates wins).
    pub fn keyed<'v>(&self, list: &'v [Value]) -> Vec<(Element, &'v Value)> {
        let mut seen = std::collections::HashSet::with_capacity(list.len());
        let mut out: Vec<(Element, &Value)> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let e = self.item_element(i, item);
            if seen.insert(e.clone()) {
                out.push((e, item));
            }
        }
        out
    }
}
