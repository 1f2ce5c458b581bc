//! The decision, per role, without a store.

use super::*;
use crate::auth::rules::{AGENTS_GROUP, CONTROLLERS_GROUP, FRAMEWORKS_GROUP, USERS_GROUP};

fn user(name: &str, groups: &[&str]) -> User {
    User { name: name.into(), uid: String::new(), groups: groups.iter().map(|g| g.to_string()).collect() }
}

fn res(verb: &str, group: &str, resource: &str, ns: Option<&str>, name: Option<&str>) -> Attributes {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    Attributes::Resource(ResourceAttributes {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource,
        namespace: ns.map(String::from),
        name: name.map(String::from),
    })
}

/// Placement `ns/p1` is bound to agent `a1`; it pulls with secret `pull`.
struct Fixture;

impl Facts for Fixture {
    async fn placement_agent(&self, ns: &str, name: &str) -> Option<String> {
        (ns == "ns" && name == "p1").then(|| "a1".to_string())
    }
    async fn secret_used_by(&self, ns: &str, secret: &str, agent: &str) -> bool {
        ns == "ns" && secret == "pull" && agent == "a1"
    }
}

async fn can(u: &User, a: Attributes) -> bool {
    allowed(u, &a, &Fixture).await
}

#[tokio::test]
async fn an_agent_writes_only_its_own_objects() {
    let a1 = user("berth:agent:a1", &[AGENTS_GROUP]);
    assert!(can(&a1, res("create", "berth.dev", "agents", None, Some("a1"))).await);
    assert!(!can(&a1, res("create", "berth.dev", "agents", None, Some("a2"))).await);
    assert!(can(&a1, res("patch", "berth.dev", "agents/status", None, Some("a1"))).await);
    assert!(!can(&a1, res("patch", "berth.dev", "agents/status", None, Some("a2"))).await);
    assert!(!can(&a1, res("delete", "berth.dev", "agents", None, Some("a1"))).await);
    assert!(can(&a1, res("watch", "berth.dev", "placements", None, None)).await);
    assert!(can(&a1, res("patch", "berth.dev", "placements/status", Some("ns"), Some("p1"))).await);
    assert!(!can(&a1, res("patch", "berth.dev", "placements/status", Some("ns"), Some("p2"))).await);
    // Its own placements (to remove the agent finalizer), never another agent's, never create or delete.
    assert!(can(&a1, res("patch", "berth.dev", "placements", Some("ns"), Some("p1"))).await);
    assert!(can(&a1, res("update", "berth.dev", "placements", Some("ns"), Some("p1"))).await);
    assert!(!can(&a1, res("patch", "berth.dev", "placements", Some("ns"), Some("p2"))).await);
    assert!(!can(&a1, res("delete", "berth.dev", "placements", Some("ns"), Some("p1"))).await);
    assert!(!can(&a1, res("create", "berth.dev", "placements", Some("ns"), Some("p1"))).await);
    assert!(can(&a1, res("update", "coordination.k8s.io", "leases", Some("berth-system"), Some("a1"))).await);
    assert!(!can(&a1, res("update", "coordination.k8s.io", "leases", Some("berth-system"), Some("a2"))).await);
    assert!(can(&a1, res("get", "", "secrets", Some("ns"), Some("pull"))).await);
    assert!(!can(&a1, res("get", "", "secrets", Some("ns"), Some("other"))).await);
    assert!(!can(&a1, res("list", "", "secrets", Some("ns"), None)).await);
    let a2 = user("berth:agent:a2", &[AGENTS_GROUP]);
    assert!(!can(&a2, res("get", "", "secrets", Some("ns"), Some("pull"))).await);
}

#[tokio::test]
async fn a_framework_answers_offers_in_its_namespace() {
    let f = user("batch", &[FRAMEWORKS_GROUP, "berth:namespace:team-a"]);
    assert!(can(&f, res("create", "berth.dev", "placements", Some("team-a"), Some("p"))).await);
    assert!(can(&f, res("update", "berth.dev", "offers", Some("team-a"), Some("o"))).await);
    assert!(can(&f, res("list", "berth.dev", "jobs", Some("team-a"), None)).await);
    assert!(!can(&f, res("delete", "berth.dev", "jobs", Some("team-a"), Some("j"))).await);
    assert!(!can(&f, res("create", "berth.dev", "placements", Some("team-b"), None)).await);
    assert!(!can(&f, res("list", "berth.dev", "offers", None, None)).await);
    assert!(can(&f, res("list", "berth.dev", "agents", None, None)).await);
}

#[tokio::test]
async fn a_framework_user_registers_suppresses_and_renews_the_lease_of_only_its_own_framework() {
    let f = user("berth:framework:team-a/py", &[FRAMEWORKS_GROUP, "berth:namespace:team-a"]);
    assert!(can(&f, res("create", "berth.dev", "frameworks", Some("team-a"), Some("py"))).await);
    assert!(can(&f, res("patch", "berth.dev", "frameworks", Some("team-a"), Some("py"))).await);
    assert!(!can(&f, res("patch", "berth.dev", "frameworks", Some("team-a"), Some("other"))).await);
    assert!(!can(&f, res("patch", "berth.dev", "frameworks/status", Some("team-a"), Some("py"))).await);
    assert!(!can(&f, res("delete", "berth.dev", "frameworks", Some("team-a"), Some("py"))).await);
    assert!(!can(&f, res("create", "berth.dev", "frameworks", Some("team-b"), Some("py"))).await);
    for verb in ["get", "create", "update", "patch"] {
        assert!(can(&f, res(verb, "coordination.k8s.io", "leases", Some("team-a"), Some("framework-py"))).await);
    }
    assert!(!can(&f, res("update", "coordination.k8s.io", "leases", Some("team-a"), Some("framework-other"))).await);
    assert!(!can(&f, res("update", "coordination.k8s.io", "leases", Some("team-b"), Some("framework-py"))).await);
    assert!(!can(&f, res("delete", "coordination.k8s.io", "leases", Some("team-a"), Some("framework-py"))).await);
    let elsewhere = user("berth:framework:team-b/py", &[FRAMEWORKS_GROUP, "berth:namespace:team-a"]);
    assert!(!can(&elsewhere, res("create", "berth.dev", "frameworks", Some("team-b"), Some("py"))).await);
    let plain = user("batch", &[FRAMEWORKS_GROUP, "berth:namespace:team-a"]);
    assert!(!can(&plain, res("patch", "berth.dev", "frameworks", Some("team-a"), Some("batch"))).await);
}

#[tokio::test]
async fn a_user_has_one_namespace() {
    let u = user("alice", &[USERS_GROUP, "berth:namespace:team-a"]);
    assert!(can(&u, res("delete", "berth.dev", "jobs", Some("team-a"), Some("j"))).await);
    assert!(can(&u, res("create", "", "secrets", Some("team-a"), None)).await);
    assert!(!can(&u, res("get", "berth.dev", "jobs", Some("team-b"), Some("j"))).await);
    assert!(!can(&u, res("list", "berth.dev", "jobs", None, None)).await);
    assert!(!can(&u, res("list", "berth.dev", "agents", None, None)).await);
    assert!(can(&u, res("get", "", "namespaces", None, Some("team-a"))).await);
    assert!(!can(&u, res("delete", "", "namespaces", None, Some("team-a"))).await);
}

#[tokio::test]
async fn admin_and_controllers() {
    let admin = user("admin", &["system:masters"]);
    assert!(can(&admin, res("deletecollection", "", "secrets", Some("x"), None)).await);
    assert!(allowed(&admin, &Attributes::NonResource { verb: "get".into(), path: "/metrics".into() }, &NoFacts).await);
    let c = user("berth:controllers", &[CONTROLLERS_GROUP]);
    assert!(can(&c, res("update", "berth.dev", "agents/status", None, Some("a1"))).await);
    assert!(can(&c, res("delete", "berth.dev", "placements", Some("ns"), Some("p1"))).await);
    assert!(!can(&c, res("get", "", "secrets", Some("ns"), Some("pull"))).await);
    let nobody = user("nobody", &[]);
    assert!(
        allowed(&nobody, &Attributes::NonResource { verb: "get".into(), path: "/apis/berth.dev".into() }, &NoFacts)
            .await
    );
    assert!(
        !allowed(&nobody, &Attributes::NonResource { verb: "get".into(), path: "/metrics".into() }, &NoFacts).await
    );
}

#[test]
fn refusals_read_like_kubernetes() {
    let u = user("u", &[]);
    assert_eq!(
        forbidden_message(&u, &res("delete", "berth.dev", "jobs", Some("ns"), Some("x"))),
        r#"jobs.berth.dev "x" is forbidden: User "u" cannot delete resource "jobs" in API group "berth.dev" in the namespace "ns""#
    );
    assert_eq!(
        forbidden_message(&u, &res("list", "", "namespaces", None, None)),
        r#"namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope"#
    );
    assert_eq!(
        forbidden_message(&u, &res("patch", "berth.dev", "placements/status", Some("ns"), Some("p"))),
        r#"placements.berth.dev "p" is forbidden: User "u" cannot patch resource "placements/status" in API group "berth.dev" in the namespace "ns""#
    );
}
