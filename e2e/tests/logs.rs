//! Placement logs end to end: `berth logs -f` follows a running container
//! until it exits, and copy-truncate rotation keeps a chatty container's
//! logs bounded on disk while `berth logs` still shows their tail.

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_e2e::berth::{Berth, binary};
use berth_e2e::{Containerd, Registry, ShellJob, build_demo_image, output_text};

const WAIT: Duration = Duration::from_secs(120);

/// Dropped in field order: berth first, then what it used.
struct Env {
    berth: Berth,
    registry: Registry,
    _containerd: Containerd,
}

impl Env {
    fn start(agent_extra: &[&str]) -> Env {
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let berth = Berth::up_with(containerd.socket(), "1", "512Mi", agent_extra);
        Env { berth, registry, _containerd: containerd }
    }

    fn run(&self, name: &str, script: &str) {
        let image = format!("{}/berth/demo:latest", self.registry.host());
        let yaml = ShellJob::new(name, &image, script).yaml();
        self.berth.apply(&yaml);
    }

    fn phase(&self, placement: &str) -> String {
        phase(&self.berth, placement)
    }
}

fn phase(b: &Berth, placement: &str) -> String {
    b.jsonpath(&format!("placements.berth.dev/{placement}"), ".status.phase")
}

#[test]
fn logs_follow_a_running_container_until_it_exits() {
    let mut env = Env::start(&[]);
    env.run("ticker", "i=1; while [ $i -le 10 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done");
    env.berth.wait("the task to run", WAIT, |b| match phase(b, "ticker-main-0-0").as_str() {
        "Running" => Ok(()),
        other => Err(format!("phase {other:?}")),
    });
    let follower = Command::new(binary())
        .args(["logs", "ticker", "-f"])
        .env("KUBECONFIG", &env.berth.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting berth logs -f");
    let pid = follower.id();
    // `berth logs -f` ends by itself once the container has exited.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(follower.wait_with_output());
    });
    let out = match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("berth logs -f"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("berth logs -f did not exit after the container did\n{}", env.berth.log_tail());
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", output_text(&out));
    let expected: String = (1..=10).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(text, expected, "every line, in order, once");
    assert_eq!(env.phase("ticker-main-0-0"), "Succeeded", "it returned once the container had exited");
}

#[test]
fn rotation_keeps_a_chatty_containers_logs_bounded_and_logs_show_the_tail() {
    const MAX: u64 = 32 * 1024;
    let mut env = Env::start(&["--log-max-bytes", &MAX.to_string(), "--log-max-files", "2"]);
    // 20 rounds of 400 lines of 100 bytes (800 KiB in all), over about 10 s.
    let line = "x".repeat(90);
    let script = format!(
        "r=0; while [ $r -lt 20 ]; do i=0; while [ $i -lt 400 ]; do echo \"r$r $i {line}\"; i=$((i+1)); done; \
         r=$((r+1)); sleep 0.5; done; echo the last line"
    );
    env.run("chatty", &script);
    let dir = env.berth.dir.path().join("agent-1-data").join("logs").join("default");
    let mut most = 0;
    env.berth.wait("the task to finish", WAIT, |b| {
        let on_disk: u64 = std::fs::read_dir(&dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        most = most.max(on_disk);
        match phase(b, "chatty-main-0-0").as_str() {
            p @ ("Succeeded" | "Failed") => Ok(p.to_string()),
            other => Err(format!("phase {other:?}, {on_disk} bytes on disk")),
        }
    });
    assert_eq!(env.phase("chatty-main-0-0"), "Succeeded");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("log dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(files.iter().all(|f| f.starts_with("chatty-main-0-0.log")), "{files:?}");
    assert!(files.len() <= 3, "the log and at most 2 rotated copies: {files:?}");
    // Each file holds at most max-bytes plus what is written in one check period (about 80 KiB here).
    let bound = 3 * (MAX + 100 * 1024);
    assert!(most < 800 * 1024 && most <= bound, "{most} bytes on disk at most, bound {bound}");

    let logs = env.berth.berth(&["logs", "chatty"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.status.success(), "{}", output_text(&logs));
    assert!(text.ends_with("the last line\n"), "the tail is shown: {:?}", &text[text.len().saturating_sub(200)..]);
    assert!(!text.starts_with("r0 0 "), "the oldest output was rotated away");
}
