//! The self-reviews `kubectl auth` asks for: `whoami`
//! (authentication.k8s.io/v1 SelfSubjectReview), `can-i`
//! (authorization.k8s.io/v1 SelfSubjectAccessReview) and `can-i --list`
//! (SelfSubjectRulesReview). Each is a create that stores nothing.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::access::StoreFacts;
use super::route::ResourcePath;
use super::{App, negotiate};
use crate::auth::authz::{self, Attributes, ResourceAttributes};
use crate::auth::{User, rules};
use crate::error::{Error, Result};
use crate::storage::Storage;

pub const AUTHENTICATION: &str = "authentication.k8s.io";
pub const AUTHORIZATION: &str = "authorization.k8s.io";

/// (group, version, resource, kind) of each review, for discovery.
pub const RESOURCES: [(&str, &str, &str, &str); 3] = [
    (AUTHENTICATION, "v1", "selfsubjectreviews", "SelfSubjectReview"),
    (AUTHORIZATION, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    (AUTHORIZATION, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
];

/// Whether `rp` names one of the reviews.
pub fn is_review(rp: &ResourcePath) -> bool {
    RESOURCES.iter().any(|(g, v, r, _)| rp.group == *g && rp.version == *v && rp.plural == *r)
}

fn str_at<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn opt_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

pub async fn run<S: Storage>(
    app: &App<S>,
    user: &User,
    method: &Method,
    headers: &HeaderMap,
    rp: &ResourcePath,
    body: &[u8],
) -> Result<Response> {
    if *method != Method::POST || rp.name.is_some() || rp.namespace.is_some() {
        return Err(Error::MethodNotAllowed(format!("{method} is not allowed on {}", rp.plural)));
    }
    let req = negotiate::decode_body(headers, body)?;
    let spec = req.get("spec").cloned().unwrap_or(Value::Null);
    let (kind, status) = match rp.plural.as_str() {
        "selfsubjectreviews" => (
            "SelfSubjectReview",
            json!({"userInfo": {
                "username": user.name, "uid": user.uid, "groups": user.reported_groups(),
            }}),
        ),
        "selfsubjectaccessreviews" => ("SelfSubjectAccessReview", access(app, user, &spec).await?),
        _ => ("SelfSubjectRulesReview", rules_review(user, &spec)?),
    };
    let out = json!({
        "kind": kind,
        "apiVersion": format!("{}/{}", rp.group, rp.version),
        "metadata": {"creationTimestamp": Value::Null},
        "spec": spec,
        "status": status,
    });
    Ok(negotiate::json(StatusCode::CREATED, &out, false))
}

async fn access<S: Storage>(app: &App<S>, user: &User, spec: &Value) -> Result<Value> {
    let attrs = if let Some(r) = spec.get("resourceAttributes") {
        Attributes::Resource(ResourceAttributes {
            verb: str_at(r, "verb").into(),
            group: str_at(r, "group").into(),
            resource: str_at(r, "resource").into(),
            subresource: opt_at(r, "subresource"),
            namespace: opt_at(r, "namespace"),
            name: opt_at(r, "name"),
        })
    } else if let Some(n) = spec.get("nonResourceAttributes") {
        Attributes::NonResource { verb: str_at(n, "verb").into(), path: str_at(n, "path").into() }
    } else {
        return Err(Error::Invalid(
            crate::error::Subject {
                group: AUTHORIZATION.into(),
                kind: "SelfSubjectAccessReview".into(),
                name: String::new(),
            },
            vec![crate::error::Cause {
                reason: "FieldValueRequired",
                field: "spec.resourceAttributes".into(),
                message: "exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            }],
        ));
    };
    let allowed = app.opts.tokens.is_none() || authz::allowed(user, &attrs, &StoreFacts(app)).await;
    let mut status = json!({"allowed": allowed});
    if !allowed {
        status["reason"] = json!(authz::denial_reason(user, &attrs));
    }
    Ok(status)
}

fn rules_review(user: &User, spec: &Value) -> Result<Value> {
    let ns = opt_at(spec, "namespace");
    let all = rules::rules(user);
    let applies = |r: &&rules::Rule| r.namespace.is_none() || r.namespace == ns;
    let resource_rules: Vec<Value> = all
        .iter()
        .filter(applies)
        .filter(|r| r.condition.is_none())
        .map(|r| json!({"verbs": r.verbs, "apiGroups": r.groups, "resources": r.resources, "resourceNames": r.names}))
        .collect();
    let incomplete = all.iter().filter(applies).any(|r| r.condition.is_some());
    let mut non_resource = vec![json!({"verbs": ["get"], "nonResourceURLs": rules::PUBLIC_PATHS})];
    if user.in_group(rules::ADMIN_GROUP) {
        non_resource.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    Ok(json!({"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": incomplete}))
}
