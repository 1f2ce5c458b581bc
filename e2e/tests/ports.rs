//! Host ports end to end: a Job asks for a port, the scheduler gives each
//! instance its own from the agent's range (`berth up`'s default
//! 31000-32000), the agent passes it as `$PORT0` / `$PORT_HTTP` and reports
//! it in the placement's `status.ports`; the container (host network) serves
//! on it, and the test reaches it from the host at 127.0.0.1:<port>.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use berth_e2e::berth::Berth;
use berth_e2e::{Containerd, Registry, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);

fn web_job(image: &str) -> String {
    web_job_named(image, "http")
}

fn web_job_named(image: &str, port_name: &str) -> String {
    // busybox httpd, bound to loopback only, serving a page that names the port it was given.
    let script = "busybox mkdir -p /tmp/www && echo \"hello from port $PORT_HTTP\" > /tmp/www/index.html \
                  && exec busybox httpd -f -p 127.0.0.1:$PORT0 -h /tmp/www";
    format!(
        r#"apiVersion: berth.dev/v1alpha1
kind: Job
metadata:
  name: web
  namespace: default
spec:
  taskGroups:
    - name: main
      instances: 2
      image: {image}
      command: ["/bin/sh", "-c"]
      args: [{script:?}]
      ports:
        - name: {port_name}
      resources:
        cpu: 100m
        memory: 32Mi
"#
    )
}

/// What `GET /` on 127.0.0.1:`port` answers, or why it could not be asked.
fn get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| format!("read {port}: {e}"))?;
    Ok(body)
}

#[test]
fn two_instances_get_their_own_host_ports_and_answer_on_them_from_the_host() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let mut berth = Berth::up(containerd.socket(), "1", "512Mi");
    let image = format!("{}/berth/demo:latest", registry.host());
    let out = berth.kubectl_stdin(&["apply", "-f", "-"], &web_job(&image));
    assert!(out.status.success(), "kubectl apply failed: {}", output_text(&out));

    let mut ports = Vec::new();
    for i in 0..2 {
        let placement = format!("placements.berth.dev/web-main-{i}-0");
        let port = berth.wait(&format!("{placement} to run with a port"), WAIT, |b| {
            let phase = b.jsonpath(&placement, ".status.phase");
            let port = b.jsonpath(&placement, ".status.ports[0]");
            match (phase.as_str(), port.parse::<u16>()) {
                ("Running", Ok(p)) => Ok(p),
                _ => Err(b.jsonpath(&placement, ".status")),
            }
        });
        assert!((31000..=32000).contains(&port), "{placement} got port {port}, outside the agent's 31000-32000");
        ports.push(port);
    }
    assert_ne!(ports[0], ports[1], "two instances on one agent share a port");

    for port in &ports {
        let answer = berth.wait(&format!("the server on port {port} to answer"), WAIT, |_| get(*port));
        assert!(answer.contains(&format!("hello from port {port}")), "port {port} answered: {answer}");
    }

    // `kubectl get -o wide` shows the ports; the agent's ledger holds them.
    let wide = berth.kubectl(&["get", "placements.berth.dev", "-o", "wide"]);
    let table = String::from_utf8_lossy(&wide.stdout);
    assert!(table.contains("PORTS"), "{table}");
    for port in &ports {
        assert!(table.contains(&port.to_string()), "{table}");
    }
    let agents = berth.kubectl(&["get", "agents.berth.dev", "-o", "wide"]);
    let agents = String::from_utf8_lossy(&agents.stdout);
    assert!(agents.contains("PORTS") && agents.contains("31000"), "{agents}");
    let held = berth.jsonpath("agents.berth.dev/agent-1", ".status.claims[*].ports");
    for port in &ports {
        assert!(held.contains(&port.to_string()), "the ledger holds {held}");
    }
    drop(berth);
    drop(registry);
    drop(containerd);
}

#[test]
fn a_bad_port_name_is_refused_naming_the_field_and_nothing_is_stored() {
    let containerd = Containerd::start();
    let berth = Berth::up(containerd.socket(), "1", "512Mi");
    let out = berth.kubectl_stdin(&["apply", "-f", "-"], &web_job_named("registry.invalid/x:1", "Not_A_Label"));
    assert!(!out.status.success(), "a bad port name was accepted: {}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.taskGroups[0].ports[0].name"), "kubectl said: {stderr}");
    let get = berth.kubectl(&["get", "jobs.berth.dev", "web"]);
    assert!(
        !get.status.success() && String::from_utf8_lossy(&get.stderr).contains("NotFound"),
        "{}",
        output_text(&get)
    );
    drop(berth);
    drop(containerd);
}
