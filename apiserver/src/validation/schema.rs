//! A validator for a CRD's structural `openAPIV3Schema`: prunes unknown
//! fields, applies defaults, then reports *every* violation with its field
//! path (`spec.taskGroups[0].image: Required value`), as Kubernetes does.
//!
//! Supported: `type`, `properties`, `required`, `items`, `enum`,
//! `pattern`, `minimum`/`maximum` (and exclusive), `minLength`/
//! `maxLength`, `minItems`/`maxItems`, `uniqueItems`, `minProperties`/
//! `maxProperties`, `additionalProperties`, `nullable`, `default`,
//! `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//! `anyOf`/`allOf`/`oneOf`/`not`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::Cause;

/// One problem with one field.
pub type FieldError = Cause;

/// What checking an object found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Violations of the schema.
    pub errors: Vec<Cause>,
    /// Paths of fields the schema does not declare (already pruned).
    pub unknown: Vec<String>,
}

/// Prunes unknown fields from `obj`, defaults it, and validates it against
/// `schema` (the whole object's schema: `apiVersion`, `kind` and `metadata`
/// are always known at the root).
pub fn check(schema: &Value, obj: &mut Value) -> Outcome {
    let mut out = Outcome::default();
    prune_and_default(schema, obj, "", true, &mut out.unknown);
    validate(schema, obj, "", true, &mut out.errors);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn nullable(s: &Value) -> bool {
    s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}

fn flag(s: &Map<String, Value>, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn prune_and_default(schema: &Value, v: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    match v {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties");
            let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
            if let Some(props) = props {
                for (k, ps) in props {
                    if map.get(k).is_some_and(Value::is_null) && !nullable(ps) {
                        map.remove(k);
                    }
                    if !map.contains_key(k)
                        && let Some(d) = ps.get("default")
                    {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(child) = map.get_mut(&k) else { continue };
                if let Some(ps) = props.and_then(|p| p.get(&k)) {
                    prune_and_default(ps, child, &join(path, &k), false, unknown);
                } else if root && ROOT_FIELDS.contains(&k.as_str()) {
                    continue;
                } else if let Some(ap @ Value::Object(_)) = additional {
                    prune_and_default(ap, child, &format!("{path}[{k}]"), false, unknown);
                } else if additional == Some(&Value::Bool(true)) || preserve {
                    continue;
                } else {
                    unknown.push(join(path, &k));
                    map.remove(&k);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune_and_default(is, it, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "number" => v.is_number(),
        other => type_name(v) == other,
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn cause(reason: &'static str, path: &str, message: String) -> Cause {
    Cause { reason, field: path.to_string(), message }
}

fn invalid(path: &str, v: &Value, why: String) -> Cause {
    cause("FieldValueInvalid", path, format!("Invalid value: {}: {why}", shown(v)))
}

static REGEXES: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(Default::default);

fn pattern_matches(pattern: &str, s: &str) -> Option<bool> {
    let mut cache = REGEXES.lock().ok()?;
    let re = cache.entry(pattern.to_string()).or_insert_with(|| Regex::new(pattern).ok());
    re.as_ref().map(|re| re.is_match(s))
}

fn validate(schema: &Value, v: &Value, path: &str, root: bool, errs: &mut Vec<Cause>) {
    let Some(s) = schema.as_object() else { return };
    let body = if path.is_empty() { "body".to_string() } else { format!("{path} in body") };
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let ty = s.get("type").and_then(Value::as_str);
    if v.is_null() {
        if !nullable(schema)
            && let Some(t) = ty
        {
            errs.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"null\": {body} must be of type {t}: \"null\""),
            ));
        }
        return;
    }
    if int_or_string {
        if !(v.is_string() || type_name(v) == "integer") {
            let msg = format!("Invalid value: {}: {body} must be of type integer or string", shown(v));
            errs.push(cause("FieldValueTypeInvalid", path, msg));
            return;
        }
    } else if let Some(t) = ty
        && !has_type(v, t)
    {
        let msg = format!("Invalid value: \"{}\": {body} must be of type {t}: \"{}\"", type_name(v), type_name(v));
        errs.push(cause("FieldValueTypeInvalid", path, msg));
        return;
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(v)
    {
        let list = allowed.iter().map(shown).collect::<Vec<_>>().join(", ");
        errs.push(cause(
            "FieldValueNotSupported",
            path,
            format!("Unsupported value: {}: supported values: {list}", shown(v)),
        ));
    }
    match v {
        Value::String(st) => check_string(s, st, v, path, &body, errs),
        Value::Number(n) => check_number(s, n.as_f64().unwrap_or(0.0), v, path, &body, errs),
        Value::Array(items) => check_array(s, items, v, path, &body, errs),
        Value::Object(map) => check_object(s, map, v, path, root, &body, errs),
        _ => {}
    }
    check_combinators(s, v, path, errs);
}

fn check_string(s: &Map<String, Value>, st: &str, v: &Value, path: &str, body: &str, errs: &mut Vec<Cause>) {
    let len = st.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errs.push(invalid(path, v, format!("{body} should be at least {min} chars long")));
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errs.push(cause("FieldValueTooLong", path, format!("Too long: may not be more than {max} bytes")));
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && pattern_matches(p, st) == Some(false)
    {
        errs.push(invalid(path, v, format!("{body} should match '{p}'")));
    }
}

fn check_number(s: &Map<String, Value>, n: f64, v: &Value, path: &str, body: &str, errs: &mut Vec<Cause>) {
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        if flag(s, "exclusiveMinimum") && n <= min {
            errs.push(invalid(path, v, format!("{body} should be greater than {min}")));
        } else if n < min {
            errs.push(invalid(path, v, format!("{body} should be greater than or equal to {min}")));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        if flag(s, "exclusiveMaximum") && n >= max {
            errs.push(invalid(path, v, format!("{body} should be less than {max}")));
        } else if n > max {
            errs.push(invalid(path, v, format!("{body} should be less than or equal to {max}")));
        }
    }
    if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract() != 0.0
    {
        errs.push(invalid(path, v, format!("{body} should be a multiple of {m}")));
    }
}

fn check_array(s: &Map<String, Value>, items: &[Value], v: &Value, path: &str, body: &str, errs: &mut Vec<Cause>) {
    let n = items.len() as u64;
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        errs.push(invalid(path, &Value::from(n), format!("{body} should have at least {min} items")));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        errs.push(cause("FieldValueTooMany", path, format!("Too many: {n}: must have at most {max} items")));
    }
    if flag(s, "uniqueItems") {
        for (i, it) in items.iter().enumerate() {
            if items[..i].contains(it) {
                errs.push(cause(
                    "FieldValueDuplicate",
                    &format!("{path}[{i}]"),
                    format!("Duplicate value: {}", shown(it)),
                ));
            }
        }
    }
    let _ = v;
    if let Some(is) = s.get("items") {
        for (i, it) in items.iter().enumerate() {
            validate(is, it, &format!("{path}[{i}]"), false, errs);
        }
    }
}

fn check_object(
    s: &Map<String, Value>,
    map: &Map<String, Value>,
    v: &Value,
    path: &str,
    root: bool,
    body: &str,
    errs: &mut Vec<Cause>,
) {
    if let Some(Value::Array(required)) = s.get("required") {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                errs.push(cause("FieldValueRequired", &join(path, r), "Required value".into()));
            }
        }
    }
    let n = map.len() as u64;
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        errs.push(invalid(path, v, format!("{body} should have at least {min} properties")));
    }
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        errs.push(invalid(path, v, format!("{body} should have at most {max} properties")));
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, child) in map {
        if let Some(ps) = props.and_then(|p| p.get(k)) {
            validate(ps, child, &join(path, k), false, errs);
        } else if root && ROOT_FIELDS.contains(&k.as_str()) {
            continue;
        } else if let Some(ap @ Value::Object(_)) = s.get("additionalProperties") {
            validate(ap, child, &format!("{path}[{k}]"), false, errs);
        }
    }
}

fn check_combinators(s: &Map<String, Value>, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        validate(sub, v, path, false, &mut e);
        e
    };
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            errs.extend(passes(sub));
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf")
        && !any.is_empty()
        && !any.iter().any(|sub| passes(sub).is_empty())
    {
        errs.push(invalid(path, v, "must validate at least one schema (anyOf)".into()));
    }
    if let Some(Value::Array(one)) = s.get("oneOf")
        && !one.is_empty()
        && one.iter().filter(|sub| passes(sub).is_empty()).count() != 1
    {
        errs.push(invalid(path, v, "must validate one and only one schema (oneOf)".into()));
    }
    if let Some(not) = s.get("not")
        && passes(not).is_empty()
    {
        errs.push(invalid(path, v, "must not validate the schema (not)".into()));
    }
}

#[cfg(test)]
mod tests;
