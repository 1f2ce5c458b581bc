//! What each role may do, as rules in the shape of Kubernetes RBAC
//! (verbs × API groups × resources × names, in one namespace or any),
//! plus two conditions RBAC cannot express that an agent needs, as the
//! Kubernetes node authorizer adds them for kubelets.
//!
//! Roles come from the token's user and groups:
//! - group `system:masters`: everything (admin);
//! - group `berth:controllers`: what the controllers read and write;
//! - group `berth:agents`, user `berth:agent:NAME`: its own `Agent` and
//!   `Lease`, reads of placements, status of placements bound to it (and the
//!   placements themselves, of which admission lets it only remove
//!   finalizers: `server::admit_placement`), and the Secrets its placements
//!   name as `imagePullSecret`;
//! - group `berth:frameworks`: Offers and Placements of its namespaces;
//!   with user `berth:framework:NS/NAME`, also its own `Framework` (register,
//!   suppress, revive) and its own `Lease` `framework-NAME` (staying connected);
//! - group `berth:users`: everything in its namespaces;
//! - group `berth:namespace:NS` names a framework's or user's namespace.
//!
//! Every authenticated user may read discovery, OpenAPI, version and
//! health, and ask who it is and what it may do.

use super::User;

pub const ADMIN_GROUP: &str = "system:masters";
pub const CONTROLLERS_GROUP: &str = "berth:controllers";
pub const AGENTS_GROUP: &str = "berth:agents";
pub const FRAMEWORKS_GROUP: &str = "berth:frameworks";
pub const USERS_GROUP: &str = "berth:users";
/// Prefix of the group naming a framework's or user's namespace.
pub const NAMESPACE_GROUP_PREFIX: &str = "berth:namespace:";
/// Prefix of an agent's user name; the rest is its `Agent`'s name.
pub const AGENT_USER_PREFIX: &str = "berth:agent:";
/// Prefix of a framework's user name; the rest is `NAMESPACE/NAME` of its `Framework`.
pub const FRAMEWORK_USER_PREFIX: &str = "berth:framework:";

const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &["*"];
const BERTH: &str = "berth.dev";

/// A check against stored objects that a rule needs beyond its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The named placement's `spec.agent` is this agent.
    PlacementOnAgent(String),
    /// The named Secret is the `imagePullSecret` of a placement bound to this agent.
    SecretOfAgentPlacement(String),
}

/// One grant on resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub groups: Vec<String>,
    /// `plural` or `plural/subresource`; `*` is every resource and subresource.
    pub resources: Vec<String>,
    /// Empty: any name.
    pub names: Vec<String>,
    /// `None`: any namespace and cluster-scoped resources; `Some(ns)`: only in `ns`.
    pub namespace: Option<String>,
    pub condition: Option<Condition>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Rule {
    fn new(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: strings(verbs),
            groups: strings(groups),
            resources: strings(resources),
            names: Vec::new(),
            namespace: None,
            condition: None,
        }
    }

    fn named(mut self, name: &str) -> Rule {
        self.names = vec![name.to_string()];
        self
    }

    fn within(mut self, namespace: &str) -> Rule {
        self.namespace = Some(namespace.to_string());
        self
    }

    fn when(mut self, condition: Condition) -> Rule {
        self.condition = Some(condition);
        self
    }
}

/// Paths every authenticated user may GET (a trailing `*` matches a prefix).
pub const PUBLIC_PATHS: &[&str] =
    &["/", "/api", "/api/*", "/apis", "/apis/*", "/openapi/*", "/version", "/healthz*", "/livez*", "/readyz*"];

/// The namespaces `user`'s groups name.
pub fn namespaces(user: &User) -> Vec<&str> {
    user.groups.iter().filter_map(|g| g.strip_prefix(NAMESPACE_GROUP_PREFIX)).filter(|n| !n.is_empty()).collect()
}

/// The agent `user` is, if it is one.
pub fn agent_name(user: &User) -> Option<&str> {
    if !user.in_group(AGENTS_GROUP) {
        return None;
    }
    user.name.strip_prefix(AGENT_USER_PREFIX).filter(|n| !n.is_empty())
}

/// The `Framework` (namespace, name) `user` is, if it is one: user
/// `berth:framework:NS/NAME` in group `berth:frameworks`.
pub fn framework_name(user: &User) -> Option<(&str, &str)> {
    if !user.in_group(FRAMEWORKS_GROUP) {
        return None;
    }
    let (ns, name) = user.name.strip_prefix(FRAMEWORK_USER_PREFIX)?.split_once('/')?;
    (!ns.is_empty() && !name.is_empty()).then_some((ns, name))
}

/// Every resource rule that applies to `user`.
pub fn rules(user: &User) -> Vec<Rule> {
    let mut out = vec![
        Rule::new(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"]),
        Rule::new(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
    ];
    if user.in_group(ADMIN_GROUP) {
        out.push(Rule::new(ALL, ALL, ALL));
    }
    if user.in_group(CONTROLLERS_GROUP) {
        out.extend([
            Rule::new(ALL, &[BERTH], ALL),
            Rule::new(&["create", "update", "patch", "get", "list", "watch"], &["", "events.k8s.io"], &["events"]),
            Rule::new(ALL, &["coordination.k8s.io"], &["leases"]),
            Rule::new(READ, &[""], &["namespaces"]),
        ]);
    }
    if let Some(agent) = agent_name(user) {
        out.extend([
            Rule::new(READ, &[BERTH], &["agents", "agents/status", "placements", "placements/status"]),
            Rule::new(&["create", "update", "patch"], &[BERTH], &["agents"]).named(agent),
            Rule::new(&["update", "patch"], &[BERTH], &["agents/status"]).named(agent),
            Rule::new(&["update", "patch"], &[BERTH], &["placements/status"])
                .when(Condition::PlacementOnAgent(agent.into())),
            // Removing the agent finalizer once a placement's container is gone.
            Rule::new(&["update", "patch"], &[BERTH], &["placements"]).when(Condition::PlacementOnAgent(agent.into())),
            Rule::new(&["get", "create", "update", "patch"], &["coordination.k8s.io"], &["leases"]).named(agent),
            Rule::new(&["get"], &[""], &["secrets"]).when(Condition::SecretOfAgentPlacement(agent.into())),
            Rule::new(&["create", "update", "patch"], &["", "events.k8s.io"], &["events"]),
        ]);
    }
    for ns in namespaces(user) {
        if user.in_group(FRAMEWORKS_GROUP) {
            out.extend([
                Rule::new(ALL, &[BERTH], &["offers", "offers/status", "placements", "placements/status"]).within(ns),
                Rule::new(READ, &[BERTH], &["jobs", "jobs/status", "frameworks", "frameworks/status"]).within(ns),
                Rule::new(&["create", "update", "patch"], &["", "events.k8s.io"], &["events"]).within(ns),
            ]);
        }
        if user.in_group(USERS_GROUP) {
            out.extend([Rule::new(ALL, ALL, ALL).within(ns), Rule::new(&["get"], &[""], &["namespaces"]).named(ns)]);
        }
    }
    if user.in_group(FRAMEWORKS_GROUP) {
        out.push(Rule::new(READ, &[BERTH], &["agents", "agents/status"]));
    }
    if let Some((ns, name)) = framework_name(user).filter(|(ns, _)| namespaces(user).contains(ns)) {
        // Registering itself and suppress / revive; its status stays the controllers'.
        out.push(Rule::new(&["create", "update", "patch"], &[BERTH], &["frameworks"]).named(name).within(ns));
        // Renewing its Lease keeps it connected (failover timeout).
        let lease = format!("framework-{name}");
        out.push(
            Rule::new(&["get", "create", "update", "patch"], &["coordination.k8s.io"], &["leases"])
                .named(&lease)
                .within(ns),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User { name: name.into(), uid: String::new(), groups: strings(groups) }
    }

    #[test]
    fn an_agent_needs_its_name_and_group() {
        assert_eq!(agent_name(&user("berth:agent:a1", &[AGENTS_GROUP])), Some("a1"));
        assert_eq!(agent_name(&user("berth:agent:a1", &[])), None);
        assert_eq!(agent_name(&user("berth:agent:", &[AGENTS_GROUP])), None);
        assert_eq!(agent_name(&user("alice", &[AGENTS_GROUP])), None);
    }

    #[test]
    fn a_user_without_roles_may_only_ask_about_itself() {
        let r = rules(&user("nobody", &["berth:namespace:team-a"]));
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.verbs == ["create"] && r.groups[0].ends_with(".k8s.io")));
    }
}
