//! Whether a Placement may accept the Offer it names: a pure function of
//! the placement, the offer (if any), the other placements naming it, and
//! the time. Every problem is reported at once, each as a field cause.

use berth_api::ports::PortRange;
use berth_api::{OfferState, Phase, ResourceVec, Resources};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Cause;

use berth_api::LABEL_FRAMEWORK as FRAMEWORK_LABEL;
/// How many of the placements sharing an offer a message names.
const NAMED: usize = 3;

/// The placement being created.
pub struct Accept<'a> {
    pub offer: &'a str,
    pub namespace: &'a str,
    pub obj: &'a Value,
}

/// Another live placement naming the same offer: its name and what it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharer {
    pub name: String,
    pub resources: ResourceVec,
    /// How many host ports it takes.
    pub ports: u32,
}

fn text<'v>(obj: &'v Value, pointer: &str) -> Option<&'v str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn resources(obj: &Value) -> Result<ResourceVec, berth_api::resources::ResourceError> {
    let r = obj.get("spec").and_then(|s| s.get("resources")).and_then(|r| Resources::deserialize(r).ok());
    r.unwrap_or_default().to_vec()
}

/// How many host ports a placement asks for (`spec.ports`).
fn ports_wanted(obj: &Value) -> u32 {
    obj.pointer("/spec/ports").and_then(Value::as_array).map_or(0, |a| a.len() as u32)
}

/// How many host ports an offer holds (`spec.ports` ranges).
fn ports_offered(offer: &Value) -> u32 {
    let ranges = offer.pointer("/spec/ports").and_then(|r| Vec::<PortRange>::deserialize(r).ok());
    berth_api::ports::count(&ranges.unwrap_or_default())
}

fn cause(reason: &'static str, field: &str, message: String) -> Cause {
    Cause { reason, field: field.into(), message }
}

/// The offer a placement names, if any.
pub fn offer_of(obj: &Value) -> Option<&str> {
    obj.get("spec").and_then(|s| s.get("offer")).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `obj` as a [`Sharer`] when it names `offer` and may still run (not
/// Succeeded, Failed, Killed or Lost).
pub fn sharer(obj: &Value, offer: &str) -> Option<Sharer> {
    if offer_of(obj) != Some(offer) {
        return None;
    }
    let phase = obj.get("status").and_then(|s| s.get("phase")).and_then(|p| Phase::deserialize(p).ok());
    if phase.unwrap_or_default().is_terminal() {
        return None;
    }
    let name = text(obj, "/metadata/name").unwrap_or_default().to_string();
    Some(Sharer { name, resources: resources(obj).unwrap_or_default(), ports: ports_wanted(obj) })
}

/// Why `offer`'s state refuses an accept, if it does: closed, or expired at `now`.
fn closed(name: &str, offer: &Value, now: Timestamp) -> Option<String> {
    let state: OfferState =
        offer.pointer("/status/state").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let reason = text(offer, "/status/reason").filter(|r| !r.is_empty());
    match state {
        OfferState::Accepted => return Some(format!("offer {name} was already Accepted")),
        OfferState::Declined => return Some(format!("offer {name} was Declined")),
        OfferState::Rescinded => {
            return Some(match reason {
                Some(r) => format!("offer {name} was Rescinded ({r})"),
                None => format!("offer {name} was Rescinded"),
            });
        }
        OfferState::Outstanding => {}
    }
    if offer.pointer("/spec/decline").is_some_and(|d| !d.is_null()) {
        return Some(format!("offer {name} was Declined"));
    }
    // As the allocator: an offer without a readable expiry is expired.
    let expires = text(offer, "/spec/expiresAt");
    match expires.and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(at) if now < at => None,
        Some(_) => Some(format!("offer {name} expired at {}", expires.unwrap_or_default())),
        None => Some(format!("offer {name} has no valid spec.expiresAt ({expires:?}), so it has expired")),
    }
}

/// The causes refusing `p`'s accept of `offer` (`None`: it does not exist),
/// given the other live placements naming the same offer.
pub fn judge(p: &Accept<'_>, offer: Option<&Value>, others: &[Sharer], now: Timestamp) -> Vec<Cause> {
    let name = p.offer;
    let Some(offer) = offer else {
        let message = format!("Not found: {name:?}: offer {name} not found in namespace {}", p.namespace);
        return vec![cause("FieldValueNotFound", "spec.offer", message)];
    };
    let mut causes = Vec::new();
    if let Some(why) = closed(name, offer, now) {
        causes.push(cause("FieldValueInvalid", "spec.offer", format!("Invalid value: {name:?}: {why}")));
    }
    let agent = text(p.obj, "/spec/agent").unwrap_or_default();
    let offer_agent = text(offer, "/spec/agent").unwrap_or_default();
    if agent != offer_agent {
        let message = format!("Invalid value: {agent:?}: offer {name} is for agent {offer_agent}");
        causes.push(cause("FieldValueInvalid", "spec.agent", message));
    }
    let framework = text(offer, "/spec/framework").unwrap_or_default();
    let label = format!("/metadata/labels/{}", FRAMEWORK_LABEL.replace('/', "~1"));
    match text(p.obj, &label) {
        None => causes.push(cause(
            "FieldValueRequired",
            "metadata.labels",
            format!(
                "Required value: a placement accepting offer {name} needs the label {FRAMEWORK_LABEL}: {framework}"
            ),
        )),
        Some(f) if f != framework => causes.push(cause(
            "FieldValueInvalid",
            "metadata.labels",
            format!(
                "Invalid value: {f:?}: label {FRAMEWORK_LABEL} must name framework {framework}, whose offer {name} is"
            ),
        )),
        Some(_) => {}
    }
    causes.extend(exceeds(p, offer, others));
    causes.extend(too_few_ports(p, offer, others));
    causes
}

/// The ports cause: how many host ports `p` asks for against how many the
/// offer holds that the other live placements naming it do not take.
fn too_few_ports(p: &Accept<'_>, offer: &Value, others: &[Sharer]) -> Option<Cause> {
    let need = ports_wanted(p.obj);
    let total = ports_offered(offer);
    let taken: u32 = others.iter().map(|o| o.ports).sum();
    let left = total.saturating_sub(taken);
    if need <= left {
        return None;
    }
    let name = p.offer;
    let message = format!("Invalid value: {need} ports: offer {name} holds {total} host ports, {left} of them left");
    Some(cause("FieldValueInvalid", "spec.ports", message))
}

/// The resources cause: what `p` needs against what the offer has left
/// after the other live placements naming it.
fn exceeds(p: &Accept<'_>, offer: &Value, others: &[Sharer]) -> Option<Cause> {
    let name = p.offer;
    let need = match resources(p.obj) {
        Ok(n) => n,
        Err(e) => {
            let field = format!("spec.resources.{}", e.field);
            return Some(cause("FieldValueInvalid", &field, format!("Invalid value: {}", e.error)));
        }
    };
    let total = resources(offer).unwrap_or_default();
    let taken: ResourceVec = others.iter().map(|o| o.resources).sum();
    let left = total.saturating_sub(&taken);
    if need.fits_in(&left) {
        return None;
    }
    let mut message = format!("Invalid value: \"{need}\": offer {name} has {total}");
    if !others.is_empty() {
        let mut names: Vec<&str> = others.iter().map(|o| o.name.as_str()).take(NAMED).collect();
        if others.len() > NAMED {
            names.push("…");
        }
        let count = others.len();
        let noun = if count == 1 { "placement" } else { "placements" };
        message.push_str(&format!(" of which {taken} are taken by {count} {noun} ({})", names.join(", ")));
    }
    let short: Vec<String> = need
        .shortfalls(&left)
        .into_iter()
        .map(|(what, n, l)| format!("{what} {n} is more than the {l} left"))
        .collect();
    message.push_str(&format!(": {}", short.join(", ")));
    Some(cause("FieldValueInvalid", "spec.resources", message))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
