//! What exists before the first request: the kinds of stored CRDs, the
//! CRDs the server was started with (created or updated), and the system
//! namespaces. Returns the revision the stored CRDs were read at, from
//! which `crd_sync` follows them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

use super::params::Params;
use super::update::{self, Target};
use super::{App, create, hooks, managed, object};
use crate::error::{Error, Result};
use crate::registry::builtin::{CRD_GROUP, CRD_PLURAL};
use crate::storage::Storage;

pub async fn run<S: Storage>(app: &App<S>, crds: Vec<CustomResourceDefinition>) -> Result<u64> {
    let crd_kind = app
        .registry
        .lookup(CRD_GROUP, "v1", CRD_PLURAL)
        .ok_or_else(|| Error::Internal("the CustomResourceDefinition kind is not registered".into()))?;
    let stored = app.store.range(&crd_kind.prefix(None), None, 0, 0).await?;
    for kv in &stored.kvs {
        hooks::register(app, &object::decode(&crd_kind, kv)?);
    }
    let params = Params::default();
    for crd in crds {
        let given =
            serde_json::to_value(&crd).map_err(|e| Error::Internal(format!("a CRD does not serialize: {e}")))?;
        let name = object::name(&given).unwrap_or_default().to_string();
        let created = app.store.get(&crd_kind.key(None, &name)).await?.is_none() && {
            let mut fresh = given.clone();
            managed::record(&crd_kind, false, managed::SERVER, &json!({"metadata": {}}), &mut fresh)?;
            match create::create(app, &crd_kind, None, fresh, &params).await {
                Ok(_) => true,
                // Another replica on the same store created it first.
                Err(Error::AlreadyExists(_)) => false,
                Err(e) => return Err(e),
            }
        };
        if !created {
            let t = Target {
                kind: &crd_kind,
                namespace: None,
                name: &name,
                status: false,
                params: &params,
                finalizers_only: None,
            };
            update::write(app, &t, |current| {
                let mut desired = given.clone();
                managed::record(&crd_kind, false, managed::SERVER, current, &mut desired)?;
                Ok((desired, None))
            })
            .await?;
        }
    }
    let ns_kind = app
        .registry
        .lookup("", "v1", "namespaces")
        .ok_or_else(|| Error::Internal("the Namespace kind is not registered".into()))?;
    for ns in hooks::SYSTEM_NAMESPACES {
        if app.store.get(&create::namespace_key(ns)).await?.is_none() {
            let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            managed::record(&ns_kind, false, managed::SERVER, &json!({"metadata": {}}), &mut obj)?;
            match create::create(app, &ns_kind, None, obj, &params).await {
                Ok(_) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(stored.revision)
}
