//! A service end to end (`manifests/examples/service.yaml` on two agents
//! with real containers): 4 busybox web servers on their own host ports,
//! checked over HTTP; a rolling update (maxSurge 1, maxUnavailable 1) that
//! never has fewer than 3 ready instances nor more than 5 live, watched
//! every ~200 ms throughout; an instance whose process exits is replaced;
//! `berth scale` and `berth rollout undo`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_e2e::berth::{AgentSpec, Berth, ClusterOptions};
use berth_e2e::{Containerd, Registry, build_demo_image, output_text};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);
const AGENTS: [AgentSpec; 2] =
    [AgentSpec { name: "agent-a", cpu: "2", memory: "1Gi" }, AgentSpec { name: "agent-b", cpu: "2", memory: "1Gi" }];

/// Two agents on one machine share its network: each gets its own
/// hostname (what `hostname` constraints match) and its own host ports.
const OPTIONS: ClusterOptions = ClusterOptions {
    listen: "127.0.0.1:0",
    apiserver: &[],
    controllers: &[],
    netns: &[],
    agent_flags: &[
        ("agent-a", &["--hostname", "host-a", "--ports", "31000-31499"]),
        ("agent-b", &["--hostname", "host-b", "--ports", "31500-31999"]),
    ],
};

/// The same for the test that runs beside the first: ports of its own, so
/// their httpds never try to bind the same port of this one machine.
const OTHER_OPTIONS: ClusterOptions = ClusterOptions {
    agent_flags: &[
        ("agent-a", &["--hostname", "host-a", "--ports", "32000-32499"]),
        ("agent-b", &["--hostname", "host-b", "--ports", "32500-32999"]),
    ],
    ..OPTIONS
};

/// The example, with the test registry's image and `version`.
fn example(registry: &str, version: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/examples/service.yaml");
    std::fs::read_to_string(path)
        .expect("reading the example")
        .replace("127.0.0.1:5000", registry)
        .replace("value: v1", &format!("value: {version}"))
}

/// `GET path` on 127.0.0.1:`port`: the body, or why not.
fn get(port: u64, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port as u16)).map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| format!("read {port}: {e}"))?;
    Ok(answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string())
}

/// The service's placements, as kubectl lists them.
fn placements(kubeconfig: &PathBuf) -> Result<Vec<Value>, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "placements.berth.dev", "-l", "berth.dev/job=web", "-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(output_text(&out));
    }
    let list: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("Pending")
}

fn live(p: &Value) -> bool {
    !matches!(phase(p), "Succeeded" | "Failed" | "Killed" | "Lost")
}

/// Running, healthy, and not being stopped.
fn ready(p: &Value) -> bool {
    phase(p) == "Running" && p["status"]["health"]["healthy"] == Value::Bool(true) && p["spec"]["kill"].is_null()
}

fn describe(ps: &[Value]) -> String {
    let mut v: Vec<String> = ps
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap_or("?");
            let env = &p["spec"]["env"][0]["value"];
            format!("{name}[{env} {} ready={} kill={}]", phase(p), ready(p), !p["spec"]["kill"].is_null())
        })
        .collect();
    v.sort();
    v.join(" ")
}

/// The ports of the live instances when exactly `n` are live, all ready
/// and serving `version` over HTTP.
fn serving(b: &Berth, n: usize, version: &str) -> Result<Vec<u64>, String> {
    let ps = placements(&b.kubeconfig)?;
    let l: Vec<&Value> = ps.iter().filter(|p| live(p)).collect();
    if l.len() != n || !l.iter().all(|p| ready(p)) {
        return Err(describe(&ps));
    }
    let ports: Vec<u64> = l.iter().filter_map(|p| p["status"]["ports"][0].as_u64()).collect();
    for port in &ports {
        let v = get(*port, "/version")?;
        if v != version {
            return Err(format!("port {port} serves {v:?}: {}", describe(&ps)));
        }
    }
    Ok(ports)
}

/// Watches the placements every ~200 ms from a thread, keeping the least
/// ready and the most live seen, and a timeline.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<(usize, usize, Vec<String>)>>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    fn start(kubeconfig: PathBuf) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((usize::MAX, 0, Vec::new())));
        let (s, w) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !s.load(Ordering::SeqCst) {
                if let Ok(ps) = placements(&kubeconfig) {
                    let ready = ps.iter().filter(|p| ready(p)).count();
                    let live = ps.iter().filter(|p| live(p)).count();
                    let mut g = w.lock().unwrap();
                    g.0 = g.0.min(ready);
                    g.1 = g.1.max(live);
                    g.2.push(format!("{:>6}ms ready {ready} live {live}: {}", t0.elapsed().as_millis(), describe(&ps)));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Watcher { stop, seen, thread }
    }

    /// (least ready, most live, timeline).
    fn finish(self) -> (usize, usize, String) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        let g = self.seen.lock().unwrap();
        (g.0, g.1, g.2.join("\n"))
    }
}

fn berth_ok(b: &Berth, args: &[&str]) -> String {
    let out = b.berth(args);
    assert!(out.status.success(), "berth {args:?} failed: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_service_rolls_out_within_its_bounds_restarts_scales_and_undoes() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let mut berth = Berth::cluster_opts(containerd.socket(), &AGENTS, &OPTIONS);
    berth.apply(&example(&registry.host(), "v1"));
    berth.wait("4 instances serving v1", WAIT, |b| serving(b, 4, "v1"));
    berth_ok(&berth, &["rollout", "status", "web", "--timeout", "60s"]);

    // The rolling update, watched throughout.
    let watcher = Watcher::start(berth.kubeconfig.clone());
    berth.apply(&example(&registry.host(), "v2"));
    let ports = berth.wait("4 instances serving v2", WAIT, |b| serving(b, 4, "v2"));
    let status = berth_ok(&berth, &["rollout", "status", "web", "--timeout", "60s"]);
    let (least_ready, most_live, timeline) = watcher.finish();
    assert!(
        least_ready >= 3 && most_live <= 5,
        "ready fell to {least_ready} (floor 3) or live rose to {most_live} (cap 5):\n{timeline}"
    );
    assert!(status.contains("revision 2") && status.contains("rolled out"), "{status}");
    let history = berth_ok(&berth, &["rollout", "history", "web"]);
    assert!(history.lines().count() >= 3 && history.contains("2*"), "{history}");

    // A process that exits is replaced by the instance's next attempt.
    let before = placements(&berth.kubeconfig).unwrap();
    let victim = before.iter().find(|p| live(p) && p["status"]["ports"][0].as_u64() == Some(ports[0])).unwrap();
    let name = victim["metadata"]["name"].as_str().unwrap().to_string();
    let _ = get(ports[0], "/cgi-bin/stop");
    berth.wait(&format!("{name} to fail and be replaced"), WAIT, |b| {
        let ps = placements(&b.kubeconfig)?;
        let old = ps.iter().find(|p| p["metadata"]["name"] == name.as_str()).map(|p| phase(p).to_string());
        match old.as_deref() {
            Some("Failed") | None => serving(b, 4, "v2").map(|_| ()),
            _ => Err(describe(&ps)),
        }
    });

    berth_ok(&berth, &["scale", "web", "web", "2"]);
    berth.wait("2 instances", WAIT, |b| serving(b, 2, "v2"));

    let undo = berth_ok(&berth, &["rollout", "undo", "web"]);
    assert!(undo.contains("rolled back to revision 1"), "{undo}");
    berth.wait("2 instances serving v1 again", WAIT, |b| serving(b, 2, "v1"));
    let status = berth_ok(&berth, &["rollout", "status", "web", "--timeout", "60s"]);
    assert!(status.contains("revision 3"), "{status}");
    drop(berth);
    drop(registry);
    drop(containerd);
}

#[test]
fn a_unique_hostname_constraint_keeps_one_instance_per_agent_through_a_rollout() {
    let containerd = Containerd::start();
    let registry = Registry::start();
    build_demo_image(&registry.host(), "berth/demo:latest");
    let mut berth = Berth::cluster_opts(containerd.socket(), &AGENTS, &OTHER_OPTIONS);
    let unique = |version: &str| {
        example(&registry.host(), version)
            .replace("instances: 4", "instances: 2\n      constraints: [[\"hostname\", \"UNIQUE\"]]")
    };
    berth.apply(&unique("v1"));
    berth.wait("2 instances serving v1", WAIT, |b| serving(b, 2, "v1"));

    let watcher = Watcher::start(berth.kubeconfig.clone());
    berth.apply(&unique("v2"));
    // Never two live instances on one agent: checked on every look.
    berth.wait("2 instances serving v2, one per agent", WAIT, |b| {
        let ps = placements(&b.kubeconfig)?;
        let mut agents: Vec<&str> = ps.iter().filter(|p| live(p)).filter_map(|p| p["spec"]["agent"].as_str()).collect();
        agents.sort();
        let n = agents.len();
        agents.dedup();
        assert_eq!(agents.len(), n, "two live instances on one agent: {}", describe(&ps));
        serving(b, 2, "v2")
    });
    let (least_ready, most_live, timeline) = watcher.finish();
    assert!(
        least_ready >= 1 && most_live <= 2,
        "ready {least_ready}, live {most_live}:\n{timeline}\n{}",
        berth.log_tail()
    );
    drop(berth);
    drop(registry);
    drop(containerd);
}
