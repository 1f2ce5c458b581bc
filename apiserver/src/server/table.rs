//! Server-side printing: a `meta.k8s.io` Table built from a kind's printer
//! columns, as `kubectl get` asks for.

use serde_json::{Value, json};

use super::object;
use super::params::IncludeObject;
use crate::registry::{Column, Kind};

/// `Name` and the kind's printer columns.
pub fn column_definitions(kind: &Kind) -> Vec<Value> {
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace.",
    })];
    defs.extend(kind.columns.iter().map(|c| {
        json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
    }));
    defs
}

/// A Table holding `rows`.
pub fn table(kind: &Kind, version: &str, rows: Vec<Value>, list_meta: Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "columnDefinitions": column_definitions(kind),
        "rows": rows,
    })
}

/// One object's row.
pub fn row(kind: &Kind, obj: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let mut cells = vec![Value::String(object::name(obj).unwrap_or_default().to_string())];
    cells.extend(kind.columns.iter().map(|c| cell(c, obj, now)));
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(obj, "v1"),
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn cell(c: &Column, obj: &Value, now: jiff::Timestamp) -> Value {
    let Some(v) = c.path.first(obj) else { return Value::Null };
    match c.type_.as_str() {
        "integer" => {
            v.as_i64().map(Value::from).or_else(|| v.as_f64().map(|f| Value::from(f as i64))).unwrap_or(Value::Null)
        }
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match v.as_str().map(|s| s.parse::<jiff::Timestamp>()) {
            Some(Ok(t)) => Value::String(human_duration(now.duration_since(t).as_secs())),
            Some(Err(_)) => Value::String("<invalid>".into()),
            None => Value::Null,
        },
        _ => match v {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
    }
}

/// An age the way kubectl shows it: `5s`, `3m20s`, `4h`, `2d3h`, `3y`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 { format!("{big}{unit}") } else { format!("{big}{unit}{small}{small_unit}") }
    };
    let minutes = secs / 60;
    if minutes < 10 {
        return with(minutes, "m", secs % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    if hours < 24 * 365 * 8 {
        return with(days / 365, "y", days % 365, "d");
    }
    format!("{}y", days / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::crd;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(180), "3m");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(3600 * 30), "30h");
        assert_eq!(human_duration(3600 * 24 * 3 + 3600), "3d1h");
        assert_eq!(human_duration(3600 * 24 * 100), "100d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn agent_rows_use_the_ready_condition_filter() {
        let agent = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Agent").expect("crd");
        let kind = crd::kinds_of(&serde_json::to_value(&agent).expect("json")).remove(0);
        let obj = json!({
            "metadata": {"name": "a1", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "2"}},
        });
        let now: jiff::Timestamp = "2020-01-01T00:00:05Z".parse().expect("time");
        let r = row(&kind, &obj, IncludeObject::Metadata, now);
        let names: Vec<_> = column_definitions(&kind).iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, ["Name", "Ready", "CPU", "Memory", "CPU Used", "Memory Used", "Ports", "Age"]);
        assert_eq!(r["cells"], json!(["a1", "True", "2", null, null, null, null, "5s"]));
        assert_eq!(r["object"]["kind"], "PartialObjectMetadata");
    }
}
