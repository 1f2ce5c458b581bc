//! The batch rules against a real in-process API server and the
//! controllers, with an agent registered by the test where nothing runs:
//! the test plays the agent, driving each placement's status by hand as
//! the node agent would. A three-stage DAG starts each stage only once the
//! one before it succeeded; a failed instance is retried as its next
//! attempt after its backoff and fails the Job past its limit; and the
//! `Offers` path obeys `dependsOn` the same way. Capacity freed goes to a
//! waiting higher-priority Job before a lower one.

// Its agent config is not used: the test plays the agent.
#[allow(dead_code)]
mod batch_support;
#[allow(dead_code)]
mod server;

use batch_support::*;
use berth_api::framework::Mode;
use berth_api::retry::RetryPolicy;
use berth_api::{Job, JobSpec, Phase};
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

/// Runs the three-stage `etl` Job to completion, checking that each stage
/// starts only once the one before it succeeded.
async fn three_stages(client: &Client, framework: Option<&str>) {
    let groups = vec![group("extract", 2, &[]), group("transform", 1, &["extract"]), group("load", 1, &["transform"])];
    submit(client, "etl", framework, groups).await;
    placed(client, "etl", &["etl-extract-0-0", "etl-extract-1-0"]).await;
    let j =
        job_when(client, "etl", "transform to wait for extract", |j| group_phase(j, 1).as_deref() == Some("Waiting"))
            .await;
    assert_eq!(j.status.as_ref().unwrap().groups[1].message.as_deref(), Some("waiting for extract"));

    finish(client, "etl-extract-0-0", Phase::Succeeded, 0).await;
    job_when(client, "etl", "extract's first success in the status", |j| {
        j.status.as_ref().is_some_and(|s| s.groups[0].tasks.succeeded == 1)
    })
    .await;
    assert_eq!(placements(client, "etl").await.unwrap(), ["etl-extract-0-0", "etl-extract-1-0"], "half a stage");

    finish(client, "etl-extract-1-0", Phase::Succeeded, 0).await;
    placed(client, "etl", &["etl-extract-0-0", "etl-extract-1-0", "etl-transform-0-0"]).await;
    finish(client, "etl-transform-0-0", Phase::Succeeded, 0).await;
    placed(client, "etl", &["etl-extract-0-0", "etl-extract-1-0", "etl-load-0-0", "etl-transform-0-0"]).await;
    finish(client, "etl-load-0-0", Phase::Succeeded, 0).await;
    let j = job_when(client, "etl", "etl to complete", |j| condition(j, "Complete").is_some_and(|c| c.is_true())).await;
    let progressing = condition(&j, "Progressing").unwrap();
    assert_eq!((progressing.status.as_str(), progressing.reason.as_str()), ("False", "Complete"));
    let phases: Vec<Option<String>> = (0..3).map(|i| group_phase(&j, i)).collect();
    assert!(phases.iter().all(|p| p.as_deref() == Some("Complete")), "{phases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_of_a_dag_is_placed_only_after_the_one_before_it_succeeded() {
    let sys = start(None).await;
    three_stages(&sys.client, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offers_path_obeys_depends_on() {
    let sys = start(Some(Mode::Offers)).await;
    three_stages(&sys.client, Some("fw")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_instance_is_retried_after_its_backoff_and_fails_the_job_past_its_limit() {
    let sys = start(None).await;
    let c = &sys.client;
    let mut g = group("main", 1, &[]);
    g.retries = Some(RetryPolicy { limit: Some(1), backoff_seconds: Some(1), max_backoff_seconds: Some(1) });
    submit(c, "flaky", None, vec![g]).await;
    placed(c, "flaky", &["flaky-main-0-0"]).await;

    finish(c, "flaky-main-0-0", Phase::Failed, 3).await;
    placed(c, "flaky", &["flaky-main-0-0", "flaky-main-0-1"]).await;
    let j = job_when(c, "flaky", "the retry in the status", |j| {
        j.status.as_ref().is_some_and(|s| s.groups[0].instances.first().is_some_and(|i| i.attempts == 2))
    })
    .await;
    let i = &j.status.as_ref().unwrap().groups[0].instances[0];
    assert_eq!((i.failures, i.last_exit_code, i.placement.as_deref()), (1, Some(3), Some("flaky-main-0-1")));
    assert!(condition(&j, "Failed").is_none_or(|f| !f.is_true()), "one failure within the limit: {j:?}");
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    server::eventually(c, "a Retrying event", async || {
        let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        let msgs: Vec<String> = list.into_iter().filter_map(|e| e.message).collect();
        let want = "Retrying task main[0] after exit code 3, attempt 2";
        if msgs.iter().any(|m| m == want) { Ok(()) } else { Err(format!("{msgs:?}")) }
    })
    .await;

    finish(c, "flaky-main-0-1", Phase::Failed, 4).await;
    let j = job_when(c, "flaky", "flaky to fail", |j| condition(j, "Failed").is_some_and(|f| f.is_true())).await;
    let failed = condition(&j, "Failed").unwrap();
    assert!(failed.message.contains("task main[0] failed 2 time(s) in 2 attempt(s)"), "{}", failed.message);
    assert!(failed.message.contains("exit code 4"), "{}", failed.message);
    assert_eq!(placements(c, "flaky").await.unwrap(), ["flaky-main-0-0", "flaky-main-0-1"], "no third attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_higher_priority_job_gets_freed_capacity_before_a_lower_one() {
    let sys = start(None).await;
    let c = &sys.client;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    let sized = |name: &str, cpu: &str, priority: i32| {
        let mut g = group("main", 1, &[]);
        g.container.resources.cpu = Some(cpu.into());
        Job::new(name, JobSpec { task_groups: vec![g], priority: Some(priority), ..Default::default() })
    };
    jobs.create(&PostParams::default(), &sized("blocker", "3500m", 0)).await.unwrap();
    placed(c, "blocker", &["blocker-main-0-0"]).await;
    run(c, "blocker-main-0-0").await;
    // Neither fits in the 500m left; once the blocker ends, either would, but not both.
    jobs.create(&PostParams::default(), &sized("high", "3", 10)).await.unwrap();
    jobs.create(&PostParams::default(), &sized("low", "2", 0)).await.unwrap();
    for name in ["high", "low"] {
        job_when(c, name, &format!("{name} to wait for capacity"), |j| {
            condition(j, "Scheduled").is_some_and(|s| s.reason == "Unschedulable")
        })
        .await;
    }

    finish(c, "blocker-main-0-0", Phase::Succeeded, 0).await;
    placed(c, "high", &["high-main-0-0"]).await;
    assert!(placements(c, "low").await.unwrap().is_empty(), "the lower-priority Job took nothing");
    run(c, "high-main-0-0").await;
    finish(c, "high-main-0-0", Phase::Succeeded, 0).await;
    placed(c, "low", &["low-main-0-0"]).await;
}
