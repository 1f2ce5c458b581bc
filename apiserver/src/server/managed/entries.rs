//! `metadata.managedFields`: its entries decoded into one field set per
//! manager, and encoded back in Kubernetes' order.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fieldset::Set;

/// Who owns a set: entries with the same id merge. Appliers are one
/// manager whatever API version they used.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id {
    pub manager: String,
    /// `Apply` or `Update` (anything else only ever comes from a client).
    pub operation: String,
    pub subresource: String,
    /// Empty for `Apply`.
    pub api_version: String,
}

impl Id {
    pub fn new(manager: &str, apply: bool, subresource: &str, api_version: &str) -> Id {
        Id {
            manager: manager.into(),
            operation: if apply { "Apply" } else { "Update" }.into(),
            subresource: subresource.into(),
            api_version: if apply { String::new() } else { api_version.into() },
        }
    }

    pub fn is_apply(&self) -> bool {
        self.operation == "Apply"
    }

    /// As Kubernetes names a manager in a conflict:
    /// `"kubectl-edit" with subresource "status" using berth.dev/v1alpha1`.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One manager's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub set: Set,
    pub api_version: String,
    pub time: Option<String>,
}

pub type Managers = BTreeMap<Id, Entry>;

/// Update managers kept apart; older ones merge into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;

/// Decodes a `managedFields` list; entries of one id merge.
pub fn decode(list: &Value) -> Result<Managers, String> {
    let items = list.as_array().ok_or("managedFields must be a list")?;
    let mut out = Managers::new();
    for (i, item) in items.iter().enumerate() {
        let s = |k: &str| -> Result<String, String> {
            match item.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(v)) => Ok(v.clone()),
                Some(_) => Err(format!("managedFields[{i}].{k} must be a string")),
            }
        };
        let fields_type = s("fieldsType")?;
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            return Err(format!("managedFields[{i}].fieldsType {fields_type:?} is not FieldsV1"));
        }
        let set = match item.get("fieldsV1") {
            None | Some(Value::Null) => Set::default(),
            Some(v) => Set::from_fields_v1(v).map_err(|e| format!("managedFields[{i}].fieldsV1: {e}"))?,
        };
        let operation = s("operation")?;
        let api_version = s("apiVersion")?;
        let id = Id {
            manager: s("manager")?,
            subresource: s("subresource")?,
            api_version: if operation == "Apply" { String::new() } else { api_version.clone() },
            operation,
        };
        let time = Some(s("time")?).filter(|t| !t.is_empty());
        let e = out.entry(id).or_default();
        e.set = e.set.union(&set);
        e.api_version = api_version;
        e.time = e.time.clone().max(time);
    }
    Ok(out)
}

/// The managers of a stored object (none if it has none or they are unreadable).
pub fn of_object(obj: &Value) -> Managers {
    obj.pointer("/metadata/managedFields").and_then(|l| decode(l).ok()).unwrap_or_default()
}

/// Drops empty sets and merges the oldest update managers past the cap.
pub fn tidy(mut m: Managers) -> Managers {
    m.retain(|_, e| !e.set.is_empty());
    let mut updates: Vec<(Id, Option<String>)> =
        m.iter().filter(|(id, _)| !id.is_apply()).map(|(id, e)| (id.clone(), e.time.clone())).collect();
    if updates.len() > MAX_UPDATE_MANAGERS {
        updates.sort_by(|a, b| a.1.cmp(&b.1));
        let surplus = updates.len() - MAX_UPDATE_MANAGERS + 1;
        let mut ancient = Entry::default();
        for (id, _) in updates.into_iter().take(surplus) {
            if let Some(e) = m.remove(&id) {
                ancient.set = ancient.set.union(&e.set);
                ancient.api_version = e.api_version;
                ancient.time = ancient.time.max(e.time);
            }
        }
        let id = Id::new("ancient-changes", false, "", &ancient.api_version);
        m.insert(id, ancient);
    }
    m
}

/// The `managedFields` list: appliers first, then by time, manager, version, subresource.
pub fn encode(m: &Managers) -> Value {
    let mut entries: Vec<(&Id, &Entry)> = m.iter().filter(|(_, e)| !e.set.is_empty()).collect();
    entries.sort_by(|(a, ea), (b, eb)| {
        (&a.operation, &ea.time, &a.manager, &ea.api_version, &a.subresource).cmp(&(
            &b.operation,
            &eb.time,
            &b.manager,
            &eb.api_version,
            &b.subresource,
        ))
    });
    let list = entries.into_iter().map(|(id, e)| {
        let mut v = json!({
            "manager": id.manager,
            "operation": id.operation,
            "apiVersion": e.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": e.set.to_fields_v1(),
        });
        if let Some(t) = &e.time {
            v["time"] = json!(t);
        }
        if !id.subresource.is_empty() {
            v["subresource"] = json!(id.subresource);
        }
        v
    });
    Value::Array(list.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_sort_appliers_first() {
        let list = json!([
            {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2024-02-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
        ]);
        let m = decode(&list).expect("decode");
        let back = encode(&m);
        assert_eq!(back[0]["manager"], "kubectl");
        assert_eq!(back[1], list[0]);
    }

    #[test]
    fn an_empty_entry_decodes_and_is_dropped() {
        let m = decode(&json!([{}])).expect("an empty entry is readable");
        assert_eq!(m.len(), 1);
        assert_eq!(encode(&tidy(m)), json!([]));
        assert!(decode(&json!([{"fieldsType": "FieldsV2"}])).is_err());
        assert!(decode(&json!([{"fieldsV1": {"bad": {}}}])).is_err());
    }

    #[test]
    fn update_managers_are_capped() {
        let mut m = Managers::new();
        for i in 0..12 {
            let mut set = Set::default();
            set.insert(&[super::super::fieldset::Element::Field(format!("f{i}"))]);
            let id = Id::new(&format!("m{i:02}"), false, "", "v1");
            m.insert(id, Entry { set, api_version: "v1".into(), time: Some(format!("2024-01-01T00:00:{i:02}Z")) });
        }
        let m = tidy(m);
        assert_eq!(m.len(), 10);
        let ancient = m.iter().find(|(id, _)| id.manager == "ancient-changes").expect("ancient").1;
        assert_eq!(ancient.set.paths().len(), 3);
        assert_eq!(Id::new("x", false, "status", "v1").describe(), "\"x\" with subresource \"status\" using v1");
    }
}
