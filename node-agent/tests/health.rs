//! Health checks run by the agent (fake runtime, real in-process API
//! server): an HTTP check against a server the test runs, a TCP check
//! against a listener the test opens and closes, the grace period, a
//! command check's exit code, and `status.health` written only when it
//! changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use berth_agent::fake::Call;
use berth_agent::runtime::ExecOutcome;
use berth_agent::supervisor::container_id;
use berth_api::health::{HealthCheck, HealthStatus, HttpCheck, TcpCheck};
use berth_api::ports::PortRequest;
use berth_api::{Phase, Placement, PlacementStatus};
use kube::ResourceExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod support;
use support::{System, claim_ports, create_placement, eventually, placements, status_when};

/// An HTTP server on 127.0.0.1 answering every request with `status`,
/// counting the requests it served.
struct Server {
    port: u16,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (status, hits) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicUsize::new(0)));
        let (s, h) = (status.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, h) = (s.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let code = s.load(Ordering::SeqCst);
                    let answer = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Server { port, status, hits }
    }
}

/// Creates placement `name` with one port and `checks`, claims it with
/// host port `port`, and waits until it runs.
async fn run(sys: &System, name: &str, port: u16, checks: Vec<HealthCheck>) -> Placement {
    let p = create_placement(sys, name, |c| {
        c.ports = vec![PortRequest::default()];
        c.health_checks = checks;
        c.termination_grace_period_seconds = Some(1);
    })
    .await;
    claim_ports(sys, &p, &p.spec.container.resources, &[port]).await;
    status_when(sys, name, "to run", |s| s.phase == Phase::Running).await;
    p
}

fn health(s: &PlacementStatus) -> HealthStatus {
    s.health.clone().unwrap_or_default()
}

/// A check every second with no grace period, stopping after `max` failures.
fn every_second(max: u32) -> HealthCheck {
    HealthCheck {
        interval_seconds: Some(1),
        timeout_seconds: Some(1),
        grace_period_seconds: Some(0),
        max_consecutive_failures: Some(max),
        ..Default::default()
    }
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn an_http_check_turns_healthy_then_fails_the_placement_after_its_max_failures() {
    let sys = support::start(|_| {}).await;
    let server = Server::start().await;
    let http = HttpCheck { path: Some("/health".into()), port_index: Some(0) };
    let p = run(&sys, "web", server.port, vec![HealthCheck { http: Some(http), ..every_second(2) }]).await;

    let healthy = status_when(&sys, "web", "to be healthy", |s| health(s).healthy).await;
    let h = health(healthy.status.as_ref().unwrap());
    assert_eq!((h.consecutive_failures, h.message.as_deref()), (0, None), "{h:?}");
    assert!(h.last_transition_time.is_some(), "{h:?}");

    // Passing checks are not written again: the placement does not change.
    let (version, hits) = (healthy.resource_version(), server.hits.load(Ordering::SeqCst));
    eventually("three more checks", async || {
        let now = server.hits.load(Ordering::SeqCst);
        if now >= hits + 3 { Ok(()) } else { Err(format!("{now} requests")) }
    })
    .await;
    let still = placements(&sys).get("web").await.unwrap();
    assert_eq!(still.resource_version(), version, "status written only on change: {:?}", still.status);

    server.status.store(500, Ordering::SeqCst);
    let failing = status_when(&sys, "web", "to fail a check", |s| !health(s).healthy).await;
    let h = health(failing.status.as_ref().unwrap());
    assert_eq!((h.consecutive_failures, h.message.as_deref()), (1, Some("GET /health: status 500")), "{h:?}");

    let done = status_when(&sys, "web", "to end", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Failed, Some("Unhealthy")), "{st:?}");
    let message = st.message.clone().unwrap_or_default();
    assert!(message.contains("2 times in a row: GET /health: status 500"), "{message}");
    assert_eq!(st.exit_code, Some(128 + libc::SIGTERM), "stopped with SIGTERM: {st:?}");
    assert_eq!((health(&st).healthy, health(&st).consecutive_failures), (false, 2), "{st:?}");
    let id = container_id(&p);
    assert!(sys.fake.calls().contains(&Call::Kill(id, libc::SIGTERM)), "{:?}", sys.fake.calls());
}

#[tokio::test]
async fn a_tcp_check_follows_a_listener_the_test_opens_and_closes() {
    let sys = support::start(|_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = HealthCheck { tcp: Some(TcpCheck { port_index: None }), ..every_second(0) };
    run(&sys, "db", port, vec![tcp]).await;
    status_when(&sys, "db", "to be healthy", |s| health(s).healthy).await;

    drop(listener);
    let refused = format!("connect 127.0.0.1:{port}: connection refused");
    let failing = status_when(&sys, "db", "to count two failures", |s| health(s).consecutive_failures >= 2).await;
    let st = failing.status.unwrap_or_default();
    assert_eq!((health(&st).healthy, health(&st).message), (false, Some(refused)), "{st:?}");
    assert_eq!(st.phase, Phase::Running, "maxConsecutiveFailures 0 never stops it");

    let _listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let back = status_when(&sys, "db", "to be healthy again", |s| health(s).healthy).await;
    let h = health(back.status.as_ref().unwrap());
    assert_eq!((h.consecutive_failures, h.message), (0, None));
}

#[tokio::test]
async fn failures_within_the_grace_period_do_not_count_but_a_pass_makes_it_healthy() {
    let sys = support::start(|_| {}).await;
    let port = closed_port().await;
    let tcp = HealthCheck { tcp: Some(TcpCheck::default()), grace_period_seconds: Some(5), ..every_second(1) };
    run(&sys, "slow-start", port, vec![tcp]).await;

    let seen = status_when(&sys, "slow-start", "to report a first result", |s| s.health.is_some()).await;
    let st = seen.status.unwrap_or_default();
    assert_eq!((health(&st).healthy, health(&st).consecutive_failures), (false, 0), "{st:?}");
    assert!(health(&st).message.unwrap_or_default().contains("connection refused"), "{st:?}");
    assert_eq!(st.phase, Phase::Running, "a failure in the grace period does not stop it: {st:?}");

    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    status_when(&sys, "slow-start", "to be healthy", |s| health(s).healthy).await;
    drop(listener);
    let done = status_when(&sys, "slow-start", "to end once failures count", |s| s.phase.is_terminal()).await;
    let st = done.status.unwrap_or_default();
    assert_eq!((st.phase, st.reason.as_deref()), (Phase::Failed, Some("Unhealthy")), "{st:?}");
}

#[tokio::test]
async fn a_command_check_runs_in_the_container_and_its_exit_code_decides() {
    let sys = support::start(|_| {}).await;
    let check = HealthCheck { command: vec!["test".into(), "-f".into(), "/tmp/ok".into()], ..every_second(0) };
    let p = run(&sys, "cmd", closed_port().await, vec![check.clone()]).await;
    let id = container_id(&p);
    sys.fake.script_exec(&id, ExecOutcome::Exited { code: 1, output: "not yet\n".into() });

    let failing = status_when(&sys, "cmd", "to fail its command", |s| health(s).consecutive_failures >= 1).await;
    let h = health(failing.status.as_ref().unwrap());
    assert_eq!(h.message.as_deref(), Some("command exited 1: not yet"), "{h:?}");
    sys.fake.script_exec(&id, ExecOutcome::Exited { code: 0, output: String::new() });
    status_when(&sys, "cmd", "to be healthy", |s| health(s).healthy).await;
    assert!(sys.fake.calls().contains(&Call::Exec(id.clone(), check.command.clone())), "{:?}", sys.fake.calls());

    sys.fake.script_exec(&id, ExecOutcome::TimedOut);
    let slow = status_when(&sys, "cmd", "to time out", |s| !health(s).healthy).await;
    assert_eq!(health(slow.status.as_ref().unwrap()).message.as_deref(), Some("command timed out after 1s"));
}
