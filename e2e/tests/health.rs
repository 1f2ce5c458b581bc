//! Health checks end to end, with real containers: a long-running Job whose
//! container serves a directory with busybox httpd on its host port (the
//! directory is a host path the test owns), and an HTTP health check on
//! `/health`. The agent reports the placement healthy; once the test
//! removes the file, checks answer 404, the agent stops the container and
//! the placement ends `Failed`/`Unhealthy` saying what the check saw.

use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::job::ShellJob;
use berth_e2e::{Containerd, Registry, build_demo_image};

const WAIT: Duration = Duration::from_secs(120);

const PLACEMENT: &str = "placements.berth.dev/web-main-0-0";

#[test]
fn an_http_check_reports_healthy_then_stops_the_container_once_it_fails() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("health"), "ok\n").expect("writing the health page");
    let allowed = format!("--allowed-host-paths={}", site.path().display());
    let mut berth = Berth::up_with(containerd.socket(), "1", "512Mi", &[&allowed]);

    let image = format!("{}/berth/demo:latest", registry.host());
    let script = "exec httpd -f -p 127.0.0.1:$PORT0 -h /www";
    let job = ShellJob::new("web", &image, script).group_fields(&format!(
        "ports:\n  - name: http\n\
         mounts:\n  - hostPath: {}\n    path: /www\n    readOnly: true\n\
         terminationGracePeriodSeconds: 2\n\
         healthChecks:\n  - http:\n      path: /health\n      portIndex: 0\n    \
         gracePeriodSeconds: 5\n    intervalSeconds: 1\n    timeoutSeconds: 2\n    maxConsecutiveFailures: 3",
        site.path().display()
    ));
    berth.apply(&job.yaml());

    let port = berth.wait("the placement to run and be healthy", WAIT, |b| {
        let phase = b.jsonpath(PLACEMENT, ".status.phase");
        let healthy = b.jsonpath(PLACEMENT, ".status.health.healthy");
        match (phase.as_str(), healthy.as_str()) {
            ("Running", "true") => Ok(b.jsonpath(PLACEMENT, ".status.ports[0]")),
            _ => Err(b.jsonpath(PLACEMENT, ".status")),
        }
    });
    assert!(port.parse::<u16>().is_ok(), "status.ports[0] is {port:?}");
    assert_eq!(berth.jsonpath(PLACEMENT, ".status.health.consecutiveFailures"), "0");
    assert!(!berth.jsonpath(PLACEMENT, ".status.health.lastTransitionTime").is_empty());
    let wide = berth.kubectl(&["get", "placements.berth.dev", "web-main-0-0", "-o", "wide"]);
    let table = String::from_utf8_lossy(&wide.stdout);
    assert!(table.contains("HEALTHY") && table.contains("true"), "{table}");

    std::fs::remove_file(site.path().join("health")).expect("removing the health page");
    let reason =
        berth.wait("the placement to end Unhealthy", WAIT, |b| match b.jsonpath(PLACEMENT, ".status.phase").as_str() {
            "Failed" | "Killed" | "Succeeded" | "Lost" => Ok(b.jsonpath(PLACEMENT, ".status.reason")),
            _ => Err(b.jsonpath(PLACEMENT, ".status")),
        });
    let status = berth.jsonpath(PLACEMENT, ".status");
    assert_eq!(reason, "Unhealthy", "{status}");
    let message = berth.jsonpath(PLACEMENT, ".status.message");
    assert!(message.contains("3 times in a row: GET /health: status 404"), "{message}");
    assert_eq!(berth.jsonpath(PLACEMENT, ".status.health.healthy"), "false", "{status}");
    assert_eq!(berth.jsonpath(PLACEMENT, ".status.health.consecutiveFailures"), "3", "{status}");
    let health_message = berth.jsonpath(PLACEMENT, ".status.health.message");
    assert_eq!(health_message, "GET /health: status 404", "{status}");
    drop(berth);
    drop(registry);
    drop(containerd);
}
