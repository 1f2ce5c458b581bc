//! Every Berth CRD, as objects and as the YAML kept in `manifests/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{Agent, Cluster, Framework, Job, Offer, Placement};

/// The CRDs of all six kinds, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![Cluster::crd(), Agent::crd(), Framework::crd(), Job::crd(), Offer::crd(), Placement::crd()]
}

/// One CRD as YAML, as written to `manifests/crds/<name>.yaml`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_saphyr::to_string(crd).expect("a CRD always serializes")
}

/// `(file name, YAML)` for each CRD.
pub fn files() -> Vec<(String, String)> {
    all().iter().map(|crd| (format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd")), to_yaml(crd))).collect()
}

/// All CRDs as one multi-document YAML stream (what `berth crds` prints).
pub fn to_yaml_stream() -> String {
    all().iter().map(|c| format!("---\n{}", to_yaml(c))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_crds_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds");
        for (name, yaml) in files() {
            let path = dir.join(&name);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(on_disk == yaml, "{} is stale or missing: run `make crds` and commit the result", path.display());
        }
    }

    #[test]
    fn every_kind_has_status_and_printer_columns() {
        for crd in all() {
            let v = &crd.spec.versions[0];
            assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{:?}", crd.metadata.name);
            assert!(v.additional_printer_columns.as_ref().is_some_and(|c| !c.is_empty()));
        }
    }

    #[test]
    fn placements_are_selectable_by_agent() {
        let crd = Placement::crd();
        let fields = crd.spec.versions[0].selectable_fields.clone().unwrap_or_default();
        assert!(fields.iter().any(|f| f.json_path == ".spec.agent"));
    }
}
