//! A batch Job's life beyond its tasks, against a real in-process API
//! server and the controllers, the test playing the agent: suspending stops
//! its running tasks (not failures) and resuming gives them their next
//! attempt; past `activeDeadlineSeconds` its tasks are stopped and it fails
//! with `DeadlineExceeded`; `ttlSecondsAfterFinished` after it finished it
//! is deleted, its placements with it.

// Its agent config is not used: the test plays the agent.
#[allow(dead_code)]
mod batch_support;
#[allow(dead_code)]
mod server;

use batch_support::*;
use berth_api::placement::{REASON_DEADLINE_EXCEEDED, REASON_SUSPENDED};
use berth_api::{Job, Phase, Placement};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

async fn set_suspend(jobs: &Api<Job>, name: &str, suspend: bool) {
    let patch = json!({ "spec": { "suspend": suspend } });
    jobs.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_job_stops_its_tasks_and_resuming_starts_their_next_attempt() {
    let sys = start(None).await;
    let c = &sys.client;
    let jobs = submit(c, "pause", None, vec![group("main", 2, &[])]).await;
    placed(c, "pause", &["pause-main-0-0", "pause-main-1-0"]).await;
    finish(c, "pause-main-0-0", Phase::Succeeded, 0).await;
    run(c, "pause-main-1-0").await;
    job_when(c, "pause", "a start time", |j| j.status.as_ref().is_some_and(|s| s.start_time.is_some())).await;

    set_suspend(&jobs, "pause", true).await;
    assert_eq!(stop_as_asked(c, "pause-main-1-0").await, REASON_SUSPENDED);
    let j = job_when(c, "pause", "pause to be suspended", |j| {
        j.status.as_ref().is_some_and(|s| s.phase.as_deref() == Some("Suspended") && s.tasks.pending == 1)
    })
    .await;
    assert!(condition(&j, "Suspended").is_some_and(|s| s.is_true()), "{:?}", j.status);
    let progressing = condition(&j, "Progressing").unwrap();
    assert_eq!((progressing.status.as_str(), progressing.reason.as_str()), ("False", "Suspended"));
    assert!(condition(&j, "Failed").is_none(), "a suspended task is no failure: {:?}", j.status);
    assert_eq!(j.status.as_ref().unwrap().start_time, None, "startTime is reset while suspended");
    assert_eq!(group_phase(&j, 0).as_deref(), Some("Suspended"));
    assert_eq!(placements(c, "pause").await.unwrap(), ["pause-main-0-0", "pause-main-1-0"], "nothing new starts");

    set_suspend(&jobs, "pause", false).await;
    placed(c, "pause", &["pause-main-0-0", "pause-main-1-0", "pause-main-1-1"]).await;
    finish(c, "pause-main-1-1", Phase::Succeeded, 0).await;
    let j = job_when(c, "pause", "pause to complete", |j| condition(j, "Complete").is_some_and(|c| c.is_true())).await;
    let i = &j.status.as_ref().unwrap().groups[0].instances[1];
    assert_eq!((i.attempts, i.failures), (2, 0));
    assert!(condition(&j, "Suspended").is_some_and(|s| !s.is_true()), "{:?}", j.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_deadline_a_job_stops_its_tasks_and_fails() {
    let sys = start(None).await;
    let c = &sys.client;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let mut job =
        Job::new("slow", berth_api::JobSpec { task_groups: vec![group("main", 1, &[])], ..Default::default() });
    job.spec.active_deadline_seconds = Some(1);
    jobs.create(&Default::default(), &job).await.unwrap();
    placed(c, "slow", &["slow-main-0-0"]).await;
    run(c, "slow-main-0-0").await;

    assert_eq!(stop_as_asked(c, "slow-main-0-0").await, REASON_DEADLINE_EXCEEDED);
    let j = job_when(c, "slow", "slow to fail", |j| condition(j, "Failed").is_some_and(|f| f.is_true())).await;
    assert_eq!(condition(&j, "Failed").unwrap().reason, REASON_DEADLINE_EXCEEDED);
    assert_eq!(j.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    server::eventually(c, "a DeadlineExceeded event", async || {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let reasons: Vec<String> = list.into_iter().filter_map(|e| e.reason).collect();
        if reasons.iter().any(|r| r == "DeadlineExceeded") { Ok(()) } else { Err(format!("{reasons:?}")) }
    })
    .await;
    assert_eq!(placements(c, "slow").await.unwrap(), ["slow-main-0-0"], "nothing new starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_deleted_with_its_placements_after_its_ttl() {
    let sys = start(None).await;
    let c = &sys.client;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let mut job =
        Job::new("brief", berth_api::JobSpec { task_groups: vec![group("main", 1, &[])], ..Default::default() });
    job.spec.ttl_seconds_after_finished = Some(1);
    jobs.create(&Default::default(), &job).await.unwrap();
    placed(c, "brief", &["brief-main-0-0"]).await;
    finish(c, "brief-main-0-0", Phase::Succeeded, 0).await;

    server::eventually(c, "brief to be deleted", async || match jobs.get_opt("brief").await {
        Ok(None) => Ok(()),
        other => Err(format!("{:?}", other.map(|j| j.map(|j| j.status)))),
    })
    .await;
    // The agent's finalizer holds each placement until it has stopped its container.
    let api: Api<Placement> = Api::namespaced(c.clone(), "default");
    server::eventually(c, "the placement to be deleted with it", async || {
        let p = api.get_opt("brief-main-0-0").await.map_err(|e| e.to_string())?;
        match p {
            None => Ok(()),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(p) => Err(format!("{:?}", p.metadata)),
        }
    })
    .await;
}
