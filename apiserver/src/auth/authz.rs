//! The one place access is decided: a user, a verb and what it acts on in,
//! allowed or not out; and the message Kubernetes' RBAC gives on a refusal.

use super::User;
use super::rules::{Condition, PUBLIC_PATHS, Rule, rules};

/// What a request does, as Kubernetes' authorizers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attributes {
    Resource(ResourceAttributes),
    /// A request outside the resource tree (discovery, OpenAPI, health).
    NonResource {
        verb: String,
        path: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    /// The object's name; for `create`, the name in the request body.
    pub name: Option<String>,
}

impl ResourceAttributes {
    /// `plural` or `plural/subresource`.
    pub fn resource_path(&self) -> String {
        match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        }
    }
}

/// Reads of stored objects the conditional rules need.
pub trait Facts: Sync {
    /// The `spec.agent` of placement `namespace/name`, if it exists.
    fn placement_agent(&self, namespace: &str, name: &str) -> impl Future<Output = Option<String>> + Send;
    /// Whether a placement in `namespace` bound to `agent` names `secret` as its `imagePullSecret`.
    fn secret_used_by(&self, namespace: &str, secret: &str, agent: &str) -> impl Future<Output = bool> + Send;
}

/// Facts for a decision that must not read the store: every condition fails.
pub struct NoFacts;

impl Facts for NoFacts {
    async fn placement_agent(&self, _: &str, _: &str) -> Option<String> {
        None
    }
    async fn secret_used_by(&self, _: &str, _: &str, _: &str) -> bool {
        false
    }
}

fn matches(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// Whether `rule` covers `a`, apart from its condition.
pub fn rule_covers(rule: &Rule, a: &ResourceAttributes) -> bool {
    let resource_ok = rule.resources.iter().any(|r| r == "*" || *r == a.resource_path());
    let name_ok = rule.names.is_empty() || a.name.as_ref().is_some_and(|n| rule.names.contains(n));
    let ns_ok = rule.namespace.is_none() || rule.namespace == a.namespace;
    matches(&rule.verbs, &a.verb) && matches(&rule.groups, &a.group) && resource_ok && name_ok && ns_ok
}

async fn condition_holds(c: &Condition, a: &ResourceAttributes, facts: &impl Facts) -> bool {
    let (Some(ns), Some(name)) = (a.namespace.as_deref(), a.name.as_deref()) else {
        return false;
    };
    match c {
        Condition::PlacementOnAgent(agent) => {
            a.group == "berth.dev"
                && a.resource == "placements"
                && facts.placement_agent(ns, name).await.as_deref() == Some(agent.as_str())
        }
        Condition::SecretOfAgentPlacement(agent) => {
            a.group.is_empty() && a.resource == "secrets" && facts.secret_used_by(ns, name, agent).await
        }
    }
}

fn path_allowed(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Whether `user` may do what `attrs` describe.
pub async fn allowed(user: &User, attrs: &Attributes, facts: &impl Facts) -> bool {
    match attrs {
        Attributes::NonResource { verb, path } => {
            (verb == "get" && PUBLIC_PATHS.iter().any(|p| path_allowed(p, path))) || user.in_group(super::ADMIN_GROUP)
        }
        Attributes::Resource(a) => {
            for rule in rules(user).iter().filter(|r| rule_covers(r, a)) {
                match &rule.condition {
                    None => return true,
                    Some(c) if condition_holds(c, a, facts).await => return true,
                    Some(_) => {}
                }
            }
            false
        }
    }
}

/// The reason Kubernetes' RBAC gives for a refusal, e.g.
/// `User "u" cannot delete resource "jobs" in API group "berth.dev" in the namespace "ns"`.
pub fn denial_reason(user: &User, attrs: &Attributes) -> String {
    match attrs {
        Attributes::NonResource { verb, path } => format!("User {:?} cannot {verb} path {path:?}", user.name),
        Attributes::Resource(a) => {
            let scope = match &a.namespace {
                Some(ns) => format!("in the namespace {ns:?}"),
                None => "at the cluster scope".into(),
            };
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
                user.name,
                a.verb,
                a.resource_path(),
                a.group
            )
        }
    }
}

/// The whole message of a 403: `jobs.berth.dev "x" is forbidden: User …`.
pub fn forbidden_message(user: &User, attrs: &Attributes) -> String {
    let subject = match attrs {
        Attributes::NonResource { .. } => "forbidden".to_string(),
        Attributes::Resource(a) => {
            let resource = if a.group.is_empty() { a.resource.clone() } else { format!("{}.{}", a.resource, a.group) };
            match &a.name {
                Some(n) if a.verb != "create" => format!("{resource} {n:?} is forbidden"),
                _ => format!("{resource} is forbidden"),
            }
        }
    };
    format!("{subject}: {}", denial_reason(user, attrs))
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
