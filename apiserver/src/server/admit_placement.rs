//! A mutating step on create: every `berth.dev` Placement is stored with the
//! agent finalizer (`berth.dev/agent`), so deleting it — directly or by its
//! Job's deletion — leaves it `Terminating` until its agent has stopped and
//! removed its container. Its claim on the agent's ledger is therefore never
//! released while the container still runs. Frameworks need not know about
//! the finalizer on Berth's store; on kube-apiserver they add it themselves.
//!
//! And a check on update: an agent may write a Placement bound to it (its
//! role allows that, so it can remove the finalizer once its container is
//! gone) but may change nothing else of it — not its spec, labels or owners,
//! and add no finalizer.
//!
//! Every other kind passes untouched.

use serde_json::Value;

use super::object;
use crate::auth::User;
use crate::auth::rules::{ADMIN_GROUP, agent_name};
use crate::error::{Error, Result};
use crate::registry::Kind;

/// The agent `user` is, when this request (not on `/status`) writes a
/// Placement and may therefore only remove finalizers.
pub fn finalizers_only(user: &User, kind: &Kind, status: bool) -> Option<String> {
    if status || !is_placement(kind) || user.in_group(ADMIN_GROUP) {
        return None;
    }
    agent_name(user).map(str::to_string)
}

fn is_placement(kind: &Kind) -> bool {
    !kind.builtin && kind.group == GROUP && kind.kind == "Placement"
}

/// Refuses (403) a write by `agent` that changes `current` other than by
/// removing some of its finalizers.
pub fn check_finalizers_only(agent: &str, name: &str, current: &Value, next: &Value) -> Result<()> {
    let finalizers = |v: &Value| -> Vec<String> {
        object::meta(v)
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let rest = |v: &Value| {
        let mut v = v.clone();
        let meta = object::meta_mut(&mut v);
        for field in ["finalizers", "managedFields", "resourceVersion", "generation"] {
            meta.remove(field);
        }
        v
    };
    let kept = finalizers(current);
    if rest(current) == rest(next) && finalizers(next).iter().all(|f| kept.contains(f)) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "placements.berth.dev \"{name}\" is forbidden: agent {agent} may only remove finalizers from the \
         placements bound to it; their spec and metadata are the scheduler's"
    )))
}

/// The group of Berth's kinds.
const GROUP: &str = "berth.dev";

/// Adds `berth_api::placement::FINALIZER_AGENT` to a Placement's
/// `metadata.finalizers` when it is missing.
pub fn add_agent_finalizer(kind: &Kind, obj: &mut Value) {
    if !is_placement(kind) {
        return;
    }
    let meta = object::meta_mut(obj);
    let finalizers = meta.entry("finalizers").or_insert_with(|| Value::Array(Vec::new()));
    if !finalizers.is_array() {
        // A malformed list is admission's to refuse, naming the field.
        return;
    }
    if let Some(list) = finalizers.as_array_mut()
        && !list.iter().any(|f| f.as_str() == Some(berth_api::placement::FINALIZER_AGENT))
    {
        list.push(Value::String(berth_api::placement::FINALIZER_AGENT.into()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_agent_may_remove_finalizers_and_nothing_else() {
        let current = json!({
            "metadata": {"name": "p", "resourceVersion": "5", "finalizers": ["berth.dev/agent", "x.io/keep"], "labels": {"a": "1"}},
            "spec": {"agent": "a1", "image": "img"}
        });
        let removed = json!({
            "metadata": {"name": "p", "resourceVersion": "6", "finalizers": ["x.io/keep"], "labels": {"a": "1"}},
            "spec": {"agent": "a1", "image": "img"}
        });
        assert!(check_finalizers_only("a1", "p", &current, &removed).is_ok());
        let mut spec = removed.clone();
        spec["spec"]["image"] = json!("evil");
        let mut label = removed.clone();
        label["metadata"]["labels"]["a"] = json!("2");
        let mut added = current.clone();
        added["metadata"]["finalizers"] = json!(["berth.dev/agent", "x.io/keep", "x.io/new"]);
        for next in [spec, label, added] {
            let err = check_finalizers_only("a1", "p", &current, &next).expect_err("refused");
            assert!(
                matches!(&err, Error::Forbidden(m) if m.contains("agent a1 may only remove finalizers")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn only_agents_writing_placements_are_held_to_finalizers() {
        let agent = User { name: "berth:agent:a1".into(), uid: String::new(), groups: vec!["berth:agents".into()] };
        let admin = User { name: "admin".into(), uid: String::new(), groups: vec![ADMIN_GROUP.into()] };
        assert_eq!(finalizers_only(&agent, &kind("Placement"), false).as_deref(), Some("a1"));
        assert_eq!(finalizers_only(&agent, &kind("Placement"), true), None, "status is the agent's to write");
        assert_eq!(finalizers_only(&agent, &kind("Agent"), false), None);
        assert_eq!(finalizers_only(&admin, &kind("Placement"), false), None);
    }

    fn kind(name: &str) -> Kind {
        let c = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == name).expect("crd");
        crate::registry::crd::kinds_of(&serde_json::to_value(&c).expect("json")).remove(0)
    }

    #[test]
    fn a_placement_gets_the_agent_finalizer_once_beside_its_own() {
        let k = kind("Placement");
        let mut bare = json!({"metadata": {"name": "p"}});
        add_agent_finalizer(&k, &mut bare);
        assert_eq!(bare["metadata"]["finalizers"], json!(["berth.dev/agent"]));

        let mut own = json!({"metadata": {"name": "p", "finalizers": ["example.com/mine", "berth.dev/agent"]}});
        add_agent_finalizer(&k, &mut own);
        assert_eq!(own["metadata"]["finalizers"], json!(["example.com/mine", "berth.dev/agent"]));
    }

    #[test]
    fn other_kinds_pass_untouched() {
        let mut job = json!({"metadata": {"name": "j"}});
        add_agent_finalizer(&kind("Job"), &mut job);
        let mut foreign = kind("Placement");
        foreign.group = "example.com".into();
        add_agent_finalizer(&foreign, &mut job);
        assert_eq!(job, json!({"metadata": {"name": "j"}}));
    }
}
