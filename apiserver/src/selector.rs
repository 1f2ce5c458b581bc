//! Label selectors (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
//! `a`, `!a`, `a>1`, `a<1`) and field selectors (`f=v`, `f==v`, `f!=v`).

use serde_json::{Map, Value};

use crate::validation::names;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        terms(s).into_iter().map(parse_requirement).collect::<Result<_, _>>().map(LabelSelector)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| {
            let v = get(&r.key);
            match r.op {
                Op::Eq | Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::Ne | Op::NotIn => v.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(have), Some(want)) =
                        (v.and_then(|v| v.parse::<i64>().ok()), r.values[0].parse::<i64>().ok())
                    else {
                        return false;
                    };
                    if r.op == Op::Gt { have > want } else { have < want }
                }
            }
        })
    }
}

fn parse_requirement(t: &str) -> Result<Requirement, String> {
    let bad = |why: String| format!("unable to parse requirement {t:?}: {why}");
    let check_key = |k: &str| names::qualified_name(k).map_or(Ok(()), |why| Err(bad(format!("key {k:?}: {why}"))));
    let check_value = |v: &str| names::label_value(v).map_or(Ok(()), |why| Err(bad(format!("value {v:?}: {why}"))));
    if let Some(key) = t.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement { key: key.into(), op: Op::DoesNotExist, values: vec![] });
    }
    if let Some((key, rest)) = t.split_once(char::is_whitespace) {
        let rest = rest.trim_start();
        let (op, list) = if let Some(l) = rest.strip_prefix("notin") {
            (Op::NotIn, l)
        } else if let Some(l) = rest.strip_prefix("in") {
            (Op::In, l)
        } else {
            return parse_binary(t, check_key, check_value);
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| bad("expected a parenthesised list of values".into()))?;
        check_key(key)?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            check_value(v)?;
        }
        return Ok(Requirement { key: key.into(), op, values });
    }
    parse_binary(t, check_key, check_value)
}

fn parse_binary(
    t: &str,
    check_key: impl Fn(&str) -> Result<(), String>,
    check_value: impl Fn(&str) -> Result<(), String>,
) -> Result<Requirement, String> {
    for (sym, op) in [("!=", Op::Ne), ("==", Op::Eq), ("=", Op::Eq), (">", Op::Gt), ("<", Op::Lt)] {
        if let Some((k, v)) = t.split_once(sym) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            if matches!(op, Op::Gt | Op::Lt) && v.parse::<i64>().is_err() {
                return Err(format!("unable to parse requirement {t:?}: {v:?} is not an integer"));
            }
            return Ok(Requirement { key: k.into(), op, values: vec![v.into()] });
        }
    }
    check_key(t)?;
    Ok(Requirement { key: t.into(), op: Op::Exists, values: vec![] })
}

/// One `field=value` or `field!=value` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub equal: bool,
    pub value: String,
}

/// A parsed field selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldRequirement>);

/// Splits on a separator not escaped with `\`; the parts keep their escapes.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push('\\');
                    last.push(n);
                }
            }
            c if c == sep => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c)
                }
            }
        }
    }
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for term in split_escaped(s, ',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!("invalid selector: {term:?}; can't understand it as field=value"));
            };
            reqs.push(FieldRequirement { field: field.trim().into(), equal, value: unescape(value.trim()) });
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field paths used, to check they are supported.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| r.field.as_str())
    }

    /// The single `metadata.name=X`, if the selector asks for exactly one name.
    pub fn name(&self) -> Option<&str> {
        self.0.iter().find(|r| r.field == "metadata.name" && r.equal).map(|r| r.value.as_str())
    }

    /// `get` gives a field's value as a string (missing = empty).
    pub fn matches(&self, get: impl Fn(&str) -> String) -> bool {
        self.0.iter().all(|r| (get(&r.field) == r.value) == r.equal)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_operators() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(Some(&l));
        assert!(m("app=web"));
        assert!(m("app==web,tier=front"));
        assert!(!m("app=db"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(m("app in (web, db)"));
        assert!(!m("app notin (web,db)"));
        assert!(m("tier notin (back),app"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>3"));
        assert!(!m("n<3"));
        assert!(m(""));
        assert!(!LabelSelector::parse("app=web").expect("parse").matches(None));
    }

    #[test]
    fn bad_label_selectors_are_refused() {
        for s in ["app in web", "a b", "app=-x", "n>x", "app in (x"] {
            assert!(LabelSelector::parse(s).is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn field_selectors() {
        let sel = FieldSelector::parse("metadata.name=hello,spec.agent!=a2").expect("parse");
        assert_eq!(sel.name(), Some("hello"));
        assert_eq!(sel.fields().collect::<Vec<_>>(), ["metadata.name", "spec.agent"]);
        let obj = |name: &str, agent: &str| {
            let (n, a) = (name.to_string(), agent.to_string());
            move |f: &str| if f == "metadata.name" { n.clone() } else { a.clone() }
        };
        assert!(sel.matches(obj("hello", "a1")));
        assert!(!sel.matches(obj("hello", "a2")));
        assert!(!sel.matches(obj("bye", "a1")));
        let esc = FieldSelector::parse(r"spec.x=a\,b").expect("parse");
        assert_eq!(esc.0[0].value, "a,b");
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
