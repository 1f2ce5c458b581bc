//! Admission of an accept: a `berth.dev` Placement naming an Offer in
//! `spec.offer` is refused at create time (422, a cause naming the field)
//! when the offer is missing, closed or expired, is for another agent or
//! framework, or has too little left for it beside the other live
//! placements naming it. The one offer is read from storage and the
//! namespace's placements from the watch cache (storage when the cache
//! lags), so the check stays cheap.
//!
//! Two accepts created at the same moment may each pass; the allocator
//! still checks every accept it settles and fails the one that does not
//! fit (`OfferRefused`). On update, `spec.offer` never changes, nor does
//! `spec.agent` of a placement that names an offer.
//!
//! Every other kind passes untouched: the server stays a generic store.

mod rules;

use std::time::Duration;

use serde_json::Value;

use super::{App, object};
use crate::error::{Cause, Error, Result};
use crate::registry::Kind;
use crate::storage::Storage;
use rules::{Accept, Sharer, offer_of};

/// The group of Berth's kinds.
const GROUP: &str = "berth.dev";
/// How long to wait for the watch cache to reach storage before reading storage.
const CACHE_WAIT: Duration = Duration::from_millis(100);

fn is_placement(kind: &Kind) -> bool {
    !kind.builtin && kind.group == GROUP && kind.kind == "Placement"
}

fn invalid(kind: &Kind, obj: &Value, causes: Vec<Cause>) -> Error {
    Error::Invalid(object::invalid_subject(kind, object::name(obj).unwrap_or_default()), causes)
}

/// Refuses creating `obj` (admitted, in `namespace`) when it cannot accept the offer it names.
pub async fn check_create<S: Storage>(app: &App<S>, kind: &Kind, namespace: Option<&str>, obj: &Value) -> Result<()> {
    let (Some(offer), Some(ns)) = (offer_of(obj), namespace) else { return Ok(()) };
    if !is_placement(kind) {
        return Ok(());
    }
    if let Some(why) = crate::validation::names::dns_subdomain(offer) {
        let message = format!("Invalid value: {offer:?}: not an offer name: {why}");
        return Err(invalid(
            kind,
            obj,
            vec![Cause { reason: "FieldValueInvalid", field: "spec.offer".into(), message }],
        ));
    }
    let found = match app.registry.by_resource(GROUP, "offers") {
        Some(offers) => match app.store.get(&offers.key(Some(ns), offer)).await? {
            Some(kv) => Some(object::decode(&offers, &kv)?),
            None => None,
        },
        None => None,
    };
    let others = match &found {
        Some(_) => naming(app, kind, ns, offer).await?,
        None => Vec::new(),
    };
    let accept = Accept { offer, namespace: ns, obj };
    let causes = rules::judge(&accept, found.as_ref(), &others, jiff::Timestamp::now());
    if causes.is_empty() { Ok(()) } else { Err(invalid(kind, obj, causes)) }
}

/// The live placements in `ns` naming `offer`: from the watch cache once it
/// has reached storage's current revision, else from storage.
async fn naming<S: Storage>(app: &App<S>, kind: &Kind, ns: &str, offer: &str) -> Result<Vec<Sharer>> {
    let prefix = kind.prefix(Some(ns));
    let current = app.store.current_revision().await?;
    if app.cache.wait_for(current, CACHE_WAIT).await {
        let listed = app.cache.list(&prefix, None, 0, &|v| offer_of(v) == Some(offer));
        return Ok(listed.entries.iter().filter_map(|e| rules::sharer(&e.value, offer)).collect());
    }
    let range = app.store.range(&prefix, None, 0, 0).await?;
    let mut out = Vec::new();
    for kv in &range.kvs {
        out.extend(rules::sharer(&object::decode(kind, kv)?, offer));
    }
    Ok(out)
}

/// Refuses an update of a Placement that changes `spec.offer`, or
/// `spec.agent` while it names an offer.
pub fn check_update(kind: &Kind, current: &Value, next: &Value) -> Result<()> {
    if !is_placement(kind) {
        return Ok(());
    }
    let mut causes = Vec::new();
    let (was, now) = (offer_of(current), offer_of(next));
    if was != now {
        let message = match now {
            Some(o) => {
                format!("Invalid value: {o:?}: field is immutable; an offer is accepted by creating a placement")
            }
            None => format!(
                "Invalid value: null: field is immutable; the placement accepts offer {}",
                was.unwrap_or_default()
            ),
        };
        causes.push(Cause { reason: "FieldValueInvalid", field: "spec.offer".into(), message });
    }
    let agent = |v: &Value| v.pointer("/spec/agent").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(o) = was
        && agent(current) != agent(next)
    {
        let message =
            format!("Invalid value: {:?}: field is immutable while the placement accepts offer {o}", agent(next));
        causes.push(Cause { reason: "FieldValueInvalid", field: "spec.agent".into(), message });
    }
    if causes.is_empty() { Ok(()) } else { Err(invalid(kind, current, causes)) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn placement_kind() -> Kind {
        let c = berth_api::crds::all().into_iter().find(|c| c.spec.names.kind == "Placement").expect("crd");
        crate::registry::crd::kinds_of(&serde_json::to_value(&c).expect("json")).remove(0)
    }

    fn p(agent: &str, offer: Option<&str>) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"agent": agent, "offer": offer}})
    }

    #[test]
    fn an_accepts_offer_and_agent_never_change() {
        let k = placement_kind();
        assert!(check_update(&k, &p("a1", Some("o1")), &p("a1", Some("o1"))).is_ok());
        assert!(check_update(&k, &p("a1", None), &p("a2", None)).is_ok(), "no offer: the agent is not held");
        for (current, next, field) in [
            (p("a1", Some("o1")), p("a1", Some("o2")), "spec.offer"),
            (p("a1", Some("o1")), p("a1", None), "spec.offer"),
            (p("a1", None), p("a1", Some("o1")), "spec.offer"),
            (p("a1", Some("o1")), p("a2", Some("o1")), "spec.agent"),
        ] {
            let e = check_update(&k, &current, &next).expect_err(field);
            assert_eq!(e.code(), 422);
            let Error::Invalid(_, causes) = e else { panic!("not Invalid") };
            assert_eq!(causes[0].field, field, "{causes:?}");
        }
    }
}
