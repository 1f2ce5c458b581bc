//! The built-in batch framework end to end, with real containers
//! (containerd + runc) and the real kubectl: the examples in
//! `manifests/examples/` run to their stated outcomes; DAG stages start
//! only after the stages they depend on finished; retries hold their limit,
//! with backoff, and across the kill -9 of an agent (a lost attempt is not a
//! failure); `activeDeadlineSeconds`, `suspend` and `ttlSecondsAfterFinished`
//! do what they say; a dependency cycle is refused at apply.
//!
//! The tests share one `berth up` (see `support/batch_env.rs`), except the
//! agent kill, which needs two agents of its own.

#[path = "support/argocd.rs"]
mod argocd;
#[path = "support/batch_env.rs"]
mod support;

use std::time::{Duration, Instant};

use berth_api::placement::{REASON_AGENT_LOST, REASON_DEADLINE_EXCEEDED, REASON_SUSPENDED};
use berth_api::{InstanceStatus, Job, Phase};
use berth_e2e::{ShellJob, output_text};
use support::{Env, condition, finished_at, phase, placement, started, summary};

/// The one instance of the one group of `job`.
fn instance(job: &Job) -> InstanceStatus {
    let groups = job.status.as_ref().map(|s| s.groups.clone()).unwrap_or_default();
    groups
        .first()
        .and_then(|g| g.instances.first().cloned())
        .unwrap_or_else(|| panic!("no instance status: {groups:?}"))
}

#[test]
fn the_pipeline_example_runs_each_stage_only_after_the_stages_it_depends_on() {
    let env = Env::shared();
    env.apply(&env.example("pipeline.yaml"));
    let job = env.finished("pipeline", "Complete");
    let groups = job.status.clone().unwrap_or_default().groups;
    let phases: Vec<(String, Option<String>)> = groups.iter().map(|g| (g.name.clone(), g.phase.clone())).collect();
    let complete = |n: &str| (n.to_string(), Some("Complete".to_string()));
    assert_eq!(phases, ["extract", "reference", "transform", "load"].map(complete), "{groups:?}");

    let ps = env.placements("pipeline").unwrap();
    assert_eq!(ps.len(), 5, "one placement per instance, none retried: {}", summary(&ps));
    assert!(ps.iter().all(|p| phase(p) == Phase::Succeeded), "{}", summary(&ps));
    let of = |group: &str| ps.iter().filter(|p| p.spec.task_group == group).collect::<Vec<_>>();
    for (stage, deps) in [("transform", &["extract", "reference"][..]), ("load", &["transform"][..])] {
        let deps_done = deps.iter().flat_map(|d| of(d)).map(finished_at).max().expect("dependencies ran");
        for p in of(stage) {
            assert!(
                started(p) >= deps_done,
                "{stage} started at {} before its dependencies {deps:?} finished at {deps_done}: {}",
                started(p),
                summary(&ps)
            );
        }
    }
    // The two shards ran at once (parallelism 2): each started before the other finished.
    let shards = of("extract");
    assert!(started(shards[0]) <= finished_at(shards[1]) && started(shards[1]) <= finished_at(shards[0]));

    let logs = env.berth.berth(&["logs", "pipeline"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    for line in
        ["extract: shard 0 done", "extract: shard 1 done", "reference: fetched", "transform: joined", "load: wrote"]
    {
        assert!(text.contains(line), "{line:?} missing from berth logs: {}", output_text(&logs));
    }
}

#[test]
fn the_stages_after_a_failed_one_never_start_and_say_skipped() {
    let env = Env::shared();
    let stage = |name: &str, deps: &str, script: &str| {
        format!(
            "    - name: {name}\n      dependsOn: [{deps}]\n      image: {}\n      command: [\"/bin/sh\", \"-c\", {script:?}]\n",
            env.image()
        )
    };
    let yaml = format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata:\n  name: broken\n  namespace: default\nspec:\n  taskGroups:\n{}{}{}",
        stage("first", "", "echo first fails; exit 2"),
        stage("second", "first", "echo second"),
        stage("third", "second", "echo third")
    );
    env.apply(&yaml);
    let job = env.finished("broken", "Failed");
    let groups = job.status.clone().unwrap_or_default().groups;
    let phases: Vec<Option<&str>> = groups.iter().map(|g| g.phase.as_deref()).collect();
    assert_eq!(phases, [Some("Failed"), Some("Skipped"), Some("Skipped")], "{groups:?}");
    let ps = env.placements("broken").unwrap();
    let names: Vec<&str> = ps.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
    assert_eq!(names, ["broken-first-0-0"], "only the failed stage ran: {}", summary(&ps));
}

#[test]
fn parallelism_one_runs_a_groups_instances_one_after_the_other() {
    let env = Env::shared();
    let job = ShellJob::new("serial", &env.image(), "echo \"instance $BERTH_INSTANCE\"; sleep 1")
        .instances(3)
        .group_fields("parallelism: 1");
    env.apply(&job.yaml());
    env.finished("serial", "Complete");
    let mut ps = env.placements("serial").unwrap();
    assert_eq!(ps.len(), 3, "{}", summary(&ps));
    ps.sort_by_key(started);
    for w in ps.windows(2) {
        assert!(started(&w[1]) >= finished_at(&w[0]), "two instances ran at once: {}", summary(&ps));
    }
}

#[test]
fn the_flaky_example_fails_twice_then_succeeds_within_its_retry_limit_with_backoff() {
    let env = Env::shared();
    env.apply(&env.example("flaky-retry.yaml"));
    let job = env.finished("flaky", "Complete");
    let i = instance(&job);
    assert_eq!((i.attempts, i.failures, i.phase, i.last_exit_code), (3, 2, Phase::Succeeded, Some(0)), "{i:?}");

    let ps = env.placements("flaky").unwrap();
    assert_eq!(ps.len(), 3, "{}", summary(&ps));
    for (name, want, exit) in [
        ("flaky-work-0-0", Phase::Failed, 1),
        ("flaky-work-0-1", Phase::Failed, 1),
        ("flaky-work-0-2", Phase::Succeeded, 0),
    ] {
        let p = placement(&ps, name).unwrap_or_else(|| panic!("{name} missing: {}", summary(&ps)));
        let code = p.status.as_ref().and_then(|s| s.exit_code);
        assert_eq!((phase(p), code), (want, Some(exit)), "{name}: {}", summary(&ps));
    }
    // backoffSeconds 1, doubled after the second failure.
    let gap = |a: &str, b: &str| started(placement(&ps, b).unwrap()) - finished_at(placement(&ps, a).unwrap());
    assert!(gap("flaky-work-0-0", "flaky-work-0-1") >= 1, "no backoff before the first retry: {ps:?}");
    assert!(gap("flaky-work-0-1", "flaky-work-0-2") >= 2, "the backoff did not double: {ps:?}");

    let (health, message) = argocd::health(&env.job_json("flaky").unwrap());
    assert_eq!((health.as_str(), message.as_str()), ("Healthy", "1/1 tasks succeeded"), "Argo CD's health");

    let logs = env.berth.berth(&["logs", "flaky"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("attempt 0\nfailing on purpose"), "{}", output_text(&logs));
    assert!(text.contains("attempt 2\nsucceeded"), "{}", output_text(&logs));
}

#[test]
fn a_task_that_always_fails_runs_its_retry_limit_plus_one_times_and_never_again() {
    let env = Env::shared();
    let job = ShellJob::new("doomed", &env.image(), "echo failing; exit 4")
        .group_fields("retries: {limit: 1, backoffSeconds: 1}");
    env.apply(&job.yaml());
    let job = env.finished("doomed", "Failed");
    let (_, _, message) = condition(&job, "Failed").unwrap();
    assert!(message.contains("exit code 4"), "the Failed condition names the exit code: {message}");
    let i = instance(&job);
    assert_eq!((i.attempts, i.failures, i.last_exit_code), (2, 2, Some(4)), "{i:?}");
    let (health, said) = argocd::health(&env.job_json("doomed").unwrap());
    assert_eq!((health.as_str(), said.as_str()), ("Degraded", message.as_str()), "Argo CD's health");

    // Nothing may start a third attempt later: not the next reconcile after
    // the backoff a third attempt would wait (2 s), nor one a change to the
    // Job triggers. So change it (a label: a watch event, a reconcile) and
    // watch the placements for longer than that backoff. The controller is
    // level-triggered: its periodic requeue (60 s) reads the same Job and
    // placements as the reconcile the label triggered, so it cannot decide
    // otherwise, and waiting for it would only slow the suite.
    let out = env.berth.kubectl(&["label", "jobs.berth.dev/doomed", "touched=yes"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let watch_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < watch_until {
        let ps = env.placements("doomed").unwrap();
        let names: Vec<&str> = ps.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
        assert_eq!(names, ["doomed-main-0-0", "doomed-main-0-1"], "{}", summary(&ps));
        assert!(ps.iter().all(|p| p.status.as_ref().and_then(|s| s.exit_code) == Some(4)), "{}", summary(&ps));
        std::thread::sleep(Duration::from_millis(250));
    }
    let again = env.job("doomed").unwrap();
    assert_eq!(instance(&again).attempts, 2, "{:?}", again.status);
}

#[test]
fn active_deadline_seconds_stops_a_sleeping_job_and_fails_it_deadline_exceeded() {
    let env = Env::shared();
    let job = ShellJob::new("sleepy", &env.image(), "echo started; exec sleep 3600")
        .spec_field("activeDeadlineSeconds: 3")
        .group_fields("terminationGracePeriodSeconds: 1");
    env.apply(&job.yaml());
    let job = env.finished("sleepy", "Failed");
    let (_, reason, message) = condition(&job, "Failed").unwrap();
    assert_eq!(reason, REASON_DEADLINE_EXCEEDED, "{message}");

    let name = "sleepy-main-0-0";
    let p = env.wait("sleepy", "its placement to be Killed", || {
        let ps = env.placements("sleepy")?;
        match placement(&ps, name) {
            Some(p) if phase(p) == Phase::Killed => Ok(p.clone()),
            _ => Err(summary(&ps)),
        }
    });
    let s = p.status.clone().unwrap_or_default();
    assert_eq!(s.reason.as_deref(), Some(REASON_DEADLINE_EXCEEDED), "{s:?}");
    let status = job.status.clone().unwrap_or_default();
    let ran = support::secs(status.completion_time.as_ref()) - support::secs(status.start_time.as_ref());
    assert!(ran >= 3, "failed {ran} s after it started, before its deadline: {status:?}");

    let id = s.container_id.expect("it ran in a container");
    let ns = env.berth.containerd_namespace.clone();
    env.wait("sleepy", "its container to be removed", || {
        let left = env.containerd.containers(&ns);
        if left.contains(&id) { Err(format!("{id} still in {left:?}")) } else { Ok(()) }
    });
}

#[test]
fn a_suspended_job_stops_its_task_and_a_resumed_one_runs_a_new_attempt_to_completion() {
    let env = Env::shared();
    // The first attempt would run for an hour; the one after the resume finishes.
    let script = "if [ \"$BERTH_ATTEMPT\" = 0 ]; then echo first; exec sleep 3600; fi; echo resumed";
    let job = ShellJob::new("pausable", &env.image(), script).group_fields("terminationGracePeriodSeconds: 1");
    env.apply(&job.yaml());
    env.wait("pausable", "its first attempt to run", || {
        let ps = env.placements("pausable")?;
        if placement(&ps, "pausable-main-0-0").is_some_and(|p| phase(p) == Phase::Running) {
            Ok(())
        } else {
            Err(summary(&ps))
        }
    });

    let (health, _) = argocd::health(&env.job_json("pausable").unwrap());
    assert_eq!(health, "Progressing", "Argo CD's health of a running Job");

    env.patch_spec("pausable", "{\"suspend\":true}");
    env.wait("pausable", "the task Killed/Suspended and the Job Suspended", || {
        let ps = env.placements("pausable")?;
        let job = env.job("pausable")?;
        let p = placement(&ps, "pausable-main-0-0").ok_or_else(|| summary(&ps))?;
        let killed =
            phase(p) == Phase::Killed && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some(REASON_SUSPENDED);
        let suspended = job.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Suspended");
        if killed && suspended && ps.len() == 1 { Ok(()) } else { Err(format!("{} {:?}", summary(&ps), job.status)) }
    });

    let (health, _) = argocd::health(&env.job_json("pausable").unwrap());
    assert_eq!(health, "Suspended", "Argo CD's health of a suspended Job");

    env.patch_spec("pausable", "{\"suspend\":false}");
    let job = env.finished("pausable", "Complete");
    let i = instance(&job);
    assert_eq!((i.attempts, i.failures, i.phase), (2, 0, Phase::Succeeded), "{i:?}");
    let ps = env.placements("pausable").unwrap();
    let resumed = placement(&ps, "pausable-main-0-1").unwrap_or_else(|| panic!("{}", summary(&ps)));
    assert!(started(resumed) >= finished_at(placement(&ps, "pausable-main-0-0").unwrap()), "{}", summary(&ps));
}

#[test]
fn a_finished_job_and_its_placements_are_deleted_after_its_ttl() {
    let env = Env::shared();
    let job = ShellJob::new("shortlived", &env.image(), "echo done").spec_field("ttlSecondsAfterFinished: 3");
    env.apply(&job.yaml());
    let done = env.finished("shortlived", "Complete");
    let completed = support::secs(done.status.as_ref().and_then(|s| s.completion_time.as_ref()));
    env.wait("shortlived", "the Job and its placements to be gone", || {
        let job = env.job("shortlived");
        let ps = env.placements("shortlived")?;
        match job {
            Err(e) if e.contains("NotFound") && ps.is_empty() => Ok(()),
            _ => Err(format!("job: {:?}; placements: {}", job.map(|j| j.status), summary(&ps))),
        }
    });
    let gone = jiff::Timestamp::now().as_second();
    assert!(gone - completed >= 3, "deleted {} s after it completed, before its TTL", gone - completed);
}

#[test]
fn a_job_whose_dependencies_form_a_cycle_is_refused_naming_the_field_and_nothing_is_stored() {
    let env = Env::shared();
    let group = |name: &str, dep: &str| {
        format!(
            "    - name: {name}\n      dependsOn: [{dep}]\n      image: {}\n      command: [\"true\"]\n",
            env.image()
        )
    };
    let yaml = format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Job\nmetadata:\n  name: circular\n  namespace: default\nspec:\n  taskGroups:\n{}{}{}",
        group("a", "c"),
        group("b", "a"),
        group("c", "b")
    );
    let out = env.berth.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a cycle was accepted: {}", output_text(&out));
    assert!(
        stderr.contains("spec.taskGroups[1].dependsOn[0]") && stderr.contains("a -> c -> b -> a"),
        "kubectl said: {stderr}"
    );
    assert!(stderr.contains("Invalid"), "a 422 Invalid: {stderr}");
    let err = env.job("circular").expect_err("nothing is stored");
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn a_retry_limit_holds_across_the_kill_9_of_an_agent_whose_attempt_is_lost_not_failed() {
    use berth_e2e::berth::{AgentSpec, Berth};
    use berth_e2e::{Containerd, Registry, build_demo_image};
    let agents = [
        AgentSpec { name: "agent-a", cpu: "1", memory: "512Mi" },
        AgentSpec { name: "agent-b", cpu: "1", memory: "512Mi" },
    ];
    // Its own two agents: killing one must not touch the other tests' tasks.
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let berth = Berth::cluster_with(containerd.socket(), &agents, &[], &["--agent-ttl-seconds", "6"]);
    let mut env = Env { berth, registry, containerd };

    // Attempt 0 fails; attempt 1 runs until its agent dies; a later one succeeds.
    let script = "case $BERTH_ATTEMPT in 0) echo failing; exit 1;; 1) echo running; exec sleep 3600;; esac; echo done";
    let job = ShellJob::new("survivor", &env.image(), script).group_fields("retries: {limit: 1, backoffSeconds: 1}");
    env.apply(&job.yaml());
    let doomed = env.wait("survivor", "attempt 1 to run after attempt 0 failed", || {
        let ps = env.placements("survivor")?;
        let failed = placement(&ps, "survivor-main-0-0").is_some_and(|p| phase(p) == Phase::Failed);
        match placement(&ps, "survivor-main-0-1") {
            Some(p) if failed && phase(p) == Phase::Running => Ok(p.spec.agent.clone()),
            _ => Err(summary(&ps)),
        }
    });

    env.berth.kill9(&doomed);
    let job = env.finished("survivor", "Complete");
    let i = instance(&job);
    assert_eq!((i.attempts, i.failures, i.phase), (3, 1, Phase::Succeeded), "{i:?}");
    let ps = env.placements("survivor").unwrap();
    let lost = placement(&ps, "survivor-main-0-1").unwrap();
    let reason = lost.status.as_ref().and_then(|s| s.reason.clone());
    assert_eq!((phase(lost), reason.as_deref()), (Phase::Lost, Some(REASON_AGENT_LOST)), "{}", summary(&ps));
    let last = placement(&ps, "survivor-main-0-2").unwrap_or_else(|| panic!("{}", summary(&ps)));
    assert!(last.spec.agent != doomed && phase(last) == Phase::Succeeded, "{}", summary(&ps));
    assert_eq!(ps.len(), 3, "{}", summary(&ps));
}

#[test]
fn freed_room_goes_to_a_waiting_job_of_higher_priority_before_an_older_one_of_lower() {
    let env = Env::shared();
    // 1200Mi each on the agent's 2Gi: one at a time, beside the other tests' small tasks.
    let big = |name: &str, script: &str, priority: i32| {
        ShellJob::new(name, &env.image(), script)
            .resources("100m", "1200Mi")
            .spec_field(&format!("priority: {priority}"))
            .group_fields("terminationGracePeriodSeconds: 1")
            .yaml()
    };
    env.apply(&big("blocker", "exec sleep 3600", 0));
    env.wait("blocker", "the blocker to run", || {
        let ps = env.placements("blocker")?;
        if ps.first().is_some_and(|p| phase(p) == Phase::Running) { Ok(()) } else { Err(summary(&ps)) }
    });
    env.apply(&big("low", "echo low", 0));
    env.apply(&big("high", "echo high; sleep 1", 10));
    for name in ["low", "high"] {
        env.wait(name, "both to wait for room", || {
            let job = env.job(name)?;
            let ps = env.placements(name)?;
            match condition(&job, "Scheduled") {
                Some((status, _, _)) if status == "False" && ps.is_empty() => Ok(()),
                other => Err(format!("{other:?}; {}", summary(&ps))),
            }
        });
    }

    let out = env.berth.kubectl(&["delete", "jobs.berth.dev", "blocker", "--wait=false"]);
    assert!(out.status.success(), "{}", output_text(&out));
    env.finished("high", "Complete");
    env.finished("low", "Complete");
    let (high, low) = (env.placements("high").unwrap(), env.placements("low").unwrap());
    assert!(
        started(&low[0]) >= finished_at(&high[0]),
        "the lower-priority Job ran before the higher one finished: {} / {}",
        summary(&high),
        summary(&low)
    );
}
