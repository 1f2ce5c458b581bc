//! The node agent against a real in-process API server (fake runtime): a
//! phase another writer sets while the agent works on a placement — the
//! allocator refusing it, an operator failing it — stands; the agent does
//! not overwrite it and does not start the container.

mod server;

use std::sync::Arc;

use berth_agent::fake::{Call, Fake};
use berth_agent::supervisor::container_id;
use berth_api::{Container, Phase, Placement, PlacementSpec, Resources};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn placement(name: &str, image: &str) -> Placement {
    Placement::new(
        name,
        PlacementSpec {
            agent: "agent-1".into(),
            job: "external".into(),
            task_group: "main".into(),
            container: Container {
                image: image.into(),
                resources: Resources { cpu: Some("100m".into()), memory: Some("32Mi".into()) },
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn a_placement_failed_by_another_writer_while_staging_is_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _stop, stopped) = server::start(dir.path()).await;
    server::controllers(&client, &stopped);
    let fake = Arc::new(Fake::new(false));
    let config = server::agent_config("agent-1", dir.path(), "1", "1Gi", None);
    let logs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(berth_agent::run(client.clone(), fake.clone(), config, logs, stopped.wait()));
    let api: Api<Placement> = Api::namespaced(client.clone(), "default");

    let slow = api.create(&PostParams::default(), &placement("slow", "registry.test/slow:1")).await.unwrap();
    server::claim(&client, "agent-1", &slow).await;
    server::eventually(&client, "the agent to stage it", async || {
        let p = api.get("slow").await.map_err(|e| e.to_string())?;
        let phase = p.status.map(|s| s.phase).unwrap_or_default();
        if phase == Phase::Staging { Ok(()) } else { Err(format!("{phase:?}")) }
    })
    .await;
    let failed = json!({"status": {"phase": "Failed", "reason": "OfferRefused", "message": "refused by the test"}});
    api.patch_status("slow", &PatchParams::default(), &Patch::Merge(&failed)).await.unwrap();
    fake.open_pulls();

    // A placement created after the pull opened goes through more writes than the
    // refused one's next write; once it has run, the refused one has had its turn.
    let after = api.create(&PostParams::default(), &placement("after", "registry.test/fast:1")).await.unwrap();
    server::claim(&client, "agent-1", &after).await;
    server::eventually(&client, "the next placement to succeed", async || {
        let p = api.get("after").await.map_err(|e| e.to_string())?;
        let phase = p.status.map(|s| s.phase).unwrap_or_default();
        if phase == Phase::Succeeded { Ok(()) } else { Err(format!("{phase:?}")) }
    })
    .await;
    let status = api.get("slow").await.unwrap().status.unwrap_or_default();
    assert_eq!((status.phase, status.reason.as_deref()), (Phase::Failed, Some("OfferRefused")), "{status:?}");
    let id = container_id(&slow);
    assert!(!fake.calls().contains(&Call::Start(id)), "the refused placement was started: {:?}", fake.calls());
}
