//! The Kubernetes kinds Berth serves itself: `Namespace`, `Event`,
//! `Secret`, `coordination.k8s.io/v1 Lease` and
//! `apiextensions.k8s.io/v1 CustomResourceDefinition`.

use super::{Column, Kind};
use crate::jsonpath::JsonPath;

fn col(name: &str, type_: &str, path: &str) -> Column {
    Column {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        path: JsonPath::parse(path).unwrap_or_else(|_| JsonPath::parse(".missing").expect("valid path")),
    }
}

fn age() -> Column {
    col("Age", "date", ".metadata.creationTimestamp")
}

#[allow(clippy::too_many_arguments)]
fn kind(
    group: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    namespaced: bool,
    columns: Vec<Column>,
    fields: &[&str],
) -> Kind {
    Kind {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        namespaced,
        schema: None,
        columns,
        status_subresource: false,
        selectable_fields: fields.iter().map(|s| s.to_string()).collect(),
        builtin: true,
        preferred: true,
    }
}

pub const CRD_GROUP: &str = "apiextensions.k8s.io";
pub const CRD_PLURAL: &str = "customresourcedefinitions";

pub fn kinds() -> Vec<Kind> {
    let mut crd = kind(
        CRD_GROUP,
        "CustomResourceDefinition",
        CRD_PLURAL,
        &["crd", "crds"],
        false,
        vec![col("Created At", "string", ".metadata.creationTimestamp")],
        &[],
    );
    crd.status_subresource = true;
    crd.categories = vec!["api-extensions".into()];
    let mut namespace = kind(
        "",
        "Namespace",
        "namespaces",
        &["ns"],
        false,
        vec![col("Status", "string", ".status.phase"), age()],
        &["status.phase"],
    );
    namespace.status_subresource = true;
    vec![
        namespace,
        kind(
            "",
            "Event",
            "events",
            &["ev"],
            true,
            vec![
                col("Last Seen", "date", ".lastTimestamp"),
                col("Type", "string", ".type"),
                col("Reason", "string", ".reason"),
                col("Object", "string", ".involvedObject.name"),
                col("Message", "string", ".message"),
            ],
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
        ),
        kind("", "Secret", "secrets", &[], true, vec![col("Type", "string", ".type"), age()], &["type"]),
        kind(
            "coordination.k8s.io",
            "Lease",
            "leases",
            &[],
            true,
            vec![col("Holder", "string", ".spec.holderIdentity"), age()],
            &[],
        ),
        crd,
    ]
}
