//! The claim gate against a real in-process API server and the agent on the
//! fake runtime: a placement runs only once the agent's ledger holds a claim
//! for it; one never claimed ends `Failed`/`Unclaimed` after the agent's
//! claim wait; one that ends while it waits is never started; one that would
//! overcommit the agent is refused even when the ledger says it fits. And,
//! once claimed, a pull that fails shows `ImagePullBackOff` until it succeeds.

use std::time::Duration;

use berth_agent::fake::Call;
use berth_agent::supervisor::container_id;
use berth_api::{Phase, Placement, Resources};
use kube::api::{Patch, PatchParams};

mod support;
use support::{AGENT, System, claim, claim_as, create_placement, eventually, placements};

/// The agent of `support::start`, whose placements wait `claim_wait` for
/// their claims and whose containers get 1 s between SIGTERM and SIGKILL.
async fn start(claim_wait: Duration) -> System {
    support::start(|c| {
        c.kill_grace = Duration::from_secs(1);
        c.claim_wait = claim_wait;
    })
    .await
}

async fn create(sys: &System, name: &str) -> Placement {
    create_with(sys, name, "100m").await
}

async fn create_with(sys: &System, name: &str, cpu: &str) -> Placement {
    create_full(sys, name, "registry.test/demo:1", cpu).await
}

async fn create_with_image(sys: &System, name: &str, image: &str) -> Placement {
    create_full(sys, name, image, "100m").await
}

async fn create_full(sys: &System, name: &str, image: &str, cpu: &str) -> Placement {
    create_placement(sys, name, |c| {
        c.image = image.into();
        c.resources.cpu = Some(cpu.into());
    })
    .await
}

/// The placement's phase, reason and message.
async fn phase(sys: &System, name: &str) -> (Phase, String, String) {
    let st = placements(sys).get(name).await.unwrap().status.unwrap_or_default();
    (st.phase, st.reason.unwrap_or_default(), st.message.unwrap_or_default())
}

async fn running(sys: &System, name: &str) {
    eventually(&format!("{name} to run"), async || match phase(sys, name).await {
        (Phase::Running, ..) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
}

/// What the fake runtime was asked to start for `p`.
fn touched(sys: &System, p: &Placement) -> Vec<Call> {
    let id = container_id(p);
    sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Start(s) if *s == id)).collect()
}

/// A claimed placement created after `p`: once it runs, the agent has seen `p`
/// (the watch delivers placements in the order they were written).
async fn seen_after(sys: &System, name: &str) {
    let sentinel = create(sys, name).await;
    claim(sys, &sentinel).await;
    running(sys, name).await;
}

#[tokio::test]
async fn a_placement_with_no_claim_is_never_started_and_ends_unclaimed() {
    let sys = start(Duration::from_secs(1)).await;
    let p = create(&sys, "by-hand").await;
    let (phase, reason, message) =
        eventually("the placement to fail Unclaimed", async || match phase(&sys, "by-hand").await {
            st @ (Phase::Failed, ..) => Ok(st),
            other => Err(format!("{other:?}")),
        })
        .await;
    assert_eq!((phase, reason.as_str()), (Phase::Failed, "Unclaimed"), "{message}");
    assert!(message.contains(&format!("no claim for it in agent {AGENT}'s ledger")), "{message}");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it: {:?}", sys.fake.calls());
    assert!(sys.fake.calls().is_empty(), "not even pulled: {:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_placement_starts_once_its_claim_appears() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create(&sys, "late").await;
    seen_after(&sys, "sentinel").await;
    assert_eq!(phase(&sys, "late").await.0, Phase::Pending, "it waits for its claim");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it yet");

    claim(&sys, &p).await;
    running(&sys, "late").await;
    assert_eq!(touched(&sys, &p), [Call::Start(container_id(&p))]);
}

#[tokio::test]
async fn a_placement_that_fails_while_waiting_is_never_started() {
    let sys = start(Duration::from_secs(5)).await;
    let p = create(&sys, "refused").await;
    seen_after(&sys, "sentinel").await;
    // As the allocator refuses a placement its offer cannot cover.
    let refusal = serde_json::json!({"status": {"phase": "Failed", "reason": "OfferRefused", "message": "refused"}});
    placements(&sys).patch_status("refused", &PatchParams::default(), &Patch::Merge(&refusal)).await.unwrap();

    // An unclaimed placement created after the refusal fails once its wait
    // is over; by then the refused one's wait is over too.
    create(&sys, "later").await;
    eventually("the later placement to fail Unclaimed", async || match phase(&sys, "later").await {
        (Phase::Failed, r, _) if r == "Unclaimed" => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    let (phase, reason, _) = phase(&sys, "refused").await;
    assert_eq!((phase, reason.as_str()), (Phase::Failed, "OfferRefused"), "the refusal is kept");
    assert_eq!(touched(&sys, &p), [], "nothing was started for it: {:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_placement_that_would_overcommit_the_agent_fails_even_when_the_ledger_says_it_fits() {
    let sys = start(Duration::from_secs(30)).await;
    let first = create_with(&sys, "first", "1500m").await;
    claim(&sys, &first).await;
    running(&sys, "first").await;

    // A wrong ledger: the claim holds less than the placement needs.
    let second = create_with(&sys, "second", "1500m").await;
    claim_as(&sys, &second, &Resources { cpu: Some("100m".into()), memory: Some("64Mi".into()) }).await;
    let (ended, reason, message) =
        eventually("the placement to fail Overcommitted", async || match phase(&sys, "second").await {
            st @ (Phase::Failed, ..) => Ok(st),
            other => Err(format!("{other:?}")),
        })
        .await;
    assert_eq!((ended, reason.as_str()), (Phase::Failed, "Overcommitted"), "{message}");
    assert!(message.contains("cpu 3 of 2"), "the message says what is short: {message}");
    assert_eq!(touched(&sys, &second), [], "nothing was started for it: {:?}", sys.fake.calls());
    assert_eq!(phase(&sys, "first").await.0, Phase::Running, "the first keeps running");
}

#[tokio::test]
async fn a_pull_that_fails_twice_backs_off_then_runs_with_the_backoff_reason_cleared() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create_with_image(&sys, "flaky", "registry.test/flaky:1").await;
    claim(&sys, &p).await;
    let message = eventually("the pull to back off", async || match phase(&sys, "flaky").await {
        (Phase::Staging, reason, message) if reason == "ImagePullBackOff" => Ok(message),
        other => Err(format!("{other:?}")),
    })
    .await;
    assert!(message.contains("failed") && message.contains("attempt"), "{message}");
    running(&sys, "flaky").await;
    let (_, reason, message) = phase(&sys, "flaky").await;
    assert_eq!((reason.as_str(), message.as_str()), ("", ""), "the backoff reason outlived the pull");
    let pulls = sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Pull(_))).count();
    assert_eq!(pulls, 3, "{:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_running_placement_marked_lost_is_killed_at_once_and_not_reported_on() {
    let sys = start(Duration::from_secs(600)).await;
    let p = create(&sys, "replaced").await;
    claim(&sys, &p).await;
    running(&sys, "replaced").await;

    // The node-lifecycle controller judged the agent lost and the task was replaced elsewhere.
    let lost = serde_json::json!({"status": {"phase": "Lost", "reason": berth_api::placement::REASON_AGENT_LOST}});
    placements(&sys).patch_status("replaced", &PatchParams::default(), &Patch::Merge(&lost)).await.unwrap();
    let id = container_id(&p);
    eventually("the container to be killed and removed", async || {
        let calls = sys.fake.calls();
        match calls.contains(&Call::Remove(id.clone())) {
            true => Ok(calls),
            false => Err(format!("{calls:?}")),
        }
    })
    .await;
    let kills: Vec<Call> = sys.fake.calls().into_iter().filter(|c| matches!(c, Call::Kill(k, _) if *k == id)).collect();
    assert_eq!(kills, [Call::Kill(id.clone(), libc::SIGKILL)], "SIGKILL at once, no grace period");
    seen_after(&sys, "after").await;
    let (phase, reason, _) = phase(&sys, "replaced").await;
    assert_eq!((phase, reason.as_str()), (Phase::Lost, berth_api::placement::REASON_AGENT_LOST));
}
