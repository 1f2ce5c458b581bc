//! A `berth up` process for a test: its own state directory, a free API
//! port, and the containerd it is given. Stopped (SIGTERM, then SIGKILL) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::poll::poll;

/// A running `berth up`.
pub struct Berth {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// The containerd namespace the agent's containers live in.
    pub containerd_namespace: String,
    log: PathBuf,
}

/// The `berth` binary built by `cargo build --bin berth` (or `$BERTH_BIN`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/<test> → target/debug/berth
    let bin = exe.parent().and_then(Path::parent).map(|d| d.join("berth")).expect("target dir");
    assert!(bin.exists(), "{} is missing: run `cargo build --bin berth` (make test does)", bin.display());
    bin
}

impl Berth {
    /// Starts `berth up` with an agent offering `cpu` and `memory`, and waits
    /// until the API answers and the agent is registered.
    pub fn up(containerd_socket: &Path, cpu: &str, memory: &str) -> Berth {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let log = dir.path().join("berth.log");
        let out = std::fs::File::create(&log).expect("log file");
        let containerd_namespace =
            format!("berth-e2e-{}", dir.path().file_name().unwrap_or_default().to_string_lossy());
        let child = Command::new(binary())
            .args(["up", "--listen", "127.0.0.1:0", "--logs-listen", "127.0.0.1:0", "--heartbeat-seconds", "2"])
            .arg("--state-dir")
            .arg(&state)
            .arg("--containerd-socket")
            .arg(containerd_socket)
            .args(["--containerd-namespace", &containerd_namespace])
            .args(["--name", "agent-1", "--cpu", cpu, "--memory", memory])
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("starting berth up");
        let mut berth = Berth { child, kubeconfig: state.join("kubeconfig"), containerd_namespace, dir, log };
        berth.wait("the kubeconfig", Duration::from_secs(60), |b| {
            if b.kubeconfig.exists() { Ok(()) } else { Err("not written yet".into()) }
        });
        berth.wait("the API server and agent", Duration::from_secs(60), |b| {
            let out = b.kubectl(&["get", "agents.berth.dev", "-o", "name"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.success() && text.contains("agent-1") { Ok(()) } else { Err(crate::output_text(&out)) }
        });
        berth
    }

    /// Runs kubectl against this Berth.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("running kubectl")
    }

    /// Runs kubectl with `stdin` as its input (for `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        crate::run_with_stdin(Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args), stdin)
    }

    /// Runs a `berth` subcommand against this Berth.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(binary()).args(args).env("KUBECONFIG", &self.kubeconfig).output().expect("running berth")
    }

    /// A field of an object, by kubectl's jsonpath (`""` when absent).
    pub fn jsonpath(&self, object: &str, path: &str) -> String {
        let out = self.kubectl(&["get", object, "-o", &format!("jsonpath={{{path}}}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls `check` until it is `Ok` or `timeout` passes; on timeout panics
    /// with the last observation and the end of berth's log.
    pub fn wait<T>(&mut self, what: &str, timeout: Duration, mut check: impl FnMut(&Self) -> Result<T, String>) -> T {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("berth up exited ({status}):\n{}", self.log_tail());
        }
        let this = &*self;
        match poll(timeout, || check(this)) {
            Ok(v) => v,
            Err(last) => {
                panic!("timed out waiting for {what}; last seen: {last}\n--- berth log ---\n{}", this.log_tail())
            }
        }
    }

    /// The last lines berth logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        crate::terminate(&mut self.child, Duration::from_secs(20));
    }
}
