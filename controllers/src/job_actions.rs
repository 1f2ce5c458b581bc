//! The writes the batch rules ask of the Job reconciler beyond placing:
//! stopping a Job's live placements (`spec.kill`, when it is suspended, past
//! its deadline or failed) and the `Retrying` Event of each retried attempt.
//! Services stop placements through [`ask_to_stop`] too.

use berth_api::Placement;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::attempts::Needed;
use crate::job::placement_name;
use crate::{Context, Error, batch, events};

/// An Event for each needed attempt that retries a failed one.
pub fn retry_notes(job: &str, a: &batch::Assessment, missing: &[Needed]) -> Vec<(String, events::Note)> {
    missing
        .iter()
        .filter_map(|(g, i, attempt)| {
            let group = a.groups.iter().find(|x| x.group.name == g.name)?;
            let h = &group.instances.get(*i as usize)?.history;
            let failed = h.latest.filter(|p| batch::history::is_failure(p))?;
            let exit = failed.status.as_ref().and_then(|s| s.exit_code);
            let exit = exit.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".into());
            let message = format!("Retrying task {}[{i}] after {exit}, attempt {}", g.name, attempt + 1);
            let note = events::Note { type_: "Normal", reason: "Retrying".into(), message };
            Some((placement_name(job, &g.name, *i, *attempt), note))
        })
        .collect()
}

/// Asks the agents to stop `live` placements not yet asked (`spec.kill`).
pub async fn kill(ctx: &Context, ns: &str, live: &[&Placement], reason: &str, message: &str) -> Result<(), Error> {
    let api: Api<Placement> = Api::namespaced(ctx.client.clone(), ns);
    for p in live.iter().filter(|p| p.spec.kill.is_none()) {
        ask_to_stop(&api, &p.name_any(), reason, message).await?;
    }
    Ok(())
}

/// Asks placement `name`'s agent to stop it (`spec.kill`); one already gone is left alone.
pub async fn ask_to_stop(api: &Api<Placement>, name: &str, reason: &str, message: &str) -> Result<(), Error> {
    let patch = serde_json::json!({ "spec": { "kill": { "reason": reason, "message": message } } });
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => tracing::info!(placement = %name, reason, "asked to stop"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
