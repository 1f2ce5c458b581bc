//! Decoding of Kubernetes protobuf request bodies for the built-in kinds
//! kubectl's typed clients send that way (`kubectl create namespace`,
//! `kubectl create secret …`): `Namespace`, `Secret` and `Lease`, and the
//! self-reviews `kubectl auth whoami` / `kubectl auth can-i` send.
//! Responses are always JSON; clients read the response's content type.
//!
//! The envelope is the magic `k8s\0` and a `runtime.Unknown` (typeMeta = 1,
//! raw = 2); `raw` is the object in the field numbers of Kubernetes'
//! `generated.proto`.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"k8s\0";

fn bad(why: &str) -> Error {
    Error::BadRequest(format!("the protobuf body cannot be decoded: {why}"))
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of one message, in order.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((field, Wire::Varint(varint(&mut buf)?))),
            2 => {
                let n = usize::try_from(varint(&mut buf)?).map_err(|_| bad("length overflow"))?;
                if buf.len() < n {
                    return Err(bad("truncated field"));
                }
                let (head, rest) = buf.split_at(n);
                out.push((field, Wire::Bytes(head)));
                buf = rest;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                buf = buf.get(n..).ok_or_else(|| bad("truncated fixed field"))?;
            }
            _ => return Err(bad("unsupported wire type")),
        }
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or_else(|| bad("truncated varint"))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint too long"))
}

fn text(b: &[u8]) -> Result<Value> {
    String::from_utf8(b.to_vec()).map(Value::String).map_err(|_| bad("a string is not UTF-8"))
}

fn entry(b: &[u8], value: impl Fn(&[u8]) -> Result<Value>) -> Result<(String, Value)> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => k = String::from_utf8(x.to_vec()).map_err(|_| bad("a map key is not UTF-8"))?,
            (2, Wire::Bytes(x)) => v = value(x)?,
            _ => {}
        }
    }
    Ok((k, v))
}

fn time(b: &[u8], micros: bool) -> Result<Value> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for (f, w) in fields(b)? {
        if let Wire::Varint(x) = w {
            match f {
                1 => secs = x as i64,
                2 => nanos = x as i64,
                _ => {}
            }
        }
    }
    let t = jiff::Timestamp::new(secs, nanos as i32).map_err(|_| bad("timestamp out of range"))?;
    let fmt = if micros { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%SZ" };
    Ok(Value::String(t.strftime(fmt).to_string()))
}

fn push(m: &mut Map<String, Value>, k: &str, v: Value) {
    match m.get_mut(k) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            m.insert(k.into(), Value::Array(vec![v]));
        }
    }
}

fn insert_entry(m: &mut Map<String, Value>, k: &str, (key, v): (String, Value)) {
    let map = m.entry(k).or_insert_with(|| json!({}));
    if let Some(o) = map.as_object_mut() {
        o.insert(key, v);
    }
}

fn object_meta(b: &[u8]) -> Result<Value> {
    let mut m = Map::new();
    for (f, w) in fields(b)? {
        match (f, w) {
            // Typed clients send unset strings as empty ones.
            (1..=6, Wire::Bytes(x)) if !x.is_empty() => {
                let k = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"][f as usize - 1];
                m.insert(k.into(), text(x)?);
            }
            (7, Wire::Varint(x)) if x != 0 => {
                m.insert("generation".into(), json!(x as i64));
            }
            (8, Wire::Bytes(x)) => {
                m.insert("creationTimestamp".into(), time(x, false)?);
            }
            (9, Wire::Bytes(x)) => {
                m.insert("deletionTimestamp".into(), time(x, false)?);
            }
            (10, Wire::Varint(x)) => {
                m.insert("deletionGracePeriodSeconds".into(), json!(x as i64));
            }
            (11, Wire::Bytes(x)) => insert_entry(&mut m, "labels", entry(x, text)?),
            (12, Wire::Bytes(x)) => insert_entry(&mut m, "annotations", entry(x, text)?),
            (13, Wire::Bytes(x)) => push(&mut m, "ownerReferences", owner_reference(x)?),
            (14, Wire::Bytes(x)) => push(&mut m, "finalizers", text(x)?),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn owner_reference(b: &[u8]) -> Result<Value> {
    let mut m = Map::new();
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => drop(m.insert("kind".into(), text(x)?)),
            (3, Wire::Bytes(x)) => drop(m.insert("name".into(), text(x)?)),
            (4, Wire::Bytes(x)) => drop(m.insert("uid".into(), text(x)?)),
            (5, Wire::Bytes(x)) => drop(m.insert("apiVersion".into(), text(x)?)),
            (6, Wire::Varint(x)) => drop(m.insert("controller".into(), json!(x != 0))),
            (7, Wire::Varint(x)) => drop(m.insert("blockOwnerDeletion".into(), json!(x != 0))),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// Standard base64, as JSON carries a Secret's bytes.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn namespace(b: &[u8], obj: &mut Map<String, Value>) -> Result<()> {
    for (f, w) in fields(b)? {
        match (f, w) {
            (2, Wire::Bytes(x)) => {
                let mut spec = Map::new();
                for (g, v) in fields(x)? {
                    if let (1, Wire::Bytes(s)) = (g, v) {
                        push(&mut spec, "finalizers", text(s)?);
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            (3, Wire::Bytes(x)) => {
                for (g, v) in fields(x)? {
                    if let (1, Wire::Bytes(s)) = (g, v) {
                        obj.insert("status".into(), json!({"phase": text(s)?}));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn secret(b: &[u8], obj: &mut Map<String, Value>) -> Result<()> {
    for (f, w) in fields(b)? {
        match (f, w) {
            (2, Wire::Bytes(x)) => insert_entry(obj, "data", entry(x, |d| Ok(Value::String(base64(d))))?),
            (3, Wire::Bytes(x)) => drop(obj.insert("type".into(), text(x)?)),
            (4, Wire::Bytes(x)) => insert_entry(obj, "stringData", entry(x, text)?),
            (5, Wire::Varint(x)) => drop(obj.insert("immutable".into(), json!(x != 0))),
            _ => {}
        }
    }
    Ok(())
}

fn lease(b: &[u8], obj: &mut Map<String, Value>) -> Result<()> {
    for (f, w) in fields(b)? {
        if let (2, Wire::Bytes(x)) = (f, w) {
            let mut spec = Map::new();
            for (g, v) in fields(x)? {
                match (g, v) {
                    (_, Wire::Bytes([])) => {}
                    (1, Wire::Bytes(s)) => drop(spec.insert("holderIdentity".into(), text(s)?)),
                    (2, Wire::Varint(n)) => drop(spec.insert("leaseDurationSeconds".into(), json!(n as i32))),
                    (3, Wire::Bytes(s)) => drop(spec.insert("acquireTime".into(), time(s, true)?)),
                    (4, Wire::Bytes(s)) => drop(spec.insert("renewTime".into(), time(s, true)?)),
                    (5, Wire::Varint(n)) => drop(spec.insert("leaseTransitions".into(), json!(n as i32))),
                    (6, Wire::Bytes(s)) => drop(spec.insert("strategy".into(), text(s)?)),
                    (7, Wire::Bytes(s)) => drop(spec.insert("preferredHolder".into(), text(s)?)),
                    _ => {}
                }
            }
            obj.insert("spec".into(), Value::Object(spec));
        }
    }
    Ok(())
}

/// The string fields of a message, named by field number (1-based).
fn strings(b: &[u8], names: &[&str]) -> Result<Value> {
    let mut m = Map::new();
    for (f, w) in fields(b)? {
        if let (Some(name), Wire::Bytes(x)) = (names.get((f as usize).wrapping_sub(1)), w)
            && !x.is_empty()
        {
            m.insert(name.to_string(), text(x)?);
        }
    }
    Ok(Value::Object(m))
}

/// The spec (field 2) of a self-review, by the review's kind.
fn review_spec(raw: &[u8], kind: &str, obj: &mut Map<String, Value>) -> Result<()> {
    const RESOURCE: &[&str] = &["namespace", "verb", "group", "version", "resource", "subresource", "name"];
    for (f, w) in fields(raw)? {
        let (2, Wire::Bytes(x)) = (f, w) else { continue };
        let spec = match kind {
            "SelfSubjectRulesReview" => strings(x, &["namespace"])?,
            _ => {
                let mut spec = Map::new();
                for (g, v) in fields(x)? {
                    match (g, v) {
                        (1, Wire::Bytes(a)) => drop(spec.insert("resourceAttributes".into(), strings(a, RESOURCE)?)),
                        (2, Wire::Bytes(a)) => {
                            drop(spec.insert("nonResourceAttributes".into(), strings(a, &["path", "verb"])?))
                        }
                        _ => {}
                    }
                }
                Value::Object(spec)
            }
        };
        obj.insert("spec".into(), spec);
    }
    Ok(())
}

/// Decodes a protobuf body of a supported built-in kind into JSON.
pub fn decode(body: &[u8]) -> Result<Value> {
    let unknown = body.strip_prefix(MAGIC).ok_or_else(|| bad("missing the k8s protobuf prefix"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (f, w) in fields(unknown)? {
        match (f, w) {
            (1, Wire::Bytes(tm)) => {
                for (g, v) in fields(tm)? {
                    match (g, v) {
                        (1, Wire::Bytes(s)) => api_version = String::from_utf8_lossy(s).into(),
                        (2, Wire::Bytes(s)) => kind = String::from_utf8_lossy(s).into(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(api_version.clone()));
    obj.insert("kind".into(), Value::String(kind.clone()));
    for (f, w) in fields(raw)? {
        if let (1, Wire::Bytes(m)) = (f, w) {
            obj.insert("metadata".into(), object_meta(m)?);
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(raw, &mut obj)?,
        ("v1", "Secret") => secret(raw, &mut obj)?,
        ("coordination.k8s.io/v1", "Lease") => lease(raw, &mut obj)?,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {}
        ("authorization.k8s.io/v1", k @ ("SelfSubjectAccessReview" | "SelfSubjectRulesReview")) => {
            review_spec(raw, k, &mut obj)?
        }
        _ => {
            return Err(Error::UnsupportedMediaType(format!(
                "protobuf bodies are accepted for Namespace, Secret, Lease and the self-reviews only, not {api_version} {kind}; send JSON"
            )));
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_secret_from_kubectl_create_secret() {
        let meta =
            [field(1, b"creds"), field(3, b"default"), field(11, &[field(1, b"a"), field(2, b"b")].concat())].concat();
        let data = [field(1, b".dockerconfigjson"), field(2, b"{}")].concat();
        let raw = [field(1, &meta), field(2, &data), field(3, b"kubernetes.io/dockerconfigjson")].concat();
        let unknown = [field(1, &[field(1, b"v1"), field(2, b"Secret")].concat()), field(2, &raw)].concat();
        let body = [MAGIC, &unknown[..]].concat();
        let v = decode(&body).expect("decode");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": "creds", "namespace": "default", "labels": {"a": "b"}},
                "data": {".dockerconfigjson": "e30="}})
        );
    }

    #[test]
    fn a_self_subject_access_review_from_kubectl_auth_can_i() {
        let attrs = [field(1, b"team-a"), field(2, b"delete"), field(3, b"berth.dev"), field(5, b"jobs")].concat();
        let raw = [field(1, &[]), field(2, &field(1, &attrs))].concat();
        let tm = [field(1, b"authorization.k8s.io/v1"), field(2, b"SelfSubjectAccessReview")].concat();
        let body = [MAGIC, &[field(1, &tm), field(2, &raw)].concat()[..]].concat();
        let v = decode(&body).expect("decode");
        assert_eq!(
            v["spec"],
            json!({"resourceAttributes": {"namespace": "team-a", "verb": "delete", "group": "berth.dev", "resource": "jobs"}})
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert!(decode(b"nope").is_err());
    }
}
