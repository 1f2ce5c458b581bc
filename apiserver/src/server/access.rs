//! Authentication and authorization of each request: the bearer token
//! names the user (401 without a valid one), and `auth::authz` decides
//! (403 with Kubernetes' message, before anything is read or written).

use axum::http::{HeaderMap, Method, header};
use serde_json::Value;

use super::App;
use crate::auth::User;
use crate::auth::authz::{self, Attributes, Facts, ResourceAttributes};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// The user a request is made by. With no token file configured every
/// request is an admin's; `anonymous_ok` lets health checks through.
pub fn authenticate<S>(app: &App<S>, headers: &HeaderMap, anonymous_ok: bool) -> Result<User> {
    let Some(tokens) = &app.opts.tokens else {
        return Ok(User::unchecked_admin());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match bearer.and_then(|t| tokens.authenticate(t)) {
        Some(user) => Ok(user.clone()),
        None if anonymous_ok => Ok(User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        }),
        None => Err(Error::Unauthorized("Unauthorized".into())),
    }
}

/// The Kubernetes verb of a resource request.
pub fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// `metadata.name` of a request body (what a create names), in any media
/// type the server reads (JSON, YAML, Kubernetes protobuf).
pub fn body_name(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let v = super::negotiate::decode_body(headers, body).ok()?;
    v.get("metadata")?.get("name")?.as_str().filter(|n| !n.is_empty()).map(String::from)
}

/// Refuses with 403 what `user` may not do.
pub async fn authorize<S: Storage>(app: &App<S>, user: &User, attrs: Attributes) -> Result<()> {
    if app.opts.tokens.is_none() || authz::allowed(user, &attrs, &StoreFacts(app)).await {
        return Ok(());
    }
    tracing::info!(user = %user.name, reason = %authz::denial_reason(user, &attrs), "forbidden");
    let message = authz::forbidden_message(user, &attrs);
    Err(match attrs {
        Attributes::Resource(a) => Error::Denied(
            crate::error::Subject { group: a.group, kind: a.resource, name: a.name.unwrap_or_default() },
            message,
        ),
        Attributes::NonResource { .. } => Error::Forbidden(message),
    })
}

/// Resource attributes of a request.
pub fn resource_attributes(verb: &str, rp: &super::route::ResourcePath, name: Option<String>) -> Attributes {
    Attributes::Resource(ResourceAttributes {
        verb: verb.into(),
        group: rp.group.clone(),
        resource: rp.plural.clone(),
        subresource: rp.subresource.clone(),
        namespace: rp.namespace.clone(),
        name,
    })
}

/// The facts the agent's conditional rules read, from the store.
pub struct StoreFacts<'a, S>(pub &'a App<S>);

impl<S: Storage> StoreFacts<'_, S> {
    fn placements(&self) -> Option<std::sync::Arc<crate::registry::Kind>> {
        self.0.registry.all().into_iter().find(|k| k.group == "berth.dev" && k.plural == "placements")
    }
}

fn spec_str<'v>(obj: &'v Value, field: &str) -> Option<&'v str> {
    obj.get("spec")?.get(field)?.as_str()
}

impl<S: Storage> Facts for StoreFacts<'_, S> {
    async fn placement_agent(&self, namespace: &str, name: &str) -> Option<String> {
        let kind = self.placements()?;
        let kv = self.0.store.get(&kind.key(Some(namespace), name)).await.ok()??;
        let obj: Value = serde_json::from_slice(&kv.value).ok()?;
        spec_str(&obj, "agent").map(String::from)
    }

    async fn secret_used_by(&self, namespace: &str, secret: &str, agent: &str) -> bool {
        let Some(kind) = self.placements() else { return false };
        let Ok(range) = self.0.store.range(&kind.prefix(Some(namespace)), None, 0, 0).await else {
            return false;
        };
        range
            .kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
            .any(|p| spec_str(&p, "agent") == Some(agent) && spec_str(&p, "imagePullSecret") == Some(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_kubernetes() {
        assert_eq!(verb(&Method::GET, true, false), "get");
        assert_eq!(verb(&Method::GET, false, false), "list");
        assert_eq!(verb(&Method::GET, false, true), "watch");
        assert_eq!(verb(&Method::GET, true, true), "watch");
        assert_eq!(verb(&Method::DELETE, true, false), "delete");
        assert_eq!(verb(&Method::DELETE, false, false), "deletecollection");
    }

    #[test]
    fn a_create_is_named_by_its_body() {
        let mut headers = HeaderMap::new();
        assert_eq!(body_name(&headers, br#"{"metadata":{"name":"a1"}}"#).as_deref(), Some("a1"));
        assert_eq!(body_name(&headers, br#"{"metadata":{"generateName":"a-"}}"#), None);
        assert_eq!(body_name(&headers, b"not json"), None);
        headers.insert(header::CONTENT_TYPE, "application/yaml".parse().expect("header"));
        assert_eq!(body_name(&headers, b"metadata: {name: a2}").as_deref(), Some("a2"));
    }
}
