//! Objects as JSON: metadata access, the stored form (no
//! `resourceVersion`: it is the key's mod revision), and the fields the
//! server owns.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::{Error, Result, Subject};
use crate::registry::Kind;
use crate::storage::KeyValue;

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata`, created if missing or not an object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|n| !n.is_empty())
}

/// The error subject for `NotFound`/`AlreadyExists`/`Conflict`: `jobs.berth.dev "x"`.
pub fn subject(kind: &Kind, name: &str) -> Subject {
    Subject { group: kind.group.clone(), kind: kind.plural.clone(), name: name.to_string() }
}

/// The error subject for `Invalid`: `Job.berth.dev "x"`.
pub fn invalid_subject(kind: &Kind, name: &str) -> Subject {
    Subject { group: kind.group.clone(), kind: kind.kind.clone(), name: name.to_string() }
}

/// A stored value as the API shows it.
pub fn decode(kind: &Kind, kv: &KeyValue) -> Result<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| Error::Internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    set_revision(&mut obj, kv.mod_revision);
    obj["apiVersion"] = Value::String(kind.api_version());
    obj["kind"] = Value::String(kind.kind.clone());
    Ok(obj)
}

pub fn set_revision(obj: &mut Value, rev: u64) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
}

/// The stored form of an object: its JSON without `metadata.resourceVersion`
/// and `metadata.selfLink`, written straight from `obj` (no copy of it).
pub fn encode(obj: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&Stored(obj)).unwrap_or_default())
}

/// The length of [`encode`]'s output, counted without keeping it.
pub fn encoded_len(obj: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, &Stored(obj));
    count.0
}

/// The object as stored; see [`encode`].
struct Stored<'a>(&'a Value);

/// `metadata` as stored.
struct StoredMeta<'a>(&'a Map<String, Value>);

const NOT_STORED: [&str; 2] = ["resourceVersion", "selfLink"];

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(top) = self.0 else { return self.0.serialize(s) };
        let mut map = s.serialize_map(Some(top.len()))?;
        for (k, v) in top {
            match v {
                Value::Object(meta) if k == "metadata" => map.serialize_entry(k, &StoredMeta(meta))?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

impl serde::Serialize for StoredMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let kept = || self.0.iter().filter(|(k, _)| !NOT_STORED.contains(&k.as_str()));
        let mut map = s.serialize_map(Some(kept().count()))?;
        for (k, v) in kept() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `obj` as [`decode`] would give it back after it was stored at `rev`
/// (without parsing the stored bytes again).
pub fn as_stored(kind: &Kind, mut obj: Value, rev: u64) -> Value {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("selfLink");
    }
    set_revision(&mut obj, rev);
    obj["apiVersion"] = Value::String(kind.api_version());
    obj["kind"] = Value::String(kind.kind.clone());
    obj
}

/// Whether anything besides `metadata` and `status` differs: what moves `generation`.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
        m
    };
    strip(old) != strip(new)
}

/// A field's value for a field selector (missing = empty string).
pub fn field_value(obj: &Value, field: &str) -> String {
    let field = if field == "source" { "source.component" } else { field };
    let v = field.split('.').try_fold(obj, |acc, k| acc.get(k));
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Checks `apiVersion`/`kind` of a request body against the URL and fills them in.
pub fn check_type_meta(kind: &Kind, obj: &mut Value) -> Result<()> {
    if let Some(k) = obj.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty())
        && k != kind.kind
    {
        return Err(Error::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            kind.kind
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str).filter(|a| !a.is_empty())
        && av != kind.api_version()
    {
        return Err(Error::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    for field in ["kind", "apiVersion"] {
        if obj.get(field).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(Error::BadRequest(format!("{field}: Invalid value: must be a string")));
        }
    }
    obj["apiVersion"] = Value::String(kind.api_version());
    obj["kind"] = Value::String(kind.kind.clone());
    Ok(())
}

/// Now, as Kubernetes writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `generateName` + 5 random characters from Kubernetes' alphabet.
pub fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes.iter().take(5).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    let max = 63 - 5;
    let prefix = if prefix.len() > max { &prefix[..max] } else { prefix };
    format!("{prefix}{suffix}")
}

/// Copies the fields the server owns from `current` into `next`.
pub fn keep_server_fields(current: &Value, next: &mut Value) {
    let cur = meta(current);
    let m = meta_mut(next);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match cur.and_then(|c| c.get(k)) {
            Some(v) => m.insert(k.into(), v.clone()),
            None => m.remove(k),
        };
    }
}

pub fn generation(obj: &Value) -> i64 {
    meta(obj).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0)
}

/// `metadata.finalizers` as strings.
pub fn finalizer_names(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> usize {
    meta(obj).and_then(|m| m.get("finalizers")).and_then(Value::as_array).map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn generation_follows_everything_but_metadata_and_status() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 1}});
        let mut b = a.clone();
        b["metadata"]["labels"]["a"] = json!("2");
        b["status"]["y"] = json!(2);
        assert!(!spec_changed(&a, &b));
        b["spec"]["x"] = json!(2);
        assert!(spec_changed(&a, &b));
        let mut c = a.clone();
        c["data"] = json!({"k": "v"});
        assert!(spec_changed(&a, &c), "top-level fields other than spec count too");
    }

    #[test]
    fn stored_form_has_no_resource_version() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "5", "selfLink": "/x"}, "spec": {"n": 1}});
        let bytes = encode(&obj);
        let back: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(back, json!({"metadata": {"name": "a"}, "spec": {"n": 1}}));
        assert_eq!(encoded_len(&obj), bytes.len());
        assert_eq!(encode(&json!("scalar")), Bytes::from_static(b"\"scalar\""));
    }

    #[test]
    fn generated_names_are_valid() {
        let n = generated_name("job-");
        assert_eq!(n.len(), 9);
        assert!(crate::validation::names::dns_subdomain(&n).is_none(), "{n}");
    }
}
