//! Discovery: `/version`, `/api`, `/apis`, `/apis/{group}` and the
//! resource lists of each group/version (with `x/status` subresources).
//! Aggregated discovery is not offered; clients fall back to these.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::negotiate;
use super::review;
use super::{App, no_route};
use crate::error::Result;
use crate::registry::Kind;

/// The Kubernetes version Berth's API corresponds to.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";

fn ok(v: &Value) -> Response {
    negotiate::json(StatusCode::OK, v, false)
}

pub fn version() -> Response {
    ok(&json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0+berth-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "none (berth is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    }))
}

/// Every served group with its versions: the registry's, and the reviews'.
fn all_groups<S>(app: &App<S>) -> Vec<(String, Vec<String>)> {
    let mut groups = app.registry.groups();
    for (g, v, _, _) in review::RESOURCES {
        if !groups.iter().any(|(name, _)| name == g) {
            groups.push((g.to_string(), vec![v.to_string()]));
        }
    }
    groups
}

pub fn root<S>(app: &App<S>) -> Response {
    let mut paths = vec!["/api".to_string(), "/api/v1".into(), "/apis".into()];
    for (g, versions) in all_groups(app) {
        paths.push(format!("/apis/{g}"));
        paths.extend(versions.iter().map(|v| format!("/apis/{g}/{v}")));
    }
    paths.extend(["/healthz", "/livez", "/openapi/v3", "/readyz", "/version"].map(String::from));
    ok(&json!({ "paths": paths }))
}

pub fn api() -> Response {
    ok(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }))
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

pub fn apis<S>(app: &App<S>) -> Response {
    let groups: Vec<Value> = all_groups(app).iter().map(|(g, vs)| group_json(g, vs)).collect();
    ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

pub fn group<S>(app: &App<S>, name: &str) -> Result<Response> {
    let groups = all_groups(app);
    let (g, vs) = groups.iter().find(|(g, _)| g == name).ok_or_else(no_route)?;
    let mut body = group_json(g, vs);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(ok(&body))
}

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn resource_json(k: &Kind) -> Vec<Value> {
    let mut main = json!({
        "name": k.plural,
        "singularName": k.singular,
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": VERBS,
    });
    if !k.short_names.is_empty() {
        main["shortNames"] = json!(k.short_names);
    }
    if !k.categories.is_empty() {
        main["categories"] = json!(k.categories);
    }
    let mut out = vec![main];
    if k.status_subresource {
        out.push(json!({
            "name": format!("{}/status", k.plural),
            "singularName": "",
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

pub fn resources<S>(app: &App<S>, group: &str, version: &str) -> Result<Response> {
    let kinds = app.registry.of(group, version);
    let reviews: Vec<Value> = review::RESOURCES
        .iter()
        .filter(|(g, v, _, _)| *g == group && *v == version)
        .map(|(_, _, plural, kind)| json!({"name": plural, "singularName": "", "namespaced": false, "kind": kind, "verbs": ["create"]}))
        .collect();
    if kinds.is_empty() && reviews.is_empty() {
        return Err(no_route());
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let mut resources: Vec<Value> = kinds.iter().flat_map(|k| resource_json(k)).collect();
    resources.extend(reviews);
    Ok(ok(&json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})))
}
