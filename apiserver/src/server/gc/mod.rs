//! The garbage collector: deletes dependents whose owners are gone and
//! carries out `Foreground` and `Orphan` deletions (the `foregroundDeletion`
//! and `orphan` finalizers), after Kubernetes' garbage collector — but in
//! the server, over every kind at once.
//!
//! It reads everything from the watch cache at start (so an owner deleted
//! while the server was down is noticed), then follows the cache's changes
//! (the one storage watch the server has), keeping a [`graph::Graph`] of
//! owners and dependents. Each event marks the objects whose fate it may
//! change; [`decide::decide`] says what to do about each, and the actions
//! are writes through the same paths as a client's (compare-and-swap, with
//! the object's revision as precondition where it matters). A failed action
//! is retried on the next tick; a reset cache starts it over.

mod decide;
mod graph;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::Value;

pub use graph::{FOREGROUND, ORPHAN};

use super::cache::{Change, Entry, ROOT};
use super::delete::{self, Preconditions};
use super::params::Params;
use super::update::{self, Target};
use super::{App, hooks, object};
use crate::error::{Error, Result};
use crate::registry::Kind;
use crate::storage::Storage;
use decide::{Action, decide};
use graph::{Graph, Node};

/// How long a failed action waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Actions in flight at once.
const CONCURRENCY: usize = 16;

pub async fn run<S: Storage>(app: Arc<App<S>>) {
    let mut stopping = app.stopping.clone();
    loop {
        tokio::select! {
            result = collect(&app) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "garbage collector: starting over");
                }
            }
            _ = stopping.wait_for(|s| *s) => return,
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn collect<S: Storage>(app: &App<S>) -> Result<()> {
    let (entries, _, mut changes) = app.cache.snapshot_and_watch(ROOT)?;
    let mut graph = Graph::default();
    let mut dirty = BTreeSet::new();
    for e in &entries {
        if let Some(node) = node_of(app, e) {
            dirty.extend(graph.put(node));
        }
    }
    let ended = || Error::Internal("the watch cache was reset".into());
    let mut retry = BTreeSet::new();
    let mut ticks = tokio::time::interval(RETRY);
    loop {
        // Catch up with what is already there before deciding, so decisions
        // are made on the newest state known.
        while let Some(change) = changes.next().now_or_never() {
            apply(app, &mut graph, &mut dirty, &*change.ok_or_else(ended)??);
        }
        if !dirty.is_empty() {
            let actions: Vec<(String, Action)> = std::mem::take(&mut dirty)
                .into_iter()
                .flat_map(|uid| decide(&graph, &uid).into_iter().map(move |a| (uid.clone(), a)))
                .collect();
            let failed: Vec<String> = futures::stream::iter(actions)
                .map(|(uid, action)| async move { act(app, &action).await.err().map(|e| (uid, action, e)) })
                .buffer_unordered(CONCURRENCY)
                .filter_map(|r| async move { r })
                .map(|(uid, action, e)| {
                    tracing::warn!(error = %e, ?action, "garbage collector: action failed; will retry");
                    uid
                })
                .collect()
                .await;
            retry.extend(failed);
            continue;
        }
        tokio::select! {
            change = changes.next() => apply(app, &mut graph, &mut dirty, &*change.ok_or_else(ended)??),
            _ = ticks.tick() => dirty.append(&mut retry),
        }
    }
}

fn apply<S: Storage>(app: &App<S>, graph: &mut Graph, dirty: &mut BTreeSet<String>, change: &Change) {
    match change {
        Change::Put { entry, .. } => match node_of(app, entry) {
            Some(node) => dirty.extend(graph.put(node)),
            None => dirty.extend(graph.remove(&entry.key)),
        },
        Change::Delete { prev, .. } => dirty.extend(graph.remove(&prev.key)),
    }
}

/// Where a storage key points: its kind, namespace and name.
struct Located {
    kind: Arc<Kind>,
    namespace: Option<String>,
    name: String,
}

fn locate<S: Storage>(app: &App<S>, key: &str) -> Option<Located> {
    let rest = key.strip_prefix(ROOT)?;
    let segs: Vec<&str> = rest.split('/').collect();
    let (dir, plural) = (segs.first()?, segs.get(1)?);
    let group = if *dir == "core" { "" } else { dir };
    let kind = app.registry.by_resource(group, plural)?;
    match (kind.namespaced, &segs[2..]) {
        (true, [ns, name]) => Some(Located { kind, namespace: Some(ns.to_string()), name: name.to_string() }),
        (false, [name]) => Some(Located { kind, namespace: None, name: name.to_string() }),
        _ => None,
    }
}

fn node_of<S: Storage>(app: &App<S>, entry: &Entry) -> Option<Node> {
    let at = locate(app, &entry.key)?;
    Node::from_object(&entry.key, entry.revision, &at.kind.group, &at.kind.kind, &entry.value)
}

/// Carries out one action. An object that changed or went meanwhile is
/// not an error: its own event brings it back to a decision.
async fn act<S: Storage>(app: &App<S>, action: &Action) -> Result<()> {
    let key = match action {
        Action::Delete { key, .. } | Action::RemoveOwners { key, .. } | Action::RemoveFinalizer { key, .. } => key,
    };
    let Some(at) = locate(app, key) else { return Ok(()) };
    let params = Params::default();
    let target = Target {
        kind: &at.kind,
        namespace: at.namespace.as_deref(),
        name: &at.name,
        status: false,
        params: &params,
        finalizers_only: None,
    };
    let done = match action {
        Action::Delete { uid, revision, policy, .. } => {
            if hooks::before_delete(&at.kind, &at.name).is_err() {
                return Ok(());
            }
            tracing::info!(object = %key, ?policy, "garbage collector: deleting a dependent whose owners are gone");
            let pre = Preconditions {
                uid: Some(uid.clone()),
                resource_version: Some(*revision),
                policy: Some(*policy),
                dry_run: false,
            };
            delete::delete_one(app, &at.kind, key, &at.name, &pre, false).await.map(drop)
        }
        Action::RemoveOwners { owners, .. } => update::write(app, &target, |current| {
            let mut next = current.clone();
            let m = object::meta_mut(&mut next);
            let refs = m.get("ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
            let kept: Vec<Value> = refs
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str).is_none_or(|u| !owners.iter().any(|o| o == u)))
                .collect();
            if kept.is_empty() {
                m.remove("ownerReferences");
            } else {
                m.insert("ownerReferences".into(), Value::Array(kept));
            }
            Ok((next, None))
        })
        .await
        .map(drop),
        Action::RemoveFinalizer { finalizer, .. } => update::write(app, &target, |current| {
            let mut next = current.clone();
            let kept: Vec<String> = object::finalizer_names(current).into_iter().filter(|f| f != finalizer).collect();
            let m = object::meta_mut(&mut next);
            if kept.is_empty() {
                m.remove("finalizers");
            } else {
                m.insert("finalizers".into(), serde_json::json!(kept));
            }
            Ok((next, None))
        })
        .await
        .map(drop),
    };
    match done {
        Ok(()) | Err(Error::NotFound(_) | Error::Conflict(..)) => Ok(()),
        Err(e) => Err(e),
    }
}
