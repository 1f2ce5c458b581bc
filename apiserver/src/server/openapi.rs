//! OpenAPI v3: the root index (`/openapi/v3`) and one document per
//! group/version, with a schema per kind (from its CRD, named the way
//! Kubernetes names them and tagged `x-kubernetes-group-version-kind`) and
//! the paths with their operations, so `kubectl explain` works and
//! `kubectl apply` sees that the server validates fields itself
//! (`fieldValidation` on PATCH).

use std::hash::{Hash, Hasher};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::discovery::{KUBE_MAJOR, KUBE_MINOR};
use super::{App, negotiate, no_route};
use crate::error::Result;
use crate::registry::Kind;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

pub fn root<S>(app: &App<S>) -> Response {
    let mut gvs: Vec<(String, String)> =
        app.registry.all().iter().map(|k| (k.group.clone(), k.version.clone())).collect();
    gvs.dedup();
    let mut paths = Map::new();
    for (g, v) in gvs {
        let doc = build(&app.registry.of(&g, &v));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut h);
        let p = gv_path(&g, &v);
        let url = format!("/openapi/v3/{p}?hash={:016X}", h.finish());
        paths.insert(p, json!({"serverRelativeURL": url}));
    }
    negotiate::json(StatusCode::OK, &json!({"paths": paths}), false)
}

pub fn document<S>(app: &App<S>, path: &str) -> Result<Response> {
    let segs: Vec<&str> = path.split('/').collect();
    let (g, v) = match segs.as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return Err(no_route()),
    };
    let kinds = app.registry.of(&g, &v);
    if kinds.is_empty() {
        return Err(no_route());
    }
    Ok(negotiate::json(StatusCode::OK, &build(&kinds), false))
}

/// The schema name Kubernetes gives a kind: `dev.berth.v1alpha1.Job`, `io.k8s.api.core.v1.Namespace`.
pub fn definition_name(k: &Kind) -> String {
    if k.builtin {
        if k.group == "apiextensions.k8s.io" {
            return format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}", k.version, k.kind);
        }
        let short = if k.group.is_empty() { "core" } else { k.group.split('.').next().unwrap_or("core") };
        return format!("io.k8s.api.{short}.{}.{}", k.version, k.kind);
    }
    let reversed: Vec<&str> = k.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), k.version, k.kind)
}

fn gvk(k: &Kind, kind: &str) -> Value {
    json!({"group": k.group, "version": k.version, "kind": kind})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn kind_schema(k: &Kind) -> Value {
    let mut s =
        k.schema.clone().unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !s.get("properties").is_some_and(Value::is_object) {
        s["properties"] = json!({});
    }
    s["properties"]["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
    s["properties"]["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
    s["properties"]["metadata"] = json!({"allOf": [reference(&format!("{META}.ObjectMeta"))], "default": {},
        "description": "Standard object's metadata."});
    s["type"] = json!("object");
    s["x-kubernetes-group-version-kind"] = json!([gvk(k, &k.kind)]);
    s
}

fn list_schema(k: &Kind, item: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("{} is a list of {}", k.list_kind, k.kind),
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "items": {"type": "array", "items": reference(item)},
            "metadata": {"allOf": [reference(&format!("{META}.ListMeta"))], "default": {}},
        },
        "x-kubernetes-group-version-kind": [gvk(k, &k.list_kind)],
    })
}

fn query(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": ty, "uniqueItems": true}})
}

fn op(k: &Kind, action: &str, id: &str, schema: &str, body: Option<&[&str]>, extra: &[&str]) -> Value {
    let mut params: Vec<Value> = vec![query("pretty", "string")];
    params.extend(extra.iter().map(|p| query(p, if *p == "force" || *p == "watch" { "boolean" } else { "string" })));
    let mut o = json!({
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference(schema)}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(k, &k.kind),
    });
    if let Some(types) = body {
        let content: Map<String, Value> =
            types.iter().map(|t| (t.to_string(), json!({"schema": reference(schema)}))).collect();
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

fn path_params(namespaced: bool, named: bool) -> Value {
    let p =
        |n: &str| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}});
    let mut v = Vec::new();
    if named {
        v.push(p("name"));
    }
    if namespaced {
        v.push(p("namespace"));
    }
    Value::Array(v)
}

const WRITE: [&str; 3] = ["dryRun", "fieldManager", "fieldValidation"];
const PATCH_TYPES: [&str; 3] =
    ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];
const LIST: [&str; 9] = [
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

fn add_paths(paths: &mut Map<String, Value>, k: &Kind, name: &str, list: &str) {
    let base = format!("/{}", gv_path(&k.group, &k.version));
    let coll = if k.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", k.plural)
    } else {
        format!("{base}/{}", k.plural)
    };
    let id = |verb: &str| format!("{verb}{}{}", k.group.replace(['.', '-'], ""), k.kind);
    let patch_params: Vec<&str> = WRITE.iter().copied().chain(["force"]).collect();
    paths.insert(
        coll.clone(),
        json!({
            "get": op(k, "list", &id("list"), list, None, &LIST),
            "post": op(k, "post", &id("create"), name, Some(&["application/json", "application/yaml"]), &WRITE),
            "delete": op(k, "deletecollection", &id("deletecollection"), &format!("{META}.Status"), None, &LIST),
            "parameters": path_params(k.namespaced, false),
        }),
    );
    paths.insert(format!("{coll}/{{name}}"), json!({
        "get": op(k, "get", &id("read"), name, None, &[]),
        "put": op(k, "put", &id("replace"), name, Some(&["application/json", "application/yaml"]), &WRITE),
        "patch": op(k, "patch", &id("patch"), name, Some(&PATCH_TYPES), &patch_params),
        "delete": op(k, "delete", &id("delete"), name, None, &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
        "parameters": path_params(k.namespaced, true),
    }));
    if k.status_subresource {
        paths.insert(
            format!("{coll}/{{name}}/status"),
            json!({
                "get": op(k, "get", &id("readStatus"), name, None, &[]),
                "put": op(k, "put", &id("replaceStatus"), name, Some(&["application/json"]), &WRITE),
                "patch": op(k, "patch", &id("patchStatus"), name, Some(&PATCH_TYPES), &patch_params),
                "parameters": path_params(k.namespaced, true),
            }),
        );
    }
}

fn meta_schemas(schemas: &mut Map<String, Value>) {
    let s = |t: &str| json!({"type": t});
    let strings = json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}});
    schemas.insert(format!("{META}.ObjectMeta"), json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "properties": {
            "annotations": strings, "labels": strings,
            "creationTimestamp": {"type": "string", "format": "date-time"},
            "deletionTimestamp": {"type": "string", "format": "date-time"},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}},
            "generateName": s("string"), "generation": {"type": "integer", "format": "int64"},
            "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "name": s("string"), "namespace": s("string"),
            "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "resourceVersion": s("string"), "selfLink": s("string"), "uid": s("string"),
        },
    }));
    schemas.insert(
        format!("{META}.ListMeta"),
        json!({
            "type": "object",
            "properties": {"continue": s("string"), "remainingItemCount": {"type": "integer", "format": "int64"},
                "resourceVersion": s("string"), "selfLink": s("string")},
        }),
    );
    schemas.insert(
        format!("{META}.Status"),
        json!({
            "type": "object",
            "properties": {"apiVersion": s("string"), "code": {"type": "integer", "format": "int32"},
                "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "kind": s("string"), "message": s("string"), "reason": s("string"), "status": s("string")},
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
        }),
    );
}

/// The document of one group/version.
pub fn build(kinds: &[std::sync::Arc<Kind>]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    meta_schemas(&mut schemas);
    for k in kinds {
        let name = definition_name(k);
        let list = format!("{name}List");
        schemas.insert(name.clone(), kind_schema(k));
        schemas.insert(list.clone(), list_schema(k, &name));
        add_paths(&mut paths, k, &name, &list);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Berth", "version": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
