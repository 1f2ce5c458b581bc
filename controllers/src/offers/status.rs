//! `Framework.status` after a round: what its placements hold, its dominant
//! share, its open offers, the `Offered` condition — True while it has
//! offers, False with the planner's reason when it got none — and, for a
//! framework with a Lease, the `Connected` condition (see `failover`).
//! Written through `/status` only when something changed.

use std::collections::HashMap;

use berth_api::condition::set_condition;
use berth_api::framework::{CONDITION_CONNECTED, CONDITION_OFFERED, Mode};
use berth_api::{Condition, Framework, FrameworkStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::failover::{Connection, lease_name};
use crate::Error;
use crate::allocator::apply::Applied;
use crate::allocator::{Input, RoundPlan};

/// The status `fw` should have after the round.
pub fn desired(
    fw: &Framework,
    input: &Input,
    plan: &RoundPlan,
    applied: &Applied,
    connection: Option<&Connection>,
    now: &str,
) -> FrameworkStatus {
    let id = format!("{}/{}", fw.namespace().unwrap_or_default(), fw.name_any());
    let mut st = fw.status.clone().unwrap_or_default();
    let me = input.frameworks.iter().find(|f| f.id == id);
    st.allocated = me.map(|f| f.allocated.to_resources());
    // Rounded, so tiny changes of the cluster do not rewrite every framework.
    st.dominant_share = plan.shares.get(&id).map(|s| (s * 1000.0).round() / 1000.0);
    let rescinded = |o: &str| plan.rescinds.iter().any(|(r, _)| r == o);
    let kept = input.offers.iter().filter(|o| o.framework == id && !rescinded(&o.id)).count();
    let made = applied
        .made
        .iter()
        .filter(|o| o.starts_with(&format!("{}/", fw.namespace().unwrap_or_default())))
        .filter(|o| {
            plan.offers.iter().any(|n| n.framework == id && o.ends_with(&crate::allocator::apply::offer_name(n)))
        })
        .count();
    let open = kept + made;
    st.offers_outstanding = Some(open as u32);
    st.observed_generation = fw.metadata.generation;
    // Stable while offers stay open, so a busy framework's status is not rewritten every round.
    let cond = match plan.idle.get(&id) {
        _ if open > 0 => Condition::new(CONDITION_OFFERED, true, "OffersOutstanding", format!("{open} open offer(s)")),
        Some(idle) => Condition::new(CONDITION_OFFERED, false, idle.reason.as_str(), idle.message.clone()),
        None => Condition::new(CONDITION_OFFERED, false, "NoCapacity", "no offer was made"),
    };
    set_condition(&mut st.conditions, cond, now);
    match connection.and_then(|c| c.condition(&lease_name(&fw.name_any()))) {
        Some(cond) => set_condition(&mut st.conditions, cond, now),
        None => st.conditions.retain(|c| c.type_ != CONDITION_CONNECTED),
    }
    st
}

/// The round's view of the frameworks: their `namespace/name` and connection.
pub type Connections = HashMap<String, Connection>;

/// Writes each `Offers` framework's status where it changed.
pub async fn write(
    client: &Client,
    frameworks: &[std::sync::Arc<Framework>],
    input: &Input,
    plan: &RoundPlan,
    applied: &Applied,
    connections: &Connections,
    now: &str,
) -> Result<(), Error> {
    for fw in frameworks.iter().filter(|f| f.spec.mode == Mode::Offers) {
        let id = format!("{}/{}", fw.namespace().unwrap_or_default(), fw.name_any());
        let next = desired(fw, input, plan, applied, connections.get(&id), now);
        if fw.status.as_ref() == Some(&next) {
            continue;
        }
        let api: Api<Framework> = Api::namespaced(client.clone(), &fw.namespace().unwrap_or_default());
        let patch = json!({"status": next});
        match api.patch_status(&fw.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
