//! A small JSONPath evaluator for printer columns and selectable fields:
//! `.a.b`, `.a[0]`, `.a[-1]`, `.a[*].b`, `.a['x.y']`, and filters
//! `.a[?(@.type=="Ready")].status` (`==`, `!=`).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter { path: Vec<String>, equal: bool, value: Value },
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `.a.b[0]`; braces (`{.a}`) and a leading `$` are accepted.
    pub fn parse(src: &str) -> Result<JsonPath, String> {
        let s = src.trim();
        let s = s.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(s);
        let s = s.strip_prefix('$').unwrap_or(s);
        let b = s.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        let bad = |why: &str| format!("invalid JSONPath {src:?}: {why}");
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                        j += 1;
                    }
                    if j == start {
                        return Err(bad("empty field name"));
                    }
                    steps.push(Step::Field(s[start..j].to_string()));
                    i = j;
                }
                b'[' => {
                    let close = find_close(s, i).ok_or_else(|| bad("unclosed '['"))?;
                    steps.push(parse_bracket(&s[i + 1..close]).map_err(|e| bad(&e))?);
                    i = close + 1;
                }
                _ if i == 0 => {
                    // `a.b` without the leading dot.
                    let mut j = i;
                    while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                        j += 1;
                    }
                    steps.push(Step::Field(s[i..j].to_string()));
                    i = j;
                }
                c => return Err(bad(&format!("unexpected {:?}", c as char))),
            }
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in cur {
                match step {
                    Step::Field(f) => next.extend(v.get(f.as_str())),
                    Step::Index(n) => {
                        if let Some(a) = v.as_array() {
                            let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                            next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
                        }
                    }
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter { path, equal, value } => {
                        if let Some(a) = v.as_array() {
                            next.extend(a.iter().filter(|item| {
                                let got = path.iter().try_fold(*item, |acc, k| acc.get(k.as_str()));
                                got.is_some_and(|g| (g == value) == *equal)
                            }));
                        }
                    }
                }
            }
            cur = next;
        }
        cur
    }

    /// The first selected value.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.find(root).into_iter().next()
    }
}

fn find_close(s: &str, open: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i <= open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|t| t.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    let inner = inner.trim();
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(key) = unquote(inner) {
        return Ok(Step::Field(key.to_string()));
    }
    if let Some(expr) = inner.strip_prefix("?(").and_then(|t| t.strip_suffix(')')) {
        let (lhs, rhs, equal) = if let Some((l, r)) = expr.split_once("==") {
            (l, r, true)
        } else if let Some((l, r)) = expr.split_once("!=") {
            (l, r, false)
        } else {
            return Err(format!("unsupported filter {expr:?}"));
        };
        let lhs = lhs.trim().strip_prefix("@.").ok_or_else(|| format!("filter must start with @.: {expr:?}"))?;
        let path = lhs.split('.').map(str::to_string).collect();
        let value = match unquote(rhs) {
            Some(s) => Value::String(s.to_string()),
            None => serde_json::from_str(rhs.trim()).map_err(|_| format!("bad filter value {rhs:?}"))?,
        };
        return Ok(Step::Filter { path, equal, value });
    }
    inner.parse::<i64>().map(Step::Index).map_err(|_| format!("unsupported subscript [{inner}]"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path).expect("parse").find(v).into_iter().cloned().collect()
    }

    #[test]
    fn fields_indexes_and_wildcards() {
        let v = json!({"a": {"b": 1, "list": [{"n": "x"}, {"n": "y"}]}});
        assert_eq!(eval(".a.b", &v), [json!(1)]);
        assert_eq!(eval("{.a.b}", &v), [json!(1)]);
        assert_eq!(eval(".a.list[1].n", &v), [json!("y")]);
        assert_eq!(eval(".a.list[-1].n", &v), [json!("y")]);
        assert_eq!(eval(".a.list[*].n", &v), [json!("x"), json!("y")]);
        assert_eq!(eval(".a.missing.deeper", &v), Vec::<Value>::new());
        assert_eq!(eval(".a.list[5]", &v), Vec::<Value>::new());
        assert_eq!(eval("a.b", &v), [json!(1)]);
    }

    #[test]
    fn filters_select_conditions() {
        let v = json!({"status": {"conditions": [
            {"type": "Scheduled", "status": "True"},
            {"type": "Ready", "status": "False"},
        ]}});
        assert_eq!(eval(r#".status.conditions[?(@.type=="Ready")].status"#, &v), [json!("False")]);
        assert_eq!(eval(r#".status.conditions[?(@.type!="Ready")].type"#, &v), [json!("Scheduled")]);
        assert_eq!(eval(".status.conditions[?(@.type=='Nope')].status", &v), Vec::<Value>::new());
    }

    #[test]
    fn quoted_keys_and_errors() {
        let v = json!({"metadata": {"labels": {"berth.dev/job": "j"}}});
        assert_eq!(eval(".metadata.labels['berth.dev/job']", &v), [json!("j")]);
        assert!(JsonPath::parse(".a[").is_err());
        assert!(JsonPath::parse(".a..b").is_err());
        assert!(JsonPath::parse(".a[?(@.x>1)]").is_err());
    }
}
