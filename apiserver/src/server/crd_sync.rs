//! Keeps the registry in step with the stored CRDs when other API servers
//! share the store (several replicas on one etcd): a CRD created, changed
//! or deleted through another replica is served, changed or dropped here
//! too. It follows a watch on the CRD prefix from the revision bootstrap
//! read the CRDs at; when that history is compacted away it re-reads them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::{App, hooks, object};
use crate::registry::Kind;
use crate::registry::builtin::{CRD_GROUP, CRD_PLURAL};
use crate::storage::{Event, Storage, StorageError};

/// How long to wait before watching again after the store failed.
const RETRY: Duration = Duration::from_secs(1);

pub async fn run<S: Storage>(app: Arc<App<S>>, mut from: u64) {
    let Some(crd_kind) = app.registry.lookup(CRD_GROUP, "v1", CRD_PLURAL) else { return };
    let prefix = crd_kind.prefix(None);
    loop {
        let mut events = match app.store.watch(&prefix, from).await {
            Ok(events) => events,
            Err(StorageError::Compacted { .. }) => {
                from = relist(&app, &crd_kind).await.unwrap_or(from);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching CRDs");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) => {
                    from = ev.revision();
                    apply(&app, &crd_kind, ev);
                }
                Err(StorageError::Compacted { .. }) => {
                    from = relist(&app, &crd_kind).await.unwrap_or(from);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching CRDs");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

fn apply<S: Storage>(app: &App<S>, crd_kind: &Kind, ev: Event) {
    match ev {
        Event::Put { kv, .. } => match object::decode(crd_kind, &kv) {
            Ok(obj) => hooks::register(app, &obj),
            Err(e) => tracing::warn!(error = %e, key = %kv.key, "a stored CRD does not decode"),
        },
        Event::Delete { prev, .. } => {
            let Ok(obj) = object::decode(crd_kind, &prev) else { return };
            let (group, plural) = group_plural(&obj);
            app.registry.remove_crd(group, plural);
        }
    }
}

fn group_plural(obj: &Value) -> (&str, &str) {
    let group = obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let plural = obj.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default();
    (group, plural)
}

/// Registers every stored CRD and drops the kinds of those gone; returns
/// the revision read at.
async fn relist<S: Storage>(app: &App<S>, crd_kind: &Kind) -> Option<u64> {
    let range = match app.store.range(&crd_kind.prefix(None), None, 0, 0).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "re-reading CRDs");
            tokio::time::sleep(RETRY).await;
            return None;
        }
    };
    let mut stored = BTreeSet::new();
    for kv in &range.kvs {
        if let Ok(obj) = object::decode(crd_kind, kv) {
            let (g, p) = group_plural(&obj);
            stored.insert((g.to_string(), p.to_string()));
            hooks::register(app, &obj);
        }
    }
    for k in app.registry.all().iter().filter(|k| !k.builtin) {
        if !stored.contains(&(k.group.clone(), k.plural.clone())) {
            app.registry.remove_crd(&k.group, &k.plural);
        }
    }
    Some(range.revision)
}
