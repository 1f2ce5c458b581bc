//! A mutating step on create: every `berth.dev` Placement is stored with the
//! agent finalizer (`berth.dev/agent`), so deleting it — directly or by its
//! Job's deletion — leaves it `Terminating` until its agent has stopped and
//! removed its container. Its claim on the agent's ledger is therefore never
//! released while the container still runs. Frameworks need not know about
//! the finalizer on Berth's store; on kube-apiserver they add it themselves.
//!
//! Every other kind passes untouched.

use serde_json::Value;

use super::object;
use crate::registry::Kind;

/// The group of Berth's kinds.
const GROUP: &str = "berth.dev";

/// Adds `berth_api::placement::FINALIZER_AGENT` to a Placement's
/// `metadata.finalizers` when it is missing.
pub fn add_agent_finalizer(kind: &Kind, obj: &mut Value) {
    if kind.builtin || kind.group != GROUP || kind.kind != "Placement" {
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
