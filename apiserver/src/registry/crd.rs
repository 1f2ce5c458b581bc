//! A `CustomResourceDefinition` object (as JSON) turned into the kinds it
//! serves, its own validation, and the status the server gives it.

use serde_json::{Value, json};

use super::{Column, Kind};
use crate::error::Cause;
use crate::jsonpath::JsonPath;
use crate::validation::names;

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |acc, k| acc.get(*k)).and_then(Value::as_str)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn required(field: &str) -> Cause {
    Cause { reason: "FieldValueRequired", field: field.into(), message: "Required value".into() }
}

fn invalid(field: &str, value: &str, why: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field: field.into(), message: format!("Invalid value: {value:?}: {why}") }
}

/// What is wrong with a CRD, field by field.
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = s(crd, &["spec", "group"]).unwrap_or_default();
    let plural = s(crd, &["spec", "names", "plural"]).unwrap_or_default();
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if let Some(why) = names::dns_subdomain(group) {
        causes.push(invalid("spec.group", group, &why));
    } else if !group.contains('.') {
        causes.push(invalid("spec.group", group, "should be a domain with at least one dot"));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if s(crd, &["spec", "names", "kind"]).unwrap_or_default().is_empty() {
        causes.push(required("spec.names.kind"));
    }
    let name = s(crd, &["metadata", "name"]).unwrap_or_default();
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(invalid(
            "metadata.name",
            name,
            &format!("must be spec.names.plural+\".\"+spec.group ({plural}.{group})"),
        ));
    }
    match s(crd, &["spec", "scope"]) {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: "spec.scope".into(),
            message: format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""),
        }),
        None => causes.push(required("spec.scope")),
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(required("spec.versions"));
    }
    if versions.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true)).count() != 1 {
        causes.push(invalid("spec.versions", "", "must have exactly one version marked as storage version"));
    }
    for (i, v) in versions.iter().enumerate() {
        for (j, c) in v.get("additionalPrinterColumns").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let path = s(c, &["jsonPath"]).unwrap_or_default();
            if let Err(e) = JsonPath::parse(path) {
                causes.push(invalid(&format!("spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"), path, &e));
            }
        }
    }
    causes
}

/// The kinds a (valid) CRD serves: one per served version.
pub fn kinds_of(crd: &Value) -> Vec<Kind> {
    let group = s(crd, &["spec", "group"]).unwrap_or_default().to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let kind = s(&names, &["kind"]).unwrap_or_default().to_string();
    let plural = s(&names, &["plural"]).unwrap_or_default().to_string();
    let singular = s(&names, &["singular"]).map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
    let list_kind = s(&names, &["listKind"]).map(str::to_string).unwrap_or_else(|| format!("{kind}List"));
    let namespaced = s(crd, &["spec", "scope"]) == Some("Namespaced");
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| Kind {
            group: group.clone(),
            version: s(v, &["name"]).unwrap_or_default().to_string(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            namespaced,
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            columns: columns(v),
            status_subresource: v.pointer("/subresources/status").is_some(),
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| s(f, &["jsonPath"]))
                .map(|p| p.trim_start_matches('.').to_string())
                .collect(),
            builtin: false,
            preferred: v.get("storage").and_then(Value::as_bool) == Some(true),
        })
        .collect()
}

fn columns(version: &Value) -> Vec<Column> {
    let given = version.get("additionalPrinterColumns").and_then(Value::as_array).cloned().unwrap_or_default();
    if given.is_empty() {
        // Kubernetes shows Age when a CRD names no columns.
        return vec![Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            path: JsonPath::parse(".metadata.creationTimestamp").expect("valid path"),
        }];
    }
    given
        .iter()
        .filter_map(|c| {
            let json_path = s(c, &["jsonPath"])?;
            Some(Column {
                name: s(c, &["name"]).unwrap_or_default().to_string(),
                type_: s(c, &["type"]).unwrap_or("string").to_string(),
                format: s(c, &["format"]).unwrap_or_default().to_string(),
                description: s(c, &["description"])
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {json_path}")),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                path: JsonPath::parse(json_path).ok()?,
            })
        })
        .collect()
}

/// The status a served CRD has: names accepted, established.
pub fn set_status(crd: &mut Value, now: &str) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    // Conditions that stay True keep the time they became True.
    let since = |t: &str| {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| s(c, &["type"]) == Some(t) && s(c, &["status"]) == Some("True"))
            .and_then(|c| s(c, &["lastTransitionTime"]))
            .unwrap_or(now)
            .to_string()
    };
    let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": since(t), "reason": reason, "message": message});
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_crds_give_their_kinds() {
        for crd in berth_api::crds::all() {
            let v = serde_json::to_value(&crd).expect("json");
            assert!(validate(&v).is_empty(), "{:?}", validate(&v));
            let kinds = kinds_of(&v);
            assert_eq!(kinds.len(), 1);
            assert!(kinds[0].status_subresource);
            assert!(kinds[0].schema.is_some());
        }
        let placement = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Placement").expect("crd");
        let k = kinds_of(&serde_json::to_value(&placement).expect("json")).remove(0);
        assert!(k.selectable("spec.agent") && k.selectable("metadata.namespace") && !k.selectable("spec.image"));
        assert_eq!(k.key(Some("default"), "p1"), "/registry/berth.dev/placements/default/p1");
    }

    #[test]
    fn a_crd_with_a_wrong_name_is_invalid() {
        let v = json!({"metadata": {"name": "x"}, "spec": {"group": "g.io", "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        let fields: Vec<_> = validate(&v).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["metadata.name"]);
    }
}
